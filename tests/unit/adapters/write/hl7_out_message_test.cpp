// HL7 write-back messages: MSH-7/MSH-10 preparation and ACK interpretation (issue 15).
#include "psa/adapters/write/hl7_out_message.h"

#include <gtest/gtest.h>

#include "psa/adapters/write/hl7_outbound.h"

namespace psa::adapters::write {
namespace {

constexpr const char* kId = "01JEKX4Z9Q8M3T6V7W2Y5B0C1D";
constexpr int64_t kNow = 1796666400123;  // 2026-12-07T18:00:00.123Z

TEST(Hl7OutMessage, FillsEmptyMsh7AndMsh10AndNormalisesTerminators) {
  auto p = prepareOutbound(
      "MSH|^~\\&|PS|CLOUD|PMS|CLINIC|||SIU^S12|||2.5.1\r\nSCH|A1\n\nPID|1||M1\n", kId, kNow);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->control_id, controlIdFor(kId));
  EXPECT_EQ(controlIdFor(kId), "4Z9Q8M3T6V7W2Y5B0C1D");
  EXPECT_EQ(p->text,
            "MSH|^~\\&|PS|CLOUD|PMS|CLINIC|20261207180000+0000||SIU^S12|4Z9Q8M3T6V7W2Y5B0C1D||"
            "2.5.1\rSCH|A1\rPID|1||M1\r");
}

TEST(Hl7OutMessage, KeepsGivenValuesAndExtendsShortMsh) {
  auto kept =
      prepareOutbound("MSH|^~\\&|PS|C|P|Q|20250101||ADT^A08|MY-ID|P|2.3\rPID|1\r", kId, kNow);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->text, "MSH|^~\\&|PS|C|P|Q|20250101||ADT^A08|MY-ID|P|2.3\rPID|1\r");
  EXPECT_EQ(kept->control_id, "MY-ID");

  auto short_msh = prepareOutbound("MSH#^~\\&#PS##P##  ##ADT^A08", kId, kNow);
  ASSERT_TRUE(short_msh) << short_msh.error().message;
  EXPECT_EQ(short_msh->text, "MSH#^~\\&#PS##P##  ##ADT^A08#4Z9Q8M3T6V7W2Y5B0C1D\r");

  // Prepared once, the same bytes go out on every retry.
  auto again = prepareOutbound(kept->text, "01JEKX4Z9Q8M3T6V7W2Y5B0C1E", kNow + 60000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->text, kept->text);
  EXPECT_FALSE(prepareOutbound("PID|1\r", kId, kNow));
  EXPECT_FALSE(prepareOutbound("", kId, kNow));
}

TEST(Hl7OutMessage, AckAcceptedGivesPmsRef) {
  const auto r =
      readAck("MSH|^~\\&|PMS|X|PS|C|20261207||ACK^S12^ACK|A1|P|2.5.1\rMSA|AA|C-9\r", "C-9");
  EXPECT_EQ(r.verdict, AckVerdict::delivered);
  EXPECT_EQ(r.control_id, "C-9");
  EXPECT_EQ(readAck("MSH|^~\\&|PMS|X\rMSA|CA|C-9\r", "C-9").verdict, AckVerdict::delivered);
}

TEST(Hl7OutMessage, AckErrorsCarryCodesAndTexts) {
  const auto ae = readAck(
      "MSH|^~\\&|PMS|X|PS|C|20261207||ACK^S12^ACK|A1|P|2.5.1\rMSA|AE|C-9|see ERR\r"
      "ERR||PID^1^3|101^Required field missing^HL70357|E||||patient id\\T\\ required\r",
      "C-9");
  EXPECT_EQ(ae.verdict, AckVerdict::failed);
  EXPECT_EQ(ae.error,
            "AE: HL7 101 (Required field missing) at PID-3 severity E; patient id& required; "
            "see ERR");
  const auto old = readAck(
      "MSH|^~\\&|PMS|X|PS|C|20261207||ACK|A1|P|2.3\rMSA|AR|C-9\r"
      "ERR|MSH^1^9^200&Unsupported message type&HL70357\r",
      "C-9");
  EXPECT_EQ(old.verdict, AckVerdict::failed);
  EXPECT_EQ(old.error, "AR: HL7 200 (Unsupported message type) at MSH-9");
  for (const char* code : {"CE", "CR"}) {
    EXPECT_EQ(readAck(std::string("MSH|^~\\&|P\rMSA|") + code + "|C-9\r", "C-9").verdict,
              AckVerdict::failed);
  }
  // The PMS's texts are cut and lose control characters.
  const std::string longer(1000, 'x');
  const auto cut = readAck("MSH|^~\\&|P|||||||||2.5.1\rMSA|AE|C-9|" + longer + "\r", "C-9");
  EXPECT_EQ(cut.error.size(), kMaxAckErrorBytes);
}

