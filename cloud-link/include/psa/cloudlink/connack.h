// An MQTT 5 CONNACK read from raw bytes (MQTT 5, 3.2): `check` connects by hand, without
// libmosquitto, and reads what the broker announces. Outside input: strict, bounded, fuzzed
// (tests/fuzz/fuzz_connack.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "psa/cloudlink/broker_limits.h"
#include "psa/store/result.h"

namespace psa::cloudlink {

struct Connack {
  int reason_code = 0;
  bool session_present = false;
  BrokerLimits limits;           ///< announced == true; MQTT defaults for what is absent
  std::string reason_string;     ///< the broker's words (0x1F), shown as they are
  std::string server_reference;  ///< 0x1C, with 0x9C/0x9D: where the broker sends us
};

/// The whole packet's length once `prefix` holds its fixed header (type byte and remaining
/// length); 0 while more bytes are needed. An error for a malformed remaining length.
Result<size_t> mqttPacketLength(std::string_view prefix);

/// Parses one whole CONNACK packet (fixed header included). Every property is checked against
/// its type; unknown ones, duplicates where MQTT forbids them, and trailing bytes are errors.
Result<Connack> parseConnack(std::string_view packet);

}  // namespace psa::cloudlink
