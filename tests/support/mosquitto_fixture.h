// A real mosquitto broker for tests (the shape of mosquitto's own test/mosq_test.py): writes a
// mosquitto.conf and ACL file into a directory, starts `mosquitto -c` as a child process on a
// free 127.0.0.1 port with mutual TLS (require_certificate, use_identity_as_username), waits
// until it accepts connections, and can stop, kill, pause and restart it on the same port for
// outage tests. Killed on destruction.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"
#include "tls_material.h"

namespace psa::test {

struct MosquittoOptions {
  std::filesystem::path dir;  ///< config, ACL, log and persistence go here
  std::filesystem::path cafile;
  std::filesystem::path certfile;
  std::filesystem::path keyfile;
  /// ACL file body. Empty: kDefaultAcl (agents confined to ps/+/<CN>/#, "cloud" reads all).
  std::string acl;
  /// If set, only client ids with this prefix may connect (others get CONNACK 0x87).
  std::string clientid_prefixes;
  bool persistence = true;
  /// Extra global lines for mosquitto.conf (before the listener), e.g. "max_packet_size 2000".
  std::vector<std::string> extra_conf;
  /// Extra lines for the TLS listener itself, e.g. "max_qos 0".
  std::vector<std::string> listener_conf;
  /// false: the broker authenticates by user name and password (`passwords`) instead of taking
  /// the certificate CN as the user name; the client certificate is still required.
  bool use_identity_as_username = true;
  /// user -> password, written with mosquitto_passwd (only with use_identity_as_username off).
  std::vector<std::pair<std::string, std::string>> passwords;
  /// "debug" logging (every PUBLISH/PUBACK in the log); default notice level.
  bool verbose_log = false;
};

/// Default ACL: every client (identity = certificate CN) may use ps/<tenant>/<its CN>/#;
/// the identity "cloud" may use everything under ps/.
inline constexpr const char* kDefaultAcl =
    "pattern readwrite ps/+/%u/#\n"
    "\n"
    "user cloud\n"
    "topic readwrite ps/#\n";

class MosquittoBroker {
 public:
  /// Writes the config (port chosen now, kept across restarts) and starts the broker.
  /// Throws std::runtime_error if it does not accept connections within 10 s.
  explicit MosquittoBroker(MosquittoOptions options);
  /// Convenience: broker with tls.server() and tls.ca() in `dir`.
  static std::unique_ptr<MosquittoBroker> withMaterial(const TlsMaterial& tls,
                                                       const std::filesystem::path& dir,
                                                       MosquittoOptions overrides = {});
  ~MosquittoBroker();
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  int port() const { return port_; }
  /// "mqtts://localhost:<port>"
  std::string url() const;
  const std::filesystem::path& logFile() const { return log_file_; }
  std::string log() const;
  pid_t pid() const;
  bool running();

  /// Starts again (same port and persistence). No-op if running.
  void start();
  /// SIGTERM and wait: mosquitto saves its persistence file.
  void stop();
  /// SIGKILL: no save.
  void kill();
  /// SIGSTOP / SIGCONT: the TCP connections stay open but nothing answers (half-open link).
  void pause();
  void resume();
  /// Replaces the ACL file (empty: kDefaultAcl) and makes the running broker reload it (SIGHUP;
  /// connected clients stay connected).
  void reloadAcl(std::string acl);

 private:
  void writeConfig();

  MosquittoOptions options_;
  int port_ = 0;
  std::filesystem::path conf_file_;
  std::filesystem::path log_file_;
  std::unique_ptr<Process> process_;
};

}  // namespace psa::test