TEST(Hl7OutMessage, StaleAndInvalidAcks) {
  EXPECT_EQ(readAck("MSH|^~\\&|PMS\rMSA|AA|OLD-1\r", "C-9").verdict, AckVerdict::stale);
  EXPECT_EQ(readAck("MSH|^~\\&|PMS\rMSA|AE|OLD-1\r", "C-9").verdict, AckVerdict::stale);
  const auto none = readAck("MSH|^~\\&|PMS\r", "C-9");
  EXPECT_EQ(none.verdict, AckVerdict::invalid);
  EXPECT_NE(none.error.find("no MSA"), std::string::npos);
  EXPECT_EQ(readAck("garbage", "C-9").verdict, AckVerdict::invalid);
  EXPECT_EQ(readAck("MSH|^~\\&|PMS\rMSA|ZZ|C-9\r", "C-9").verdict, AckVerdict::invalid);
}

TEST(Hl7OutboundConfig, SchemaDefaultsAndParse) {
  const auto schema = hl7OutboundSchema();
  auto config = json::parse(R"({"name":"pms-out","type":"hl7-mllp-out","vendor":"generic",)"
                            R"("connect":"pms.local:6661","tls":{"ca_file":"ca.pem"}})")
                    .value();
  std::vector<schema::Issue> issues;
  schema::validate(config, *schema, "adapters[0]", issues);
  ASSERT_TRUE(issues.empty()) << issues[0].format();
  auto s = parseHl7OutboundSettings(config, "/var/lib/psa");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->host, "pms.local");
  EXPECT_EQ(s->port, 6661);
  EXPECT_EQ(s->ack_timeout, std::chrono::seconds(30));
  EXPECT_TRUE(s->tls);
  EXPECT_EQ(s->ca_file, std::filesystem::path("/var/lib/psa/ca.pem"));
  EXPECT_FALSE(s->write.enabled);
  EXPECT_FALSE(s->write.dry_run);

  auto v6 = json::parse(R"({"name":"o","type":"hl7-mllp-out","vendor":"generic",)"
                        R"("connect":"[::1]:2575","write":{"enabled":true,"dry_run":true}})")
                .value();
  auto s6 = parseHl7OutboundSettings(v6, {});
  ASSERT_TRUE(s6);
  EXPECT_EQ(s6->host, "::1");
  EXPECT_FALSE(s6->tls);  // no "tls" object: plain TCP (the schema's defaults add an empty one)
  EXPECT_TRUE(s6->write.enabled);
  EXPECT_TRUE(s6->write.dry_run);
}

TEST(Hl7OutboundConfig, BadValuesAreReportedWithTheirPath) {
  const auto schema = hl7OutboundSchema();
  auto check = [&](const std::string& extra, const std::string& expect) {
    auto config =
        json::parse(R"({"name":"o","type":"hl7-mllp-out","vendor":"generic",)" + extra + "}")
            .value();
    std::vector<schema::Issue> issues;
    schema::validate(config, *schema, "adapters[0]", issues);
    ASSERT_FALSE(issues.empty()) << extra;
    EXPECT_NE(issues[0].format().find(expect), std::string::npos) << issues[0].format();
  };
  check(R"("connect":"pms.local")", "adapters[0].connect");
  check(R"("connect":"pms.local:0")", "port must be a number 1..65535");
  check(R"("connect":"::1:2575")", "adapters[0].connect");
  check(R"("connect":"a:1","ack_timeout_s":0)", "adapters[0].ack_timeout_s");
  check(R"("connect":"a:1","write":{"enabled":"yes"})", "adapters[0].write.enabled");
  check(R"("connect":"a:1","tls":{"cert_file":"c.pem"})", "both cert_file and key_file");
  check(R"("connect":"a:1","bogus":1)", "adapters[0].bogus");
}

}  // namespace
}  // namespace psa::adapters::write
