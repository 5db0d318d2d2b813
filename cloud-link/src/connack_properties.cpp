#include "connack_properties.h"

#include <mqtt_protocol.h>

#include <cstdlib>

namespace psa::cloudlink::detail {

BrokerLimits readConnackProperties(const mosquitto_property* props) {
  BrokerLimits limits;
  limits.announced = true;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint8_t u8 = 0;
  if (mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &u16, false) != nullptr) {
    limits.receive_maximum = u16;
  }
  if (mosquitto_property_read_int32(props, MQTT_PROP_MAXIMUM_PACKET_SIZE, &u32, false) != nullptr) {
    limits.maximum_packet_size = u32;
  }
  if (mosquitto_property_read_byte(props, MQTT_PROP_MAXIMUM_QOS, &u8, false) != nullptr) {
    limits.maximum_qos = u8;
  }
  if (mosquitto_property_read_byte(props, MQTT_PROP_RETAIN_AVAILABLE, &u8, false) != nullptr) {
    limits.retain_available = u8 != 0;
  }
  if (mosquitto_property_read_int16(props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, &u16, false) != nullptr) {
    limits.topic_alias_maximum = u16;
  }
  if (mosquitto_property_read_int16(props, MQTT_PROP_SERVER_KEEP_ALIVE, &u16, false) != nullptr) {
    limits.server_keep_alive_s = u16;
  }
  if (mosquitto_property_read_int32(props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, &u32, false) !=
      nullptr) {
    limits.session_expiry_s = u32;
  }
  char* id = nullptr;
  if (mosquitto_property_read_string(props, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, &id, false) !=
      nullptr) {
    limits.assigned_client_id = id != nullptr ? id : "";
    std::free(id);
  }
  return limits;
}

}  // namespace psa::cloudlink::detail
