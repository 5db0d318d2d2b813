// parseConnack: the bytes `check` reads from a broker, property by property, and what makes a
// CONNACK malformed.
#include "psa/cloudlink/connack.h"

#include <gtest/gtest.h>

#include <string>

namespace psa::cloudlink {
namespace {

// A CONNACK with `props` (already encoded) and the remaining length computed.
std::string connack(uint8_t flags, uint8_t code, const std::string& props) {
  std::string body;
  body.push_back(static_cast<char>(flags));
  body.push_back(static_cast<char>(code));
  body.push_back(static_cast<char>(props.size()));  // < 128 in these tests
  body += props;
  std::string pkt(1, '\x20');
  pkt.push_back(static_cast<char>(body.size()));
  return pkt + body;
}

std::string str(const std::string& s) {
  return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xff)} + s;
}

TEST(Connack, MosquittoDefaultsAnswer) {
  // What mosquitto 2.0 sends by default: Receive Maximum 20, Topic Alias Maximum 10.
  const std::string props = std::string("\x21\x00\x14", 3) + std::string("\x22\x00\x0a", 3);
  const auto c = parseConnack(connack(0, 0, props));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->reason_code, 0);
  EXPECT_FALSE(c->session_present);
  EXPECT_EQ(c->limits.receive_maximum, 20);
  EXPECT_EQ(c->limits.topic_alias_maximum, 10);
  EXPECT_EQ(c->limits.maximum_qos, 2);
  EXPECT_TRUE(c->limits.retain_available);
  EXPECT_EQ(brokerLimitsText(c->limits), "receive maximum 20");
}

TEST(Connack, EveryPropertyAndTheRefusalWords) {
  std::string props;
  props += std::string("\x11\x00\x00\x0e\x10", 5);  // session expiry 3600
  props += std::string("\x24\x00", 2);              // maximum QoS 0
  props += std::string("\x25\x00", 2);              // retain not available
  props += std::string("\x27\x00\x00\x80\x00", 5);  // maximum packet 32768
  props += "\x12" + str("auto-7");                  // assigned client id
  props += std::string("\x13\x00\x3c", 3);          // server keep alive 60
  props += "\x1f" + str("try the other node");      // reason string
  props += "\x26" + str("region") + str("eu");      // user property
  props += "\x26" + str("node") + str("b");         // user properties may repeat
  props += std::string("\x28\x01\x29\x00\x2a\x01", 6);
  props += "\x1c" + str("mqtt-b.example:8883");  // server reference
  const auto c = parseConnack(connack(1, 0x9C, props));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->session_present);
  EXPECT_EQ(c->reason_code, 0x9C);
  EXPECT_EQ(c->limits.session_expiry_s, 3600);
  EXPECT_EQ(c->limits.maximum_qos, 0);
  EXPECT_FALSE(c->limits.retain_available);
  EXPECT_EQ(c->limits.maximum_packet_size, 32768u);
  EXPECT_EQ(c->limits.assigned_client_id, "auto-7");
  EXPECT_EQ(c->limits.server_keep_alive_s, 60);
  EXPECT_EQ(c->reason_string, "try the other node");
  EXPECT_EQ(c->server_reference, "mqtt-b.example:8883");
  EXPECT_NE(brokerUnusable(c->limits), "");
}

TEST(Connack, WithoutPropertyLength) {
  const auto c = parseConnack(std::string("\x20\x02\x00\x87", 4));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->reason_code, 0x87);
}

TEST(Connack, MalformedPacketsAreRefusedWithTheReason) {
  struct Case {
    std::string bytes;
    std::string words;
  };
  const std::vector<Case> cases = {
      {std::string("\x30\x02\x00\x00", 4), "not a CONNACK packet"},
      {std::string("\x20\x05\x00\x00", 4), "remaining length does not match"},
      {std::string("\x20\x02\x02\x00", 4), "reserved acknowledge flags set"},
      {connack(0, 0, std::string("\x21\x00\x00", 3)), "property 0x21 is cut short or out of range"},
      {connack(0, 0, std::string("\x24\x02", 2)), "property 0x24 is cut short or out of range"},
      {connack(0, 0, std::string("\x27\x00\x00", 3)), "property 0x27 is cut short"},
      {connack(0, 0, std::string("\x21\x00\x05\x21\x00\x06", 6)), "property 0x21 given twice"},
      {connack(0, 0, std::string("\x01\x00", 2)), "property 0x01 has no place in a CONNACK"},
      {connack(0, 0, std::string("\x1f\x00\x09short", 8)), "property 0x1F is cut short"},
  };
  for (const Case& k : cases) {
    const auto c = parseConnack(k.bytes);
    ASSERT_FALSE(c) << k.words;
    EXPECT_NE(c.error().message.find(k.words), std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().message.rfind("malformed CONNACK: ", 0), 0u);
  }
}

TEST(Connack, PacketLengthFromTheFixedHeader) {
  EXPECT_EQ(*mqttPacketLength(""), 0u);
  EXPECT_EQ(*mqttPacketLength("\x20"), 0u);
  EXPECT_EQ(*mqttPacketLength(std::string("\x20\x03", 2)), 5u);
  EXPECT_EQ(*mqttPacketLength(std::string("\x20\x80", 2)), 0u);  // a second length byte follows
  EXPECT_EQ(*mqttPacketLength(std::string("\x20\x80\x01", 3)), 3u + 128u);
  EXPECT_FALSE(mqttPacketLength(std::string("\x20\xff\xff\xff\xff\x01", 6)));
}

}  // namespace
}  // namespace psa::cloudlink
