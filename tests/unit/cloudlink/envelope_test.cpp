#include "psa/cloudlink/envelope.h"

#include <gtest/gtest.h>

#include "psa/cloudlink/topics.h"

namespace psa::cloudlink {
namespace {

TEST(Envelope, ContentTypePerFormat) {
  EXPECT_EQ(contentTypeFor("hl7v2"), "x-application/hl7-v2+er7");
  EXPECT_EQ(contentTypeFor("fhir+json"), "application/fhir+json");
  EXPECT_EQ(contentTypeFor("csv+json"), "application/json");
  EXPECT_EQ(contentTypeFor("vendor+json"), "application/json");
  EXPECT_EQ(contentTypeFor("vendor+xml"), "application/xml");
  EXPECT_EQ(contentTypeFor("x12"), "application/edi-x12");
  EXPECT_EQ(contentTypeFor("binary"), "application/octet-stream");
  EXPECT_EQ(contentTypeFor("something-new"), "application/octet-stream");
}

TEST(Envelope, Sha256IsLowerHex) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(sha256Hex(std::string("\0\x01", 2)).size(), 64u);
}

TEST(Envelope, UserPropertiesFollowTheContract) {
  store::Record r;
  r.msg_id = "01JD0000000000000000000000";
  r.source = "cerner-adt";
  r.vendor = "cerner";
  r.kind = store::Kind::appointment;
  r.format = "hl7v2";
  r.received_at_ms = 1764103460123;
  r.payload = Sensitive<std::string>("hello");
  const auto props = userProperties(r);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"msg-id", "01JD0000000000000000000000"},
      {"source", "cerner-adt"},
      {"vendor", "cerner"},
      {"kind", "appointment"},
      {"format", "hl7v2"},
      {"received-at", "2025-11-25T20:44:20.123Z"},
      {"sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
  };
  EXPECT_EQ(props, expected);
}

TEST(Receipt, ParsesIdsAndIgnoresOtherMembers) {
  auto r = parseReceipt(R"({"at":"2026-01-01T00:00:00Z","msg_ids":["01A","01B_c-d"]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (std::vector<std::string>{"01A", "01B_c-d"}));
  auto empty = parseReceipt(R"({"msg_ids":[]})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(Receipt, RoundTripsWithFormatReceipt) {
  const std::vector<std::string> ids = {"01JD0000000000000000000000", "01JD0000000000000000000001"};
  EXPECT_EQ(formatReceipt(ids),
            R"({"msg_ids":["01JD0000000000000000000000","01JD0000000000000000000001"]})");
  auto r = parseReceipt(formatReceipt(ids));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, ids);
}

TEST(Receipt, RejectsBadInputWithExactErrors) {
  struct Case {
    std::string payload;
    Errc code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", Errc::invalid_input, "receipt: line 1 column 1: unexpected end of input, expected a value"},
      {"[1]", Errc::invalid_input, "receipt: expected a JSON object"},
      {"{}", Errc::invalid_input, "receipt: missing \"msg_ids\""},
      {R"({"msg_ids":{}})", Errc::invalid_input, "receipt: \"msg_ids\" must be an array"},
      {R"({"msg_ids":["ok",7]})", Errc::invalid_input, "receipt: msg_ids[1] is not a valid msg-id"},
      {R"({"msg_ids":[""]})", Errc::invalid_input, "receipt: msg_ids[0] is not a valid msg-id"},
      {R"({"msg_ids":["a b"]})", Errc::invalid_input, "receipt: msg_ids[0] is not a valid msg-id"},
      {R"({"msg_ids":["a\"b"]})", Errc::invalid_input, "receipt: msg_ids[0] is not a valid msg-id"},
      {"{\"msg_ids\":[\"" + std::string(65, 'A') + "\"]}", Errc::invalid_input,
       "receipt: msg_ids[0] is not a valid msg-id"},
  };
  for (const Case& c : cases) {
    auto r = parseReceipt(c.payload);
    ASSERT_FALSE(r.ok()) << c.payload;
    EXPECT_TRUE(r.error().is(c.code)) << c.payload;
    EXPECT_EQ(r.error().message, c.message) << c.payload;
  }
}

TEST(Receipt, EnforcesLimits) {
  ReceiptLimits limits;
  limits.max_bytes = 64;
  limits.max_ids = 2;
  auto big = parseReceipt(std::string(65, ' '), limits);
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(big.error().is(Errc::limit));
  EXPECT_EQ(big.error().message, "receipt is 65 bytes, limit 64");
  auto many = parseReceipt(R"({"msg_ids":["a","b","c"]})", limits);
  ASSERT_FALSE(many.ok());
  EXPECT_TRUE(many.error().is(Errc::limit));
  EXPECT_EQ(many.error().message, "receipt: 3 msg_ids, limit 2");
  auto deep = parseReceipt(std::string(100, '[') + std::string(100, ']'));
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(deep.error().is(Errc::limit));
}

TEST(Topics, FollowTheContract) {
  Topics t("acme-health", "practice-0042");
  EXPECT_EQ(t.up(store::Kind::patient), "ps/acme-health/practice-0042/up/patient");
  EXPECT_EQ(t.status(), "ps/acme-health/practice-0042/status");
  EXPECT_EQ(t.receipt(), "ps/acme-health/practice-0042/receipt");
  EXPECT_EQ(t.configSet(), "ps/acme-health/practice-0042/config/set");
  EXPECT_EQ(t.configState(), "ps/acme-health/practice-0042/config/state");
  EXPECT_EQ(t.commandFilter(), "ps/acme-health/practice-0042/cmd/+");
  EXPECT_EQ(t.commandResult(), "ps/acme-health/practice-0042/cmd/result");
  EXPECT_EQ(t.audit(), "ps/acme-health/practice-0042/audit");
  EXPECT_EQ(t.down(store::Kind::appointment), "ps/acme-health/practice-0042/down/appointment");
  EXPECT_EQ(t.downFilter(), "ps/acme-health/practice-0042/down/+");
  EXPECT_EQ(t.downResult(), "ps/acme-health/practice-0042/down/result");
  EXPECT_FALSE(Topics::validLevel("a/b"));
  EXPECT_FALSE(Topics::validLevel("+"));
  EXPECT_FALSE(Topics::validLevel(""));
  EXPECT_TRUE(Topics::validLevel("practice-0042"));
}

}  // namespace
}  // namespace psa::cloudlink
