#include "mqtt_session.h"

#include <mqtt_protocol.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "connack_properties.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/socket_error.h"
#include "psa/store/os/system_error.h"

namespace psa::cloudlink::detail {
namespace {

void libInit() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string lowerFirst(std::string s) {
  if (!s.empty()) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

/// "error:0A000086:SSL routines::certificate verify failed" -> "certificate verify failed".
std::string opensslReason(std::string_view line) {
  const size_t pos = line.rfind(':');
  if (pos == std::string_view::npos || pos + 1 >= line.size()) {
    return std::string(line);
  }
  return std::string(line.substr(pos + 1));
}

}  // namespace

MqttSession::MqttSession(SessionConfig config, Sink sink)
    : config_(std::move(config)), sink_(std::move(sink)) {
  libInit();
}

MqttSession::~MqttSession() {
  // The thread holds a shared_ptr to us, so by now it has finished (or was never started).
  if (thread_.joinable()) {
    thread_.detach();
  }
}

void MqttSession::start() {
  auto self = shared_from_this();
  thread_ = std::thread([self] { self->run(); });
}

void MqttSession::emit(SessionEvent event) {
  std::lock_guard lock(sink_mu_);
  if (sink_) {
    sink_(std::move(event));
  }
}

void MqttSession::closeSink() {
  std::lock_guard lock(sink_mu_);
  sink_ = nullptr;
}

int MqttSession::publish(int* mid, const std::string& topic, std::string_view payload,
                         bool retain, const mosquitto_property* props) {
  std::lock_guard lock(mosq_mu_);
  if (mosq_ == nullptr) {
    return MOSQ_ERR_NO_CONN;
  }
  return mosquitto_publish_v5(mosq_, mid, topic.c_str(), static_cast<int>(payload.size()),
                              payload.data(), 1, retain, props);
}

int MqttSession::subscribe(int* mid, const std::vector<std::string>& filters) {
  std::vector<char*> subs;
  subs.reserve(filters.size());
  for (const auto& f : filters) {
    subs.push_back(const_cast<char*>(f.c_str()));
  }
  std::lock_guard lock(mosq_mu_);
  if (mosq_ == nullptr) {
    return MOSQ_ERR_NO_CONN;
  }
  return mosquitto_subscribe_multiple(mosq_, mid, static_cast<int>(subs.size()), subs.data(), 1,
                                      MQTT_SUB_OPT_NO_LOCAL, nullptr);
}

void MqttSession::disconnectGracefully() {
  graceful_ = true;
  std::lock_guard lock(mosq_mu_);
  if (mosq_ != nullptr) {
    mosquitto_disconnect_v5(mosq_, MQTT_RC_DISCONNECT_WITH_WILL_MSG, nullptr);
  }
}

void MqttSession::abort() {
  aborted_ = true;
  std::lock_guard lock(mosq_mu_);
  if (mosq_ != nullptr) {
    // Queues a DISCONNECT, which also wakes the loop's select() through the socket pair. With
    // reason 0x04 the broker still publishes our Will (status offline) if it gets it.
    mosquitto_disconnect_v5(mosq_, MQTT_RC_DISCONNECT_WITH_WILL_MSG, nullptr);
  }
}

std::vector<std::pair<int, int>> MqttSession::takePubacks() {
  std::vector<std::pair<int, int>> out;
  std::lock_guard lock(puback_mu_);
  out.swap(pubacks_);
  puback_signalled_ = false;
  return out;
}

bool MqttSession::join(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) {
    return true;
  }
  bool finished = false;
  {
    std::unique_lock lock(done_mu_);
    finished = done_cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  if (finished) {
    thread_.join();
    return true;
  }
  thread_.detach();
  return false;
}

void MqttSession::run() {
  os::setCurrentThreadName("psa-mqtt");  // shows in top -H, perf, gdb
  std::string words;
  try {
    auto ctx = buildClientContext(config_.tls, &diag_);
    if (!ctx) {
      finish(ctx.error().message);
      return;
    }
    auto credentials = loadCredentials(config_.credentials);
    if (!credentials) {
      finish(credentials.error().message);
      return;
    }
    mosquitto* m = mosquitto_new(config_.client_id.c_str(), /*clean_start=*/false, this);
    if (m == nullptr) {
      finish("cannot create the MQTT client: " + os::errnoText(errno));
      return;
    }
    {
      std::lock_guard lock(mosq_mu_);
      mosq_ = m;
    }
    mosquitto_threaded_set(m, true);
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_void_option(m, MOSQ_OPT_SSL_CTX, ctx->get());
    mosquitto_int_option(m, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, config_.send_maximum);
    mosquitto_int_option(m, MOSQ_OPT_RECEIVE_MAXIMUM, 100);

    if (credentials->username) {
      const std::optional<std::string>& password = credentials->password;
      if (mosquitto_username_pw_set(m, credentials->username->c_str(),
                                    password ? password->c_str() : nullptr) != MOSQ_ERR_SUCCESS) {
        finish("cannot set the MQTT user name (out of memory)");
        return;
      }
    }

    mosquitto_property* will_props = nullptr;
    mosquitto_property_add_string(&will_props, MQTT_PROP_CONTENT_TYPE, "application/json");
    if (mosquitto_will_set_v5(
            m, config_.will_topic.c_str(), static_cast<int>(config_.will_payload.size()),
            config_.will_payload.data(), 1, config_.will_retain, will_props) != MOSQ_ERR_SUCCESS) {
      mosquitto_property_free_all(&will_props);
    }

    // libmosquitto is C: nothing may unwind through it. An exception in a callback is a broken
    // invariant (fatal.h).
    mosquitto_connect_v5_callback_set(
        m, [](mosquitto* mq, void* obj, int rc, int flags, const mosquitto_property* props) {
          guardInvariant("mqtt.on_connect", [&] { onConnect(mq, obj, rc, flags, props); });
        });
    mosquitto_disconnect_v5_callback_set(
        m, [](mosquitto* mq, void* obj, int rc, const mosquitto_property* props) {
          guardInvariant("mqtt.on_disconnect", [&] { onDisconnect(mq, obj, rc, props); });
        });
    mosquitto_publish_v5_callback_set(
        m, [](mosquitto* mq, void* obj, int mid, int rc, const mosquitto_property* props) {
          guardInvariant("mqtt.on_publish", [&] { onPublish(mq, obj, mid, rc, props); });
        });
    mosquitto_message_v5_callback_set(m, [](mosquitto* mq, void* obj, const mosquitto_message* msg,
                                            const mosquitto_property* props) {
      guardInvariant("mqtt.on_message", [&] { onMessage(mq, obj, msg, props); });
    });
    mosquitto_subscribe_v5_callback_set(m, [](mosquitto* mq, void* obj, int mid, int count,
                                              const int* granted, const mosquitto_property* props) {
      guardInvariant("mqtt.on_subscribe",
                     [&] { onSubscribe(mq, obj, mid, count, granted, props); });
    });
    mosquitto_log_callback_set(m, [](mosquitto* mq, void* obj, int level, const char* text) {
      guardInvariant("mqtt.on_log", [&] { onLog(mq, obj, level, text); });
    });

    if (aborted_) {
      finish({});
      return;
    }
    mosquitto_property* connect_props = nullptr;
    mosquitto_property_add_int32(&connect_props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                 config_.session_expiry_s);
    errno = 0;
    int rc = mosquitto_connect_bind_v5(m, config_.host.c_str(), config_.port,
                                       config_.keepalive_s, nullptr, connect_props);
    int err = errno;
    mosquitto_property_free_all(&connect_props);
    if (rc != MOSQ_ERR_SUCCESS) {
      finish(aborted_ ? std::string() : connectWords(rc, err));
      return;
    }
    SessionEvent up;
    up.type = SessionEvent::Type::tcp_connected;
    emit(std::move(up));

    while (!aborted_) {
      errno = 0;
      rc = mosquitto_loop(m, 1000, 1);
      if (rc != MOSQ_ERR_SUCCESS) {
        break;
      }
    }
    err = errno;
    if (aborted_ || (graceful_ && (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_SUCCESS))) {
      words.clear();
    } else {
      words = loopWords(rc, err);
    }
  } catch (...) {
    fatalInvariant("mqtt.session_thread");
  }
  finish(std::move(words));
}

void MqttSession::finish(std::string error) {
  {
    std::lock_guard lock(mosq_mu_);
    if (mosq_ != nullptr) {
      mosquitto_destroy(mosq_);  // closes the socket, frees its SSL and its SSL_CTX reference
      mosq_ = nullptr;
    }
  }
  SessionEvent ev;
  ev.type = SessionEvent::Type::ended;
  ev.error = std::move(error);
  {
    std::lock_guard lock(words_mu_);
    ev.code = broker_disconnect_reason_;
    ev.server_reference = server_reference_;
  }
  emit(std::move(ev));
  {
    std::lock_guard lock(done_mu_);
    done_ = true;
  }
  done_cv_.notify_all();
}

std::string MqttSession::tlsWords() const {
  std::string words = diag_.describe(config_.host);
  return words.empty() ? "TLS: handshake failed" : words;
}

std::string MqttSession::connectWords(int rc, int err) const {
  const std::string where = config_.host + ":" + std::to_string(config_.port);
  switch (rc) {
    case MOSQ_ERR_EAI:
      // libmosquitto puts the getaddrinfo() code into errno.
      switch (os::classifyResolveError(err)) {
        case os::ResolveError::temporary:
          return "DNS: lookup of " + config_.host +
                 " failed (temporary failure in name resolution)";
        case os::ResolveError::not_found:
          return "DNS: host not found: " + config_.host;
        case os::ResolveError::other:
          return "DNS: lookup of " + config_.host + " failed (" + os::resolveErrorText(err) + ")";
      }
      return "DNS: lookup of " + config_.host + " failed";
    case MOSQ_ERR_ERRNO:
      switch (os::classifySocketError(err)) {
        case os::SocketError::refused:
          return "connection refused by " + where;
        case os::SocketError::timed_out:
          return "connection to " + where + " timed out";
        case os::SocketError::network_unreachable:
          return "network unreachable (" + where + ")";
        case os::SocketError::host_unreachable:
          return "host unreachable (" + where + ")";
        default:
          return "cannot connect to " + where + ": " + os::socketErrorText(err);
      }
    case MOSQ_ERR_TLS: return tlsWords();
    default: return "cannot connect to " + where + ": " + mosquitto_strerror(rc);
  }
}

std::string MqttSession::loopWords(int rc, int err) const {
  std::string connack;
  int broker_reason = -1;
  {
    std::lock_guard lock(words_mu_);
    connack = connack_words_;
    broker_reason = broker_disconnect_reason_;
  }
  if (!connack.empty()) {
    return connack;
  }
  if (broker_reason >= 0x80) {
    return "broker disconnected us: " + lowerFirst(mosquitto_reason_string(broker_reason));
  }
  switch (rc) {
    case MOSQ_ERR_TLS: return tlsWords();
    case MOSQ_ERR_CONN_REFUSED: return "broker refused the connection";
    case MOSQ_ERR_KEEPALIVE: return "keepalive timeout: no response from the broker";
    case MOSQ_ERR_PROTOCOL: return "MQTT protocol error: the broker sent an unexpected packet";
    case MOSQ_ERR_MALFORMED_PACKET: return "MQTT protocol error: malformed packet from the broker";
    case MOSQ_ERR_ERRNO:
    case MOSQ_ERR_CONN_LOST:
    case MOSQ_ERR_NO_CONN: {
      const os::SocketError kind = os::classifySocketError(err);
      if (connack_ok_) {
        // The handshake was done long ago: this is the connection ending, not TLS failing.
        if (rc == MOSQ_ERR_ERRNO && kind == os::SocketError::reset) {
          return "connection reset by the broker";
        }
        if (rc == MOSQ_ERR_ERRNO && err != 0 && kind != os::SocketError::protocol) {
          return "connection lost: " + os::socketErrorText(err);
        }
        return "connection closed by the broker";
      }
      std::string tls = diag_.describe(config_.host);
      if (!tls.empty() || kind == os::SocketError::protocol) {
        return tls.empty() ? "TLS: protocol error" : tls;
      }
      if (rc == MOSQ_ERR_ERRNO && kind == os::SocketError::reset) {
        return "connection reset by the broker";
      }
      if (rc == MOSQ_ERR_ERRNO && err != 0) {
        return "connection lost: " + os::socketErrorText(err);
      }
      return "connection lost";
    }
    default: return std::string("MQTT error: ") + mosquitto_strerror(rc);
  }
}

namespace {

// The Server Reference property (0x9C use another server, 0x9D server moved), or "".
std::string serverReference(const mosquitto_property* props) {
  char* value = nullptr;
  if (mosquitto_property_read_string(props, MQTT_PROP_SERVER_REFERENCE, &value, false) == nullptr ||
      value == nullptr) {
    return {};
  }
  std::string out(value);
  std::free(value);
  return out;
}

}  // namespace

void MqttSession::onConnect(mosquitto*, void* obj, int rc, int flags,
                            const mosquitto_property* props) {
  auto* self = static_cast<MqttSession*>(obj);
  SessionEvent ev;
  ev.type = SessionEvent::Type::connack;
  ev.code = rc;
  if (rc == 0) {
    self->connack_ok_ = true;
    ev.session_present = (flags & 1) != 0;
    ev.limits = readConnackProperties(props);
    self->max_packet_size_ = ev.limits.maximum_packet_size;
  } else {
    ev.error = "broker refused: " + lowerFirst(mosquitto_reason_string(rc));
    ev.server_reference = serverReference(props);
    std::lock_guard lock(self->words_mu_);
    self->connack_words_ = ev.error;
  }
  self->emit(std::move(ev));
}

void MqttSession::onDisconnect(mosquitto*, void* obj, int rc, const mosquitto_property* props) {
  auto* self = static_cast<MqttSession*>(obj);
  // libmosquitto passes either a DISCONNECT reason code from the broker or a MOSQ_ERR_* value;
  // only reason codes reach 0x80.
  if (rc >= 0x80) {
    std::lock_guard lock(self->words_mu_);
    self->broker_disconnect_reason_ = rc;
    // Always empty with libmosquitto 2.0.11 (handle__disconnect frees the properties before
    // the callback); read for the versions that pass them on.
    self->server_reference_ = serverReference(props);
  }
}

void MqttSession::onPublish(mosquitto*, void* obj, int mid, int rc, const mosquitto_property*) {
  auto* self = static_cast<MqttSession*>(obj);
  bool signal = false;
  {
    std::lock_guard lock(self->puback_mu_);
    self->pubacks_.emplace_back(mid, rc);
    if (!self->puback_signalled_) {
      self->puback_signalled_ = true;
      signal = true;
    }
  }
  if (signal) {
    SessionEvent ev;
    ev.type = SessionEvent::Type::pubacks_ready;
    self->emit(std::move(ev));
  }
}

void MqttSession::onMessage(mosquitto*, void* obj, const mosquitto_message* msg,
                            const mosquitto_property*) {
  auto* self = static_cast<MqttSession*>(obj);
  SessionEvent ev;
  ev.type = SessionEvent::Type::message;
  ev.topic = msg->topic != nullptr ? msg->topic : "";
  ev.payload_size = msg->payloadlen > 0 ? static_cast<size_t>(msg->payloadlen) : 0;
  if (ev.payload_size > self->config_.max_incoming_bytes) {
    ev.oversize = true;  // counted and dropped on the strand; never copied
  } else if (ev.payload_size > 0) {
    ev.payload.assign(static_cast<const char*>(msg->payload), ev.payload_size);
  }
  self->emit(std::move(ev));
}

void MqttSession::onSubscribe(mosquitto*, void* obj, int mid, int count, const int* granted,
                              const mosquitto_property*) {
  auto* self = static_cast<MqttSession*>(obj);
  SessionEvent ev;
  ev.type = SessionEvent::Type::suback;
  ev.code = mid;
  ev.granted.assign(granted, granted + (count > 0 ? count : 0));
  self->emit(std::move(ev));
}

void MqttSession::onLog(mosquitto*, void* obj, int level, const char* text) {
  if (text == nullptr || (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) == 0) {
    return;
  }
  auto* self = static_cast<MqttSession*>(obj);
  std::string_view line(text);
  // libmosquitto reports TLS failures as "OpenSSL Error[n]: error:...:reason".
  if (line.rfind("OpenSSL Error", 0) == 0) {
    self->diag_.recordLibraryError(opensslReason(line));
  }
  static const log::Logger logger("mqtt");
  logger.debug("libmosquitto", {{"text", line}});
}

}  // namespace psa::cloudlink::detail
