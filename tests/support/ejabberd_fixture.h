// A real ejabberd cluster for tests: Debian's ejabberd (whose mod_mqtt is an MQTT 5 broker)
// started as N Erlang nodes on loopback, each a child process with its own config file, mnesia
// spool and log directory, node name ejabberd<k>@localhost, and a TLS mod_mqtt listener on a free
// 127.0.0.1 port using the test's certificates; the nodes share a cookie and a private epmd (also
// a child process on a free port), so no system ejabberd, /etc/ejabberd, /var/lib/ejabberd or
// system epmd is touched. The nodes are joined with `join_cluster`; a node can be SIGKILLed (its
// beam process and every process under it) and started again, and rejoins the cluster from its
// spool. Everything is killed on destruction.
//
// Identities (ejabberd 23.01 mod_mqtt, tls_verify): a client that sends no password is
// authenticated by its TLS client certificate when its MQTT identity (the user name, or without
// one the client id) equals the certificate's CN (ejabberd compares the JIDs <identity>@localhost
// and <CN>@localhost); a client that sends a password is checked against ejabberd's users
// (registerUser). ACLs follow MosquittoBroker's default: every identity may use
// ps/+/<its name>/#, the cloud identities may use everything under ps/.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"
#include "tls_material.h"

namespace psa::test {

struct EjabberdOptions {
  std::filesystem::path dir;       ///< epmd output and one folder per node (config, spool, logs)
  std::filesystem::path cafile;    ///< CA that signs the client certificates (c2s_cafile)
  std::filesystem::path certfile;  ///< broker certificate for localhost
  std::filesystem::path keyfile;
  size_t nodes = 2;
  /// Identities (certificate CN or user name) allowed to publish and subscribe under ps/#.
  std::vector<std::string> cloud_identities = {"cloud", "cloud-b"};
  /// Authenticate clients without a password by their certificate (listener tls_verify). When
  /// false, only user names with passwords (registerUser) get in.
  bool certificate_auth = true;
  /// mod_mqtt session_expiry: the longest a broker keeps an offline client's session.
  std::chrono::seconds session_expiry{3600};
  /// Extra option lines for mod_mqtt, e.g. "max_queue: 100" (indented by the fixture).
  std::vector<std::string> mqtt_options;
  /// Extra option lines for the TLS listener, e.g. "max_payload_size: 65536" (ejabberd
  /// disconnects a larger packet with 0x95 but does not announce the limit in its CONNACK).
  std::vector<std::string> listener_options;
  /// ejabberd's "debug" log level; default "info" (sessions opened and closed, authentication).
  bool debug_log = false;
};

class EjabberdCluster {
 public:
  /// Why the cluster cannot run on this machine (erl or ejabberd missing), or "" if it can.
  /// Tests skip with this reason.
  static std::string unavailableReason();

  /// Writes the configs, starts epmd and every node, joins nodes 2..N to node 1 and waits until
  /// every node lists all of them as running and accepts TLS connections. Throws
  /// std::runtime_error (with the logs' tails) if that does not happen within a minute.
  explicit EjabberdCluster(EjabberdOptions options);
  /// Convenience: the cluster with tls.server() and tls.ca() in `dir`.
  static std::unique_ptr<EjabberdCluster> withMaterial(const TlsMaterial& tls,
                                                       const std::filesystem::path& dir,
                                                       EjabberdOptions overrides = {});
  /// SIGKILLs every node (with everything it started) and epmd.
  ~EjabberdCluster();
  EjabberdCluster(const EjabberdCluster&) = delete;
  EjabberdCluster& operator=(const EjabberdCluster&) = delete;

  /// Nodes are numbered 0..size()-1; node k is the Erlang node ejabberd<k+1>@localhost.
  size_t size() const { return nodes_.size(); }
  std::string nodeName(size_t node) const;
  int port(size_t node) const;
  /// The private epmd's port (ERL_EPMD_PORT of every node and ctl call).
  int epmdPort() const { return epmd_port_; }
  const std::filesystem::path& dir() const { return options_.dir; }
  /// "mqtts://localhost:<port>"
  std::string url(size_t node) const;
  /// Every node's url, in node order.
  std::vector<std::string> urls() const;
  /// The node whose url() is `url`; -1 if none.
  int nodeOf(const std::string& url) const;
  bool running(size_t node);
  pid_t pid(size_t node) const;

  /// SIGKILL: the node's beam process and every process under it (erl_child_setup and its port
  /// programs), at once; returns when all of them are gone. No-op if not running.
  void kill(size_t node);
  /// Starts a node again from its spool (same name, port and config) and waits until it accepts
  /// connections and lists every running node as its cluster peer. No-op if running. On failure
  /// kills every node and throws std::runtime_error with the logs' tails.
  void start(size_t node);

  /// Runs an ejabberdctl command on `node` (as ejabberdctl does: a hidden Erlang node calling
  /// ejabberd_ctl), e.g. {"list_cluster"}; returns exit code and output.
  CommandResult ctl(size_t node, const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  /// The running nodes `node` sees in its cluster (ejabberdctl list_cluster); empty on error.
  std::vector<std::string> clusterView(size_t node) const;
  /// Registers user@localhost with `password` (stored in mnesia, so every node knows it).
  /// Throws std::runtime_error on failure.
  void registerUser(const std::string& user, const std::string& password);

  const std::filesystem::path& logFile(size_t node) const;
  std::string log(size_t node) const;
  /// The last `lines` lines of every node's log and console output, headed by node name and
  /// state: for failure messages.
  std::string logTails(size_t lines = 40);

 private:
  struct Node {
    std::string name;  ///< ejabberd<k>@localhost
    int port = 0;
    std::filesystem::path dir;
    std::filesystem::path config;
    std::filesystem::path spool;
    std::filesystem::path log_file;
    std::filesystem::path out_file;
    std::unique_ptr<Process> process;
  };

  void writeConfig(const Node& node) const;
  void launch(Node& node);
  /// Waits until the node logged "is started" after `log_offset` and its listener accepts TCP.
  void waitStarted(Node& node, size_t log_offset, std::chrono::milliseconds timeout);
  void join();
  bool viewIsComplete(size_t node);
  std::string tail(const std::filesystem::path& file, size_t lines) const;
  [[noreturn]] void fail(const std::string& what);
  /// Kills every node and the private epmd; never throws.
  void killAll() noexcept;

  EjabberdOptions options_;
  std::string cookie_;
  std::string erl_libs_;
  int epmd_port_ = 0;
  std::unique_ptr<Process> epmd_;
  std::vector<Node> nodes_;
  bool joined_ = false;
};

}  // namespace psa::test
