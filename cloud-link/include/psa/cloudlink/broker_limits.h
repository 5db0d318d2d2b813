// What the broker announced in its CONNACK (MQTT 5, 3.2.2.3) and the rules the link follows
// from it. Clustered brokers (EMQX, HiveMQ, VerneMQ, AWS IoT Core, Azure Event Grid) announce
// their own limits; the link obeys them rather than learning them from refusals:
//   - a broker that grants less than QoS 1 is not used: delivery cannot be promised over QoS 0;
//   - records in flight stay within its Receive Maximum;
//   - without retained messages, the online status and the will go unretained.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "psa/store/json.h"

namespace psa::cloudlink {

struct BrokerLimits {
  bool announced = false;            ///< a successful CONNACK was read
  int receive_maximum = 65535;       ///< QoS 1 publishes the broker takes unacknowledged
  uint32_t maximum_packet_size = 0;  ///< bytes; 0: no limit announced
  int maximum_qos = 2;
  bool retain_available = true;
  int topic_alias_maximum = 0;
  int server_keep_alive_s = -1;    ///< -1: not sent (ours applies)
  int64_t session_expiry_s = -1;   ///< -1: not sent (ours applies)
  std::string assigned_client_id;  ///< empty: not sent

  /// The `cloud.broker` object of the status document (null until announced).
  json::Value toJson() const;
  /// Back from toJson() (the CLI and the status page read the status document).
  static BrokerLimits fromJson(const json::Value& v);
};

/// Why the link must not use this broker, in words for `last_error`; "" when it can.
std::string brokerUnusable(const BrokerLimits& limits);

/// Records in flight at most: the configured window within the broker's Receive Maximum.
size_t recordWindow(size_t configured, const BrokerLimits& limits);

/// The limits worth a technician's attention, in words ("receive maximum 2 · QoS 1 at most ·
/// no retained messages"); "" when the broker announced nothing restrictive.
std::string brokerLimitsText(const BrokerLimits& limits);

}  // namespace psa::cloudlink
