// The HL7 profiler on the project's sample messages: counts per type, fill rates, identifier
// types, SSN-like values, malformed messages; and never a value in the report.
#include <gtest/gtest.h>

#include <algorithm>

#include "hl7_samples.h"
#include "psa/adapters/discover/hl7_profile.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/store/json.h"

namespace discover = psa::adapters::discover;
namespace json = psa::json;
using psa::test::hl7Corpus;

namespace {

const char* kMarker = "ZZPHIMARKER123";

// An ADT^A04 whose patient fields all carry the marker; PID-19 holds an SSN.
std::string markedMessage(int n, bool ssn) {
  return std::string("MSH|^~\\&|APP") + kMarker + "|FAC" + kMarker +
         "|PSA|EDGE|20261201||ADT^A04^ADT_A01|C" + std::to_string(n) +
         "|P|2.5.1\rEVN|A04|20261201\rPID|1||" + kMarker + "^^^HOSP^MR~" + kMarker +
         "9^^^SSA^SS||" + kMarker + "^" + kMarker + "||19800101|F|||1 " + kMarker +
         " ST^^TOWN^IL^62701||||||||" + (ssn ? "123-45-6789" : "") + "\rZPI|1|" + kMarker + "\r";
}

const json::Value* typeEntry(const json::Value& report, const std::string& type) {
  for (const auto& e : report.find("message_types")->items()) {
    if (e.getString("type") == type) {
      return &e;
    }
  }
  return nullptr;
}

TEST(DiscoverHl7Profile, CountsTypesSegmentsFieldsAndIdentifierTypes) {
  discover::Hl7Profiler p;
  EXPECT_EQ(p.addFile(hl7Corpus("adt_a01_v231.hl7")), 1u);
  EXPECT_EQ(p.addFile(hl7Corpus("siu_s12_v251.hl7")), 1u);
  EXPECT_EQ(p.addFile(hl7Corpus("batch_fhs_bhs.hl7")) > 1, true);
  const json::Value r = p.report();
  EXPECT_EQ(r.getInt("files"), 3);
  EXPECT_EQ(r.getInt("malformed"), 0);
  EXPECT_GE(r.getInt("batches"), 1);
  const json::Value* adt = typeEntry(r, "ADT^A01");
  ASSERT_NE(adt, nullptr) << json::serialize(r, true);
  EXPECT_GE(adt->getInt("count"), 1);
  EXPECT_EQ(adt->find("segments")->getInt("PID"), adt->getInt("count"));
  EXPECT_GE(adt->getInt("in1"), 1);
  EXPECT_GE(adt->find("fields")->getInt("PID-3"), 1);
  // The sample's PID-3 has an MR and an SS repetition: codes counted, SSN place reported.
  const json::Value* ids = adt->find("identifier_types")->find("PID-3");
  ASSERT_NE(ids, nullptr);
  EXPECT_GE(ids->getInt("MR"), 1);
  EXPECT_GE(ids->getInt("SS"), 1);
  bool ss = false;
  for (const auto& e : r.find("ssn_like")->items()) {
    ss = ss || e.getString("field") == "PID-3 (SS)";
  }
  EXPECT_TRUE(ss) << json::serialize(r, true);
  EXPECT_NE(typeEntry(r, "SIU^S12"), nullptr);
  EXPECT_GE(r.find("versions")->getInt("2.3.1"), 1);
  EXPECT_GE(r.find("encoding_characters")->getInt("|^~\\&"), 3);
}

TEST(DiscoverHl7Profile, FillRatesSsnFieldsAndNoValuesInAnyOutput) {
  discover::Hl7Profiler p;
  for (int k = 0; k < 4; ++k) {
    p.addMessage(markedMessage(k, k % 2 == 0));
  }
  const json::Value r = p.report();
  const json::Value* adt = typeEntry(r, "ADT^A04");
  ASSERT_NE(adt, nullptr);
  EXPECT_EQ(adt->getInt("count"), 4);
  EXPECT_EQ(adt->find("fields")->getInt("PID-19"), 2);
  EXPECT_EQ(adt->find("fields")->getInt("PID-5"), 4);
  EXPECT_EQ(adt->find("segments")->getInt("ZPI"), 4);
  EXPECT_EQ(r.find("z_segments")->getInt("ZPI"), 4);
  EXPECT_EQ(r.find("sending_applications")->getInt("distinct"), 1);
  std::map<std::string, int64_t> ssn;
  for (const auto& e : r.find("ssn_like")->items()) {
    ssn[e.getString("field")] = e.getInt("count");
  }
  EXPECT_EQ(ssn["PID-19"], 2);
  EXPECT_EQ(ssn["PID-3 (SS)"], 4);
  EXPECT_EQ(p.suggestedMessageTypes(), std::vector<std::string>{"ADT^A04"});
  const std::string all = json::serialize(r, true) + p.summary();
  EXPECT_EQ(all.find(kMarker), std::string::npos) << all;
  EXPECT_EQ(all.find("123-45-6789"), std::string::npos);
  EXPECT_NE(p.summary().find("PID-19 2/4"), std::string::npos) << p.summary();
}

TEST(DiscoverHl7Profile, MalformedMessagesAreCountedWithCodeAndLocationAndDoNotStopTheRun) {
  discover::Hl7Profiler p;
  p.addMessage(std::string("PID|1||") + kMarker + "\r");  // no MSH
  p.addMessage(hl7Corpus("broken_missing_control_id.hl7"));
  p.addMessage(markedMessage(1, false));
  EXPECT_EQ(p.messages(), 3u);
  EXPECT_EQ(p.malformed(), 1u);
  EXPECT_EQ(p.analysed(), 2u);
  const json::Value r = p.report();
  ASSERT_EQ(r.find("parse_errors")->items().size(), 1u);
  EXPECT_NE(r.find("parse_errors")->items()[0].getString("error").find("HL7 100"),
            std::string::npos);
  bool msh10 = false;
  for (const auto& e : r.find("validation_issues")->items()) {
    msh10 = msh10 || e.getString("issue").find("MSH-10") != std::string::npos;
  }
  EXPECT_TRUE(msh10) << json::serialize(r, true);
  EXPECT_EQ(json::serialize(r).find(kMarker), std::string::npos);
}

TEST(DiscoverHl7Profile, ReadsMllpCapturesAndLineEndingVariants) {
  discover::Hl7Profiler p;
  std::string capture = psa::adapters::hl7::mllpFrame(markedMessage(1, false)) +
                        psa::adapters::hl7::mllpFrame(markedMessage(2, true));
  EXPECT_EQ(p.addFile(capture), 2u);
  std::string lf = markedMessage(3, false);
  std::replace(lf.begin(), lf.end(), '\r', '\n');
  EXPECT_EQ(p.addFile(lf), 1u);
  EXPECT_EQ(p.addFile(hl7Corpus("vxu_v04_v251_crlf.hl7")), 1u);
  EXPECT_EQ(p.analysed(), 4u);
}

TEST(DiscoverHl7Profile, CodesThatAreNotCodesAreNeverPrinted) {
  discover::Hl7Profiler p;
  p.addMessage(std::string("MSH|^~\\&|A|B|C|D|2026||") + kMarker + "^" + kMarker +
               "|1|P|2.5\rPID|1||X^^^^" + kMarker + "\r");
  const std::string all = json::serialize(p.report()) + p.summary();
  EXPECT_EQ(all.find(kMarker), std::string::npos) << all;
  EXPECT_NE(all.find("(unreadable)"), std::string::npos);
  EXPECT_TRUE(p.suggestedMessageTypes().empty());
}

TEST(DiscoverHl7Profile, SsnShapes) {
  EXPECT_TRUE(discover::looksLikeSsn("123-45-6789"));
  EXPECT_TRUE(discover::looksLikeSsn("123456789"));
  EXPECT_TRUE(discover::looksLikeSsn("12345-6789"));
  EXPECT_FALSE(discover::looksLikeSsn("1234567890"));
  EXPECT_FALSE(discover::looksLikeSsn("123-45-678"));
  EXPECT_FALSE(discover::looksLikeSsn("(555)555-0100"));
}

}  // namespace
