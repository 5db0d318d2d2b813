#include "psa/cloudlink/broker_limits.h"

#include <algorithm>

namespace psa::cloudlink {

json::Value BrokerLimits::toJson() const {
  if (!announced) {
    return json::Value::null();
  }
  json::Value v = json::Value::object();
  v.set("receive_maximum", json::Value::integer(receive_maximum));
  v.set("maximum_packet_size", json::Value::integer(maximum_packet_size));
  v.set("maximum_qos", json::Value::integer(maximum_qos));
  v.set("retain_available", json::Value::boolean(retain_available));
  v.set("topic_alias_maximum", json::Value::integer(topic_alias_maximum));
  v.set("server_keep_alive_s",
        server_keep_alive_s < 0 ? json::Value::null() : json::Value::integer(server_keep_alive_s));
  v.set("session_expiry_s",
        session_expiry_s < 0 ? json::Value::null() : json::Value::integer(session_expiry_s));
  v.set("assigned_client_id",
        assigned_client_id.empty() ? json::Value::null() : json::Value::string(assigned_client_id));
  return v;
}

BrokerLimits BrokerLimits::fromJson(const json::Value& v) {
  BrokerLimits limits;
  if (!v.isObject()) {
    return limits;
  }
  limits.announced = true;
  limits.receive_maximum = static_cast<int>(v.getInt("receive_maximum", 65535));
  limits.maximum_packet_size = static_cast<uint32_t>(v.getInt("maximum_packet_size"));
  limits.maximum_qos = static_cast<int>(v.getInt("maximum_qos", 2));
  limits.retain_available = v.getBool("retain_available", true);
  limits.topic_alias_maximum = static_cast<int>(v.getInt("topic_alias_maximum"));
  limits.server_keep_alive_s = static_cast<int>(v.getInt("server_keep_alive_s", -1));
  limits.session_expiry_s = v.getInt("session_expiry_s", -1);
  limits.assigned_client_id = v.getString("assigned_client_id");
  return limits;
}

std::string brokerUnusable(const BrokerLimits& limits) {
  if (limits.maximum_qos < 1) {
    return "broker grants QoS 0 only: records need QoS 1 to be delivered reliably ▸ allow QoS 1 "
           "for this client on the broker (mosquitto: max_qos)";
  }
  return {};
}

size_t recordWindow(size_t configured, const BrokerLimits& limits) {
  if (!limits.announced || limits.receive_maximum <= 0) {
    return configured;
  }
  return std::min(configured, static_cast<size_t>(limits.receive_maximum));
}

std::string brokerLimitsText(const BrokerLimits& limits) {
  if (!limits.announced) {
    return {};
  }
  std::string out;
  auto add = [&out](const std::string& s) { out += (out.empty() ? "" : " · ") + s; };
  if (limits.receive_maximum < 65535) {
    add("receive maximum " + std::to_string(limits.receive_maximum));
  }
  if (limits.maximum_packet_size > 0) {
    add("maximum packet " + std::to_string(limits.maximum_packet_size) + " bytes");
  }
  if (limits.maximum_qos < 2) {
    add("QoS " + std::to_string(limits.maximum_qos) + " at most");
  }
  if (!limits.retain_available) {
    add("no retained messages (status and will unretained)");
  }
  if (limits.server_keep_alive_s >= 0) {
    add("keep alive " + std::to_string(limits.server_keep_alive_s) + " s (set by the broker)");
  }
  if (limits.session_expiry_s >= 0) {
    add("session kept " + std::to_string(limits.session_expiry_s) + " s (set by the broker)");
  }
  if (!limits.assigned_client_id.empty()) {
    add("client id assigned by the broker");
  }
  return out;
}

}  // namespace psa::cloudlink
