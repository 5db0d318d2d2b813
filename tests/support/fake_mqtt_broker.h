// A scripted MQTT 5 broker over mutual TLS for the cases a real mosquitto cannot produce on
// demand: PUBACKs with chosen reason codes (0x97 quota exceeded, 0x83, 0x80, ...), a broker
// that drops the connection whenever it sees a certain record, and a connection that stays
// open but stops answering (half-open). Speaks just enough MQTT 5 for the cloud link:
// CONNECT/CONNACK, SUBSCRIBE/SUBACK, PUBLISH (QoS 0/1)/PUBACK, PINGREQ/PINGRESP, DISCONNECT.
// One client connection at a time; a new one replaces the old.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tls_material.h"

namespace psa::test {

struct FakePublish {
  std::string topic;
  std::string msg_id;  ///< the msg-id user property
  std::string payload;
  int qos = 0;
  bool dup = false;
  int connection = 0;  ///< which accepted connection (1-based) carried it
};

class FakeMqttBroker {
 public:
  enum class Action {
    puback,            ///< answer with PUBACK(reason)
    drop_connection,   ///< close the TCP connection without answering
    ignore,            ///< say nothing (the client waits forever)
  };
  struct Verdict {
    Action action = Action::puback;
    int reason = 0;
  };
  /// Decides what to do with a QoS 1 PUBLISH; `seen` counts earlier PUBLISHes with the same
  /// msg-id (0 the first time). Runs on the broker thread.
  using Policy = std::function<Verdict(const FakePublish&, int seen)>;

  /// Listens on 127.0.0.1 (free port) with `server` as its certificate, requiring client
  /// certificates signed by `ca`.
  FakeMqttBroker(const CertFiles& server, const std::filesystem::path& ca);
  ~FakeMqttBroker();
  FakeMqttBroker(const FakeMqttBroker&) = delete;
  FakeMqttBroker& operator=(const FakeMqttBroker&) = delete;

  int port() const { return port_; }
  std::string url() const { return "mqtts://localhost:" + std::to_string(port_); }

  void setPolicy(Policy policy);
  /// How to answer every CONNECT from now on: `connack_reason` != 0 refuses it (CONNACK with
  /// that code); else it is accepted and, with `disconnect_reason` != 0, at once followed by a
  /// DISCONNECT with that code. A non-empty `server_reference` goes with either (0x9C "use
  /// another server", 0x9D "server moved"). The connection is closed after a refusal or a
  /// DISCONNECT.
  struct ConnectAnswer {
    int connack_reason = 0;
    int disconnect_reason = 0;
    std::string server_reference;
  };
  void setConnectAnswer(ConnectAnswer answer);
  /// The current connection stops reading and answering (its TCP stays open); later
  /// connections behave normally again.
  void stallCurrentConnection();

  std::vector<FakePublish> publishes() const;
  int connections() const { return connections_.load(); }

 private:
  void run();
  void serve(int fd, int connection);

  int port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  void* ssl_ctx_ = nullptr;  // SSL_CTX*, kept out of this header
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> stall_connection_{0};
  mutable std::mutex mu_;
  Policy policy_;
  ConnectAnswer connect_answer_;
  std::vector<FakePublish> publishes_;
  std::map<std::string, int> seen_;
  std::thread thread_;
};

}  // namespace psa::test
