// CONNACK properties (real libmosquitto property lists) into BrokerLimits, and the rules the
// link follows from them: QoS 0 only is refused, the window stays within Receive Maximum, the
// words a technician sees, and the status document's round trip.
#include "psa/cloudlink/broker_limits.h"

#include <gtest/gtest.h>
#include <mqtt_protocol.h>

#include "connack_properties.h"

namespace psa::cloudlink {
namespace {

struct Props {
  mosquitto_property* list = nullptr;
  ~Props() { mosquitto_property_free_all(&list); }
};

TEST(BrokerLimits, AbsentPropertiesTakeTheMqttDefaults) {
  const BrokerLimits l = detail::readConnackProperties(nullptr);
  EXPECT_TRUE(l.announced);
  EXPECT_EQ(l.receive_maximum, 65535);
  EXPECT_EQ(l.maximum_packet_size, 0u);
  EXPECT_EQ(l.maximum_qos, 2);
  EXPECT_TRUE(l.retain_available);
  EXPECT_EQ(l.topic_alias_maximum, 0);
  EXPECT_EQ(l.server_keep_alive_s, -1);
  EXPECT_EQ(l.session_expiry_s, -1);
  EXPECT_EQ(l.assigned_client_id, "");
  EXPECT_EQ(brokerUnusable(l), "");
  EXPECT_EQ(recordWindow(100, l), 100u);
  EXPECT_EQ(brokerLimitsText(l), "");
}

TEST(BrokerLimits, EveryAnnouncedPropertyIsRead) {
  Props p;
  ASSERT_EQ(mosquitto_property_add_int16(&p.list, MQTT_PROP_RECEIVE_MAXIMUM, 7), MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_property_add_int32(&p.list, MQTT_PROP_MAXIMUM_PACKET_SIZE, 32768),
            MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_property_add_byte(&p.list, MQTT_PROP_MAXIMUM_QOS, 1), MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_property_add_byte(&p.list, MQTT_PROP_RETAIN_AVAILABLE, 0), MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_property_add_int16(&p.list, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, 10),
            MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_property_add_int16(&p.list, MQTT_PROP_SERVER_KEEP_ALIVE, 120),
            MOSQ_ERR_SUCCESS);
  ASSERT_EQ(mosquitto_property_add_int32(&p.list, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600),
            MOSQ_ERR_SUCCESS);
  ASSERT_EQ(
      mosquitto_property_add_string(&p.list, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER, "auto-1F3"),
      MOSQ_ERR_SUCCESS);
  const BrokerLimits l = detail::readConnackProperties(p.list);
  EXPECT_EQ(l.receive_maximum, 7);
  EXPECT_EQ(l.maximum_packet_size, 32768u);
  EXPECT_EQ(l.maximum_qos, 1);
  EXPECT_FALSE(l.retain_available);
  EXPECT_EQ(l.topic_alias_maximum, 10);
  EXPECT_EQ(l.server_keep_alive_s, 120);
  EXPECT_EQ(l.session_expiry_s, 3600);
  EXPECT_EQ(l.assigned_client_id, "auto-1F3");
  EXPECT_EQ(brokerUnusable(l), "");  // QoS 1 is all we need
  EXPECT_EQ(recordWindow(100, l), 7u);
  EXPECT_EQ(recordWindow(5, l), 5u);
  EXPECT_EQ(brokerLimitsText(l),
            "receive maximum 7 · maximum packet 32768 bytes · QoS 1 at most · no retained "
            "messages (status and will unretained) · keep alive 120 s (set by the broker) · "
            "session kept 3600 s (set by the broker) · client id assigned by the broker");
}

TEST(BrokerLimits, QosZeroOnlyIsRefusedWithTheReason) {
  Props p;
  ASSERT_EQ(mosquitto_property_add_byte(&p.list, MQTT_PROP_MAXIMUM_QOS, 0), MOSQ_ERR_SUCCESS);
  const BrokerLimits l = detail::readConnackProperties(p.list);
  EXPECT_EQ(l.maximum_qos, 0);
  const std::string why = brokerUnusable(l);
  EXPECT_EQ(why.rfind("broker grants QoS 0 only", 0), 0u) << why;
  EXPECT_NE(why.find("max_qos"), std::string::npos) << why;
}

TEST(BrokerLimits, StatusDocumentRoundTrip) {
  EXPECT_TRUE(BrokerLimits{}.toJson().isNull());  // not connected yet
  EXPECT_FALSE(BrokerLimits::fromJson(json::Value::null()).announced);
  BrokerLimits l;
  l.announced = true;
  l.receive_maximum = 20;
  l.maximum_packet_size = 4000;
  l.maximum_qos = 1;
  l.retain_available = false;
  l.server_keep_alive_s = 60;
  const json::Value v = l.toJson();
  EXPECT_EQ(v.getInt("receive_maximum"), 20);
  EXPECT_TRUE(v.find("session_expiry_s")->isNull());
  EXPECT_TRUE(v.find("assigned_client_id")->isNull());
  const BrokerLimits back = BrokerLimits::fromJson(v);
  EXPECT_EQ(brokerLimitsText(back), brokerLimitsText(l));
  EXPECT_EQ(back.session_expiry_s, -1);
  EXPECT_EQ(back.maximum_packet_size, 4000u);
}

}  // namespace
}  // namespace psa::cloudlink
