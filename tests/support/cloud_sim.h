// Runs the real `pms-cloud-sim listen` binary as a child process and reads what it received
// (its --out file: one JSON line per message).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"
#include "tls_material.h"

namespace psa::test {

/// One line of pms-cloud-sim's --out file.
struct SimMessage {
  std::string msg_id;
  std::string tenant;
  std::string agent;
  std::string kind;         ///< from the topic
  std::string prop_kind;    ///< from the user property
  std::string topic;
  std::string source;
  std::string vendor;
  std::string format;
  std::string received_at;
  std::string content_type;
  std::string sha256;
  bool sha256_ok = false;
  uint64_t size = 0;
  uint64_t chunks = 0;  ///< a record that arrived in chunks and was joined: how many; else 0
  bool duplicate = false;
  bool has_payload = false;
  std::string payload;  ///< decoded from payload_base64 (only with --payloads)
};

/// Parses the file; ignores a trailing partial line. Throws on a malformed complete line.
std::vector<SimMessage> readSimOutput(const std::filesystem::path& file);
/// Parses complete lines of `text` starting at `offset`, appending to `out`; returns the
/// offset after the last complete line.
size_t parseSimLines(std::string_view text, size_t offset, std::vector<SimMessage>& out);

struct CloudSimOptions {
  std::string url;
  std::filesystem::path ca_file;
  std::filesystem::path cert_file;  ///< the "cloud" identity
  std::filesystem::path key_file;
  std::filesystem::path dir;        ///< out file, ready file and stdout go here
  std::string client_id = "cloud-sim";
  std::string username;                 ///< MQTT user name (brokers that want one)
  std::filesystem::path password_file;  ///< first line = the MQTT password
  bool receipts = false;
  bool payloads = true;
  std::vector<std::string> extra_args;
};

/// Options for a simulator on the broker at `url`, trusting `tls`'s CA and connecting as its
/// "cloud" client identity, with its files in `dir`.
CloudSimOptions cloudSimOptions(const std::string& url, TlsMaterial& tls,
                                const std::filesystem::path& dir);

class CloudSim {
 public:
  /// Starts the simulator and waits (up to 10 s) until it has subscribed.
  explicit CloudSim(CloudSimOptions options);
  ~CloudSim();

  /// Everything received so far.
  std::vector<SimMessage> messages() const;
  /// Unique msg-ids received so far.
  std::map<std::string, SimMessage> unique() const;
  /// Waits until `n` unique msg-ids arrived; false on timeout.
  bool waitForUnique(size_t n, std::chrono::milliseconds timeout) const;
  std::string stdoutText() const;
  /// SIGTERM and wait for exit.
  void stop();
  void kill();
  /// Starts again (same out file: appends).
  void restart();
  const std::filesystem::path& outFile() const { return out_file_; }

 private:
  void launch();
  CloudSimOptions options_;
  std::filesystem::path out_file_;
  std::filesystem::path ready_file_;
  std::filesystem::path stdout_file_;
  std::unique_ptr<Process> process_;
  // Incremental reading of the out file: lines parsed so far and where they end.
  mutable std::vector<SimMessage> cache_;
  mutable size_t offset_ = 0;
};

}  // namespace psa::test
