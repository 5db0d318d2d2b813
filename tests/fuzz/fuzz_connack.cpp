// libFuzzer target: the CONNACK `check` reads from a broker (psa/cloudlink/connack.h).
// Invariants: never crash; a parsed CONNACK has a reason code in 0..255, limits within what
// MQTT allows (Maximum QoS 0..2, Receive Maximum 1..65535), and mqttPacketLength agrees with
// the packet's size; a parse never reads past its input (ASan).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "psa/cloudlink/connack.h"

namespace cl = psa::cloudlink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto length = cl::mqttPacketLength(bytes);
  auto parsed = cl::parseConnack(bytes);
  if (parsed) {
    if (!length || *length != bytes.size()) {
      __builtin_trap();
    }
    const cl::BrokerLimits& l = parsed->limits;
    if (parsed->reason_code < 0 || parsed->reason_code > 255 || l.maximum_qos < 0 ||
        l.maximum_qos > 2 || l.receive_maximum < 1 || l.receive_maximum > 65535) {
      __builtin_trap();
    }
    (void)cl::brokerLimitsText(l);
    (void)cl::brokerUnusable(l);
    (void)cl::BrokerLimits::fromJson(l.toJson());
  }
  return 0;
}
