// A small single-threaded MQTT 5 / mutual-TLS client for the cloud simulator's subcommands:
// libmosquitto driven by mosquitto_loop() on the caller's thread, reconnecting after a second
// when the connection drops, with a persistent session so the broker queues for us meanwhile.
#pragma once

#include <mosquitto.h>

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace psa::sim {

struct ClientOptions {
  std::string url;  ///< mqtts://host:port
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string client_id = "cloud-sim";
  int keepalive_s = 30;
  unsigned session_expiry_s = 3600;
  bool clean_start = false;
  std::string username;       ///< MQTT user name (brokers that want one); empty: none
  std::string password_file;  ///< first line = the MQTT password; empty: none
};

/// Adds --username and --password-file (into `options`) to a subcommand's option list.
void addCredentialOptions(boost::program_options::options_description& desc,
                          ClientOptions& options);

/// One received PUBLISH with its MQTT 5 properties.
struct Incoming {
  std::string topic;
  std::string payload;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> user_properties;
  int qos = 0;
  bool retain = false;

  /// The first user property called `name`, or "".
  std::string property(std::string_view name) const;
};

class SimClient {
 public:
  explicit SimClient(ClientOptions options);
  ~SimClient();
  SimClient(const SimClient&) = delete;
  SimClient& operator=(const SimClient&) = delete;

  /// Called after every successful CONNACK (subscribe here).
  std::function<void()> on_connected;
  std::function<void(const Incoming&)> on_message;
  /// Called with the mid of each PUBACK we receive and its reason code.
  std::function<void(int mid, int reason)> on_puback;
  std::function<void(int mid, const std::vector<int>& granted)> on_subscribed;

  /// Connects (blocking). Returns an error message or "".
  std::string connect();
  /// Runs the network loop for up to `timeout`; reconnects (after >= 1 s) if needed.
  void loop(std::chrono::milliseconds timeout);
  bool connected() const { return connected_; }

  int subscribe(const std::string& filter, int qos = 1);
  int publish(const std::string& topic, std::string_view payload, int qos, bool retain,
              const std::string& content_type = "application/json");
  /// Sends DISCONNECT and runs the loop until it is out (or 2 s passed).
  void disconnect();

 private:
  static void onConnect(mosquitto*, void*, int, int, const mosquitto_property*);
  static void onDisconnect(mosquitto*, void*, int, const mosquitto_property*);
  static void onMessage(mosquitto*, void*, const mosquitto_message*, const mosquitto_property*);
  static void onPublish(mosquitto*, void*, int, int, const mosquitto_property*);
  static void onSubscribe(mosquitto*, void*, int, int, const int*, const mosquitto_property*);

  ClientOptions options_;
  std::string host_;
  int port_ = 8883;
  mosquitto* mosq_ = nullptr;
  bool connected_ = false;
  bool socket_open_ = false;
  std::chrono::steady_clock::time_point next_reconnect_{};
};

/// "ps/{tenant}/{agent}/{rest...}" -> {tenant, agent, rest}; false if not that shape.
bool splitAgentTopic(std::string_view topic, std::string& tenant, std::string& agent,
                     std::string& rest);

}  // namespace psa::sim
