// One MQTT connection attempt and its lifetime ("session epoch"), run on a thread of its own.
//
// How libmosquitto coexists with the Asio threads
// -----------------------------------------------
// Each connection attempt gets a fresh `struct mosquitto` and one dedicated thread. That thread
// makes the blocking `mosquitto_connect_bind_v5()` call (DNS + TCP connect; the TLS handshake
// and CONNECT/CONNACK then run inside the loop), then drives the socket with `mosquitto_loop()`
// until the connection ends, destroys the client and reports `ended`. libmosquitto is put in
// threaded mode (`mosquitto_threaded_set`), so `mosquitto_publish_v5()` / subscribe /
// disconnect called from the CloudLink strand only queue a packet and wake the loop through
// libmosquitto's socket pair; all socket and SSL I/O stays on the session thread. The
// libmosquitto callbacks run on the session thread and only copy their data and post it to
// the CloudLink strand (PUBACKs are batched: one post per burst). No Asio thread ever blocks on
// the network, and CloudLink state is only touched on its strand.
//
// Why not `mosquitto_loop_start()` + `mosquitto_connect_async()` as style.md suggests
// (libmosquitto 2.0.11):
//   - `mosquitto_connect_async()` takes no CONNECT properties, so the first CONNECT could not
//     carry our session-expiry interval; and its getaddrinfo() is blocking anyway, which would
//     stall the calling Asio thread for as long as DNS takes.
//   - The loop_start thread runs `mosquitto_loop_forever()`, whose built-in reconnect uses a
//     fixed formula without jitter (thousands of agents would retry in lockstep after a cloud
//     outage), and which returns - ending the thread - on TLS, DNS, auth and protocol errors,
//     so we would have to restart it from outside anyway.
//   - A fresh client per attempt means no stale packet ids or libmosquitto-internal resend
//     queues survive a disconnect: the store is the only source of truth for what to resend.
// (Checked: 2.0.11's mosquitto_reconnect() does keep the session-expiry property, so that
// was not a reason.)
// A connect() that hangs (black-holed SYNs) cannot be interrupted; CloudLink then abandons the
// thread on shutdown, and the thread cleans up after itself when the call returns.
#pragma once

#include <mosquitto.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "credentials.h"
#include "psa/cloudlink/broker_limits.h"
#include "tls_context.h"

namespace psa::cloudlink::detail {

struct SessionConfig {
  std::string host;
  int port = 8883;
  std::string client_id;
  int keepalive_s = 30;
  uint32_t session_expiry_s = 0;
  int send_maximum = 100;  ///< libmosquitto's own in-flight cap (the broker may lower it)
  std::string will_topic;
  std::string will_payload;
  bool will_retain = true;  ///< false once the broker said it keeps no retained messages
  TlsSettings tls;
  CredentialSources credentials;
  size_t max_incoming_bytes = 1u << 20;
};

struct SessionEvent {
  enum class Type {
    tcp_connected,  ///< connect() returned; TLS handshake + CONNECT under way
    connack,        ///< code 0: connected; else refused (error holds words)
    pubacks_ready,  ///< call takePubacks()
    message,        ///< an incoming PUBLISH
    suback,
    ended,  ///< the thread is about to exit; error holds words ("" = we asked for it);
            ///< code: the broker's DISCONNECT reason code, or -1
  };
  Type type = Type::ended;
  int code = 0;
  bool session_present = false;
  BrokerLimits limits;  ///< connack with code 0: what the broker announced
  std::vector<int> granted;
  std::string topic;
  std::string payload;
  size_t payload_size = 0;  ///< original size (payload is empty when oversize)
  bool oversize = false;
  std::string error;
  /// connack refused / ended after the broker's DISCONNECT: its Server Reference, if any.
  std::string server_reference;
};

class MqttSession : public std::enable_shared_from_this<MqttSession> {
 public:
  /// Runs on the session thread; must only copy/post, never block or call back in.
  using Sink = std::function<void(SessionEvent)>;

  MqttSession(SessionConfig config, Sink sink);
  ~MqttSession();
  MqttSession(const MqttSession&) = delete;
  MqttSession& operator=(const MqttSession&) = delete;

  /// Spawns the session thread.
  void start();

  /// mosquitto_publish_v5 (QoS 1). Returns a MOSQ_ERR_* code; MOSQ_ERR_NO_CONN once the
  /// client is gone. Any thread.
  int publish(int* mid, const std::string& topic, std::string_view payload, bool retain,
              const mosquitto_property* props);
  /// Subscribes all `filters` at QoS 1 with No Local. Any thread.
  int subscribe(int* mid, const std::vector<std::string>& filters);
  /// DISCONNECT with reason 0x04 (the broker publishes our Will: status offline); the thread
  /// ends once it is written. Any thread.
  void disconnectGracefully();
  /// Ends the thread as soon as possible (no DISCONNECT guaranteed). Any thread.
  void abort();

  /// PUBACKs received since the last call: (mid, reason code).
  std::vector<std::pair<int, int>> takePubacks();
  /// The broker's maximum packet size from CONNACK (0 = none).
  uint32_t maximumPacketSize() const { return max_packet_size_.load(); }

  /// No more events are delivered after this returns.
  void closeSink();
  /// Waits up to `timeout` for the thread to finish and joins it (true); otherwise detaches it
  /// (false): it keeps itself alive and cleans up when its blocking call returns.
  bool join(std::chrono::milliseconds timeout);

 private:
  void run();
  void finish(std::string error);
  void emit(SessionEvent event);
  std::string connectWords(int rc, int err) const;
  std::string loopWords(int rc, int err) const;
  std::string tlsWords() const;

  static void onConnect(mosquitto* m, void* obj, int rc, int flags, const mosquitto_property* p);
  static void onDisconnect(mosquitto* m, void* obj, int rc, const mosquitto_property* p);
  static void onPublish(mosquitto* m, void* obj, int mid, int rc, const mosquitto_property* p);
  static void onMessage(mosquitto* m, void* obj, const mosquitto_message* msg,
                        const mosquitto_property* p);
  static void onSubscribe(mosquitto* m, void* obj, int mid, int count, const int* granted,
                          const mosquitto_property* p);
  static void onLog(mosquitto* m, void* obj, int level, const char* text);

  const SessionConfig config_;
  TlsDiagnostics diag_;

  std::mutex mosq_mu_;  ///< guards mosq_ against destruction while another thread uses it
  mosquitto* mosq_ = nullptr;

  std::mutex sink_mu_;
  Sink sink_;

  std::mutex puback_mu_;
  std::vector<std::pair<int, int>> pubacks_;
  bool puback_signalled_ = false;

  std::atomic<bool> aborted_{false};
  std::atomic<bool> graceful_{false};
  std::atomic<uint32_t> max_packet_size_{0};
  std::atomic<bool> connack_ok_{false};

  mutable std::mutex words_mu_;  ///< set on the session thread, read there too (callbacks)
  std::string connack_words_;
  int broker_disconnect_reason_ = -1;
  std::string server_reference_;  ///< with a DISCONNECT 0x9C/0x9D from the broker

  std::thread thread_;
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
};

}  // namespace psa::cloudlink::detail
