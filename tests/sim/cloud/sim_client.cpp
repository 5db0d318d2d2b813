#include "sim_client.h"

#include <mqtt_protocol.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "psa/cloudlink/policy.h"

namespace psa::sim {

std::string Incoming::property(std::string_view name) const {
  for (const auto& [k, v] : user_properties) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

bool splitAgentTopic(std::string_view topic, std::string& tenant, std::string& agent,
                     std::string& rest) {
  if (topic.rfind("ps/", 0) != 0) {
    return false;
  }
  topic.remove_prefix(3);
  const size_t a = topic.find('/');
  if (a == std::string_view::npos) {
    return false;
  }
  const size_t b = topic.find('/', a + 1);
  if (b == std::string_view::npos) {
    return false;
  }
  tenant = std::string(topic.substr(0, a));
  agent = std::string(topic.substr(a + 1, b - a - 1));
  rest = std::string(topic.substr(b + 1));
  return true;
}

void addCredentialOptions(boost::program_options::options_description& desc,
                          ClientOptions& options) {
  namespace po = boost::program_options;
  desc.add_options()("username", po::value(&options.username),
                     "MQTT user name (brokers that want one)")(
      "password-file", po::value(&options.password_file),
      "file whose first line is the MQTT password");
}

SimClient::SimClient(ClientOptions options) : options_(std::move(options)) {
  auto addr = cloudlink::parseBrokerUrl(options_.url);
  if (!addr) {
    throw std::runtime_error(addr.error().message);
  }
  host_ = addr->host;
  port_ = addr->port;
  mosquitto_lib_init();
  mosq_ = mosquitto_new(options_.client_id.c_str(), options_.clean_start, this);
  if (mosq_ == nullptr) {
    throw std::runtime_error("mosquitto_new failed");
  }
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_int_option(mosq_, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
  mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, 1000);
  mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  // libmosquitto's own TLS setup: verify the broker against the CA, host name checked.
  int rc = mosquitto_tls_set(mosq_, options_.ca_file.c_str(), nullptr, options_.cert_file.c_str(),
                             options_.key_file.c_str(), nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    throw std::runtime_error(std::string("TLS setup failed: ") + mosquitto_strerror(rc));
  }
  mosquitto_tls_opts_set(mosq_, 1, "tlsv1.2", nullptr);
  if (!options_.username.empty()) {
    std::string password;
    if (!options_.password_file.empty()) {
      std::ifstream in(options_.password_file);
      if (!in || !std::getline(in, password)) {
        throw std::runtime_error("cannot read --password-file " + options_.password_file);
      }
      while (!password.empty() && (password.back() == '\r' || password.back() == ' ')) {
        password.pop_back();
      }
    }
    mosquitto_username_pw_set(mosq_, options_.username.c_str(),
                              options_.password_file.empty() ? nullptr : password.c_str());
  }
  mosquitto_connect_v5_callback_set(mosq_, &SimClient::onConnect);
  mosquitto_disconnect_v5_callback_set(mosq_, &SimClient::onDisconnect);
  mosquitto_message_v5_callback_set(mosq_, &SimClient::onMessage);
  mosquitto_publish_v5_callback_set(mosq_, &SimClient::onPublish);
  mosquitto_subscribe_v5_callback_set(mosq_, &SimClient::onSubscribe);
}

SimClient::~SimClient() {
  if (mosq_ != nullptr) {
    mosquitto_destroy(mosq_);
  }
}

std::string SimClient::connect() {
  mosquitto_property* props = nullptr;
  mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, options_.session_expiry_s);
  const int rc = mosquitto_connect_bind_v5(mosq_, host_.c_str(), port_, options_.keepalive_s,
                                           nullptr, props);
  mosquitto_property_free_all(&props);
  next_reconnect_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  if (rc != MOSQ_ERR_SUCCESS) {
    socket_open_ = false;
    return std::string("connect failed: ") + mosquitto_strerror(rc);
  }
  socket_open_ = true;
  return {};
}

void SimClient::loop(std::chrono::milliseconds timeout) {
  if (!socket_open_) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_reconnect_) {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
          timeout, std::chrono::duration_cast<std::chrono::milliseconds>(next_reconnect_ - now)));
      return;
    }
    const std::string err = connect();
    if (!err.empty()) {
      std::fprintf(stderr, "pms-cloud-sim: %s (retrying)\n", err.c_str());
      return;
    }
  }
  const int rc = mosquitto_loop(mosq_, static_cast<int>(timeout.count()), 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    if (connected_ || socket_open_) {
      std::fprintf(stderr, "pms-cloud-sim: connection lost: %s (reconnecting)\n",
                   mosquitto_strerror(rc));
    }
    connected_ = false;
    socket_open_ = false;
    next_reconnect_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  }
}

