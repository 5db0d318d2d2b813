// Runs the Python vendor simulator (tests/sim/pms_sim.py) for integration tests and
// benchmarks: real HTTPS with certificates from TlsMaterial, a plain-HTTP admin listener for
// the test's own calls (/_sim/expected, /_sim/faults, /_sim/mutate, /_sim/stats), and the
// helpers to read back what the agent stored.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "psa/store/json.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::test {

/// A tiny blocking HTTP/1.1 client for plain http:// URLs (admin API). Throws on I/O errors.
struct SimpleHttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::string body;
};
SimpleHttpResponse httpCall(const std::string& method, const std::string& url,
                            const std::string& body = {},
                            const std::string& content_type = "application/json");

class PmsSim {
 public:
  /// Starts `pms_sim.py --vendor vendor` with HTTPS (tls.server()) plus a plain admin
  /// listener, then waits for the ready file. `args` are extra command line options.
  PmsSim(const std::filesystem::path& dir, const TlsMaterial& tls, std::string vendor,
         std::vector<std::string> args,
         std::chrono::milliseconds timeout = std::chrono::seconds(120));
  ~PmsSim();

  const json::Value& ready() const { return ready_; }
  /// FHIR base (https), token URL (https), vendor API base (https).
  std::string fhirBase() const;
  std::string tokenUrl() const;
  std::string apiBase() const;
  std::string httpsOrigin() const;
  /// http://127.0.0.1:port/_sim
  std::string adminUrl() const;

  json::Value adminGet(const std::string& path_and_query);
  json::Value adminPost(const std::string& path, const json::Value& body);
  /// /_sim/expected (?types=... etc. as `query`).
  json::Value expected(const std::string& query = {});
  json::Value stats();
  void setFaults(const std::string& rules_json);
  void clearFaults();
  json::Value mutate(const std::string& body_json);
  std::string log() const;
  bool running();
  void stop();

 private:
  std::filesystem::path dir_;
  std::string vendor_;
  std::unique_ptr<Process> process_;
  json::Value ready_;
  std::filesystem::path log_file_;
};

/// One record as stored by the agent (metadata + decrypted payload).
struct StoredRecord {
  std::string msg_id;
  std::string source;
  std::string vendor;
  std::string kind;
  std::string format;
  std::string payload;
};

/// Opens the agent's store (the agent must be stopped), reads every queued record in order
/// with its payload, closes it. Throws std::runtime_error on failure.
std::vector<StoredRecord> readStoredRecords(const std::filesystem::path& db,
                                            const std::filesystem::path& key);
/// The committed watermarks of `scope`.
std::map<std::string, std::string> readWatermarks(const std::filesystem::path& db,
                                                  const std::filesystem::path& key,
                                                  const std::string& scope);

/// Number of lines in `text` containing `needle`.
size_t countOccurrences(const std::string& text, const std::string& needle);

}  // namespace psa::test
