// Reads a successful CONNACK's properties into BrokerLimits, with the MQTT 5 defaults for
// those the broker left out (Receive Maximum 65535, Maximum QoS 2, Retain Available 1).
#pragma once

#include <mosquitto.h>

#include "psa/cloudlink/broker_limits.h"

namespace psa::cloudlink::detail {

BrokerLimits readConnackProperties(const mosquitto_property* props);

}  // namespace psa::cloudlink::detail