int SimClient::subscribe(const std::string& filter, int qos) {
  int mid = 0;
  mosquitto_subscribe_v5(mosq_, &mid, filter.c_str(), qos, 0, nullptr);
  return mid;
}

int SimClient::publish(const std::string& topic, std::string_view payload, int qos, bool retain,
                       const std::string& content_type) {
  mosquitto_property* props = nullptr;
  if (!content_type.empty()) {
    mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, content_type.c_str());
  }
  int mid = 0;
  const int rc = mosquitto_publish_v5(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                      payload.data(), qos, retain, props);
  mosquitto_property_free_all(&props);
  return rc == MOSQ_ERR_SUCCESS ? mid : -rc;
}

void SimClient::disconnect() {
  if (!socket_open_) {
    return;
  }
  mosquitto_disconnect_v5(mosq_, 0, nullptr);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    if (mosquitto_loop(mosq_, 100, 1) != MOSQ_ERR_SUCCESS) {
      break;
    }
  }
  socket_open_ = false;
  connected_ = false;
}

void SimClient::onConnect(mosquitto*, void* obj, int rc, int, const mosquitto_property*) {
  auto* self = static_cast<SimClient*>(obj);
  if (rc != 0) {
    std::fprintf(stderr, "pms-cloud-sim: broker refused: %s\n", mosquitto_reason_string(rc));
    return;
  }
  self->connected_ = true;
  if (self->on_connected) {
    self->on_connected();
  }
}

void SimClient::onDisconnect(mosquitto*, void* obj, int, const mosquitto_property*) {
  static_cast<SimClient*>(obj)->connected_ = false;
}

void SimClient::onMessage(mosquitto*, void* obj, const mosquitto_message* msg,
                          const mosquitto_property* props) {
  auto* self = static_cast<SimClient*>(obj);
  if (!self->on_message) {
    return;
  }
  Incoming in;
  in.topic = msg->topic != nullptr ? msg->topic : "";
  if (msg->payloadlen > 0) {
    in.payload.assign(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen));
  }
  in.qos = msg->qos;
  in.retain = msg->retain;
  char* ct = nullptr;
  if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &ct, false) != nullptr) {
    in.content_type = ct;
    std::free(ct);
  }
  char* name = nullptr;
  char* value = nullptr;
  const mosquitto_property* p =
      mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value, false);
  while (p != nullptr) {
    in.user_properties.emplace_back(name, value);
    std::free(name);
    std::free(value);
    name = value = nullptr;
    p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, true);
  }
  self->on_message(in);
}

void SimClient::onPublish(mosquitto*, void* obj, int mid, int rc, const mosquitto_property*) {
  auto* self = static_cast<SimClient*>(obj);
  if (self->on_puback) {
    self->on_puback(mid, rc);
  }
}

void SimClient::onSubscribe(mosquitto*, void* obj, int mid, int count, const int* granted,
                            const mosquitto_property*) {
  auto* self = static_cast<SimClient*>(obj);
  if (self->on_subscribed) {
    self->on_subscribed(mid, std::vector<int>(granted, granted + count));
  }
}

}  // namespace psa::sim
