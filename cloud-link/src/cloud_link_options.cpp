// The link's options and status vocabulary: names, option validation, the status JSON. Pure
// functions, apart from the link's machinery (cloud_link.cpp).
#include <cstdio>

#include "psa/cloudlink/cloud_link.h"
#include "psa/cloudlink/policy.h"
#include "psa/cloudlink/topics.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"

namespace psa::cloudlink {

std::string_view confirmName(Confirm confirm) {
  return confirm == Confirm::receipt ? "receipt" : "broker";
}

std::optional<Confirm> parseConfirm(std::string_view text) {
  if (text == "broker") {
    return Confirm::broker;
  }
  if (text == "receipt") {
    return Confirm::receipt;
  }
  return std::nullopt;
}

std::string_view linkStateName(LinkState state) {
  switch (state) {
    case LinkState::stopped:
      return "stopped";
    case LinkState::connecting:
      return "connecting";
    case LinkState::connected:
      return "connected";
    case LinkState::backoff:
      return "backoff";
    case LinkState::stopping:
      return "stopping";
  }
  return "unknown";
}

std::vector<std::string> brokerUrls(const CloudLinkOptions& o) {
  return o.urls.empty() ? std::vector<std::string>{o.url} : o.urls;
}

Status validateOptions(const CloudLinkOptions& o) {
  if (!o.url.empty() && !o.urls.empty()) {
    return Error(Errc::invalid_argument, "cloud.url and cloud.urls: give one of the two");
  }
  const std::vector<std::string> urls = brokerUrls(o);
  for (size_t i = 0; i < urls.size(); ++i) {
    auto url = parseBrokerUrl(urls[i]);
    if (!url) {
      return Error(Errc::invalid_argument,
                   (o.urls.empty() ? std::string("cloud.url: ")
                                   : "cloud.urls item " + std::to_string(i + 1) + ": ") +
                       url.error().message);
    }
  }
  if (!Topics::validLevel(o.tenant)) {
    return Error(Errc::invalid_argument,
                 "agent.tenant: must be a non-empty MQTT topic level without '/', '+', '#'");
  }
  if (!Topics::validLevel(o.agent_id)) {
    return Error(Errc::invalid_argument,
                 "agent.id: must be a non-empty MQTT topic level without '/', '+', '#'");
  }
  if (o.client_id.size() > 256) {
    return Error(Errc::invalid_argument, "client_id: longer than 256 bytes");
  }
  if (o.ca_file.empty() || o.cert_file.empty() || o.key_file.empty()) {
    return Error(Errc::invalid_argument,
                 "cloud.ca_file, cloud.cert_file and cloud.key_file are all required (mutual TLS)");
  }
  if (!o.username.empty() && o.username_from_certificate) {
    return Error(Errc::invalid_argument,
                 "cloud.username and cloud.username_from_certificate: give one of the two");
  }
  if (o.username.size() > 65535) {
    return Error(Errc::invalid_argument, "cloud.username: longer than MQTT allows");
  }
  if (!o.password_file.empty() && o.username.empty() && !o.username_from_certificate) {
    return Error(Errc::invalid_argument,
                 "cloud.password_file needs cloud.username (or cloud.username_from_certificate)");
  }
  if (o.max_inflight < 1 || o.max_inflight > 65535) {
    return Error(Errc::invalid_argument, "cloud.max_inflight: must be 1..65535");
  }
  if (o.keepalive.count() < 5 || o.keepalive.count() > 65535) {
    return Error(Errc::invalid_argument, "cloud.keepalive: must be 5..65535 seconds");
  }
  if (o.session_expiry.count() < 0 || o.session_expiry.count() > 0xffffffffLL) {
    return Error(Errc::invalid_argument, "cloud.session_expiry: out of range");
  }
  if (o.confirm == Confirm::receipt && (o.receipt_timeout.count() <= 0 || o.max_unreceipted < 1)) {
    return Error(Errc::invalid_argument,
                 "cloud.receipt_timeout and max_unreceipted must be positive in receipt mode");
  }
  if (o.puback_timeout.count() <= 0 || o.connect_timeout.count() <= 0) {
    return Error(Errc::invalid_argument,
                 "cloud.puback_timeout and connect_timeout must be positive");
  }
  if (o.backoff_initial.count() <= 0 || o.backoff_max < o.backoff_initial) {
    return Error(Errc::invalid_argument, "backoff: need 0 < backoff_initial <= backoff_max");
  }
  if (o.retry_initial.count() <= 0 || o.retry_max < o.retry_initial) {
    return Error(Errc::invalid_argument, "retry: need 0 < retry_initial <= retry_max");
  }
  if (o.max_control_bytes < 1024) {
    return Error(Errc::invalid_argument, "max_control_bytes: at least 1024");
  }
  return {};
}

std::string LinkStatus::toJson() const {
  json::Value v = json::Value::object();
  v.set("state", json::Value::string(std::string(linkStateName(state))));
  v.set("connected", json::Value::boolean(connected));
  v.set("url", json::Value::string(url));
  v.set("confirm", json::Value::string(confirm));
  v.set("last_error", json::Value::string(last_error));
  v.set("last_error_at",
        json::Value::string(last_error_at_ms ? formatRfc3339(last_error_at_ms) : std::string()));
  v.set("since", json::Value::string(since_ms ? formatRfc3339(since_ms) : std::string()));
  v.set("next_retry_at",
        json::Value::string(next_retry_ms ? formatRfc3339(next_retry_ms) : std::string()));
  v.set("session_present", json::Value::boolean(session_present));
  v.set("in_flight", json::Value::integer(static_cast<int64_t>(in_flight)));
  v.set("awaiting_receipt", json::Value::integer(static_cast<int64_t>(awaiting_receipt)));
  v.set("published", json::Value::integer(static_cast<int64_t>(published)));
  v.set("resent", json::Value::integer(static_cast<int64_t>(resent)));
  v.set("chunked", json::Value::integer(static_cast<int64_t>(chunked)));
  v.set("chunks_published", json::Value::integer(static_cast<int64_t>(chunks_published)));
  v.set("aliased", json::Value::integer(static_cast<int64_t>(aliased)));
  v.set("acked", json::Value::integer(static_cast<int64_t>(acked)));
  v.set("dead_lettered", json::Value::integer(static_cast<int64_t>(dead_lettered)));
  v.set("retried", json::Value::integer(static_cast<int64_t>(retried)));
  json::Value codes = json::Value::object();
  for (const auto& [code, count] : reason_codes) {
    char key[8];
    std::snprintf(key, sizeof key, "0x%02X", static_cast<unsigned>(code) & 0xffu);
    codes.set(key, json::Value::integer(static_cast<int64_t>(count)));
  }
  v.set("reason_codes", std::move(codes));
  v.set("drain_rate", json::Value::number(drain_rate));
  v.set("connects", json::Value::integer(static_cast<int64_t>(connects)));
  v.set("reconnects", json::Value::integer(static_cast<int64_t>(reconnects)));
  v.set("watchdog_trips", json::Value::integer(static_cast<int64_t>(watchdog_trips)));
  v.set("receipts", json::Value::integer(static_cast<int64_t>(receipts)));
  v.set("receipts_invalid", json::Value::integer(static_cast<int64_t>(receipts_invalid)));
  v.set("control_received", json::Value::integer(static_cast<int64_t>(control_received)));
  v.set("status_published", json::Value::integer(static_cast<int64_t>(status_published)));
  v.set("control_rejected", json::Value::integer(static_cast<int64_t>(control_rejected)));
  v.set("store_errors", json::Value::integer(static_cast<int64_t>(store_errors)));
  v.set("broker_receive_maximum", json::Value::integer(broker_receive_maximum));
  v.set("broker", broker.toJson());
  return json::serialize(v);
}

}  // namespace psa::cloudlink
