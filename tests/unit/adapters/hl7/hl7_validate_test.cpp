// Validation: every broken corpus message with its exact expected issues; per-adapter rules.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "hl7_samples.h"
#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/validate.h"
#include "test_support.h"

namespace hl7 = psa::adapters::hl7;
using hl7::ErrorCode;
using hl7::Issue;
using hl7::Message;

namespace {

const std::string& corpus(const std::string& name) { return psa::test::hl7Corpus(name); }

struct Expected {
  ErrorCode code;
  std::string location;  // Location::toString()
  size_t segment_index;
  std::string text;
};

struct Case {
  std::string file;
  std::vector<Expected> issues;
  hl7::Outcome outcome;
  std::vector<std::string> required_segments = {};
};

std::vector<Case> brokenCases() {
  return {
      {"broken_missing_control_id.hl7",
       {{ErrorCode::required_field_missing, "MSH-10", 0, "message control id missing"}},
       hl7::Outcome::error},
      {"broken_missing_trigger.hl7",
       {{ErrorCode::required_field_missing, "MSH-9.2", 0, "trigger event missing"}},
       hl7::Outcome::error},
      {"broken_missing_type.hl7",
       {{ErrorCode::required_field_missing, "MSH-9.1", 0, "message type missing"},
        {ErrorCode::required_field_missing, "MSH-9.2", 0, "trigger event missing"}},
       hl7::Outcome::error},
      {"broken_missing_version.hl7",
       {{ErrorCode::required_field_missing, "MSH-12", 0, "version id missing"}},
       hl7::Outcome::error},
      {"broken_bad_version.hl7",
       {{ErrorCode::unsupported_version_id, "MSH-12.1", 0, "version id not supported"}},
       hl7::Outcome::reject},
      {"broken_bad_processing_id.hl7",
       {{ErrorCode::unsupported_processing_id, "MSH-11.1", 0, "processing id not supported"}},
       hl7::Outcome::reject},
      {"broken_bad_segment_id.hl7",
       {{ErrorCode::segment_sequence, "", 2, "segment 3 has no valid segment id"}},
       hl7::Outcome::error},
      {"broken_embedded_newline.hl7",
       {{ErrorCode::segment_sequence, "", 4, "segment 5 has no valid segment id"}},
       hl7::Outcome::error},
      {"broken_duplicate_encoding_chars.hl7",
       {{ErrorCode::data_type, "MSH-2", 0, "encoding characters must be 4 or 5 distinct symbols"},
        // with '^' as both component and repetition separator MSH-9 cannot be split
        {ErrorCode::required_field_missing, "MSH-9.2", 0, "trigger event missing"}},
       hl7::Outcome::error},
      {"broken_two_msh.hl7",
       {{ErrorCode::segment_sequence, "MSH[2]", 2, "more than one MSH segment"}},
       hl7::Outcome::error},
      {"broken_no_pid.hl7",
       {{ErrorCode::segment_sequence, "PID", 3, "required segment missing"}},
       hl7::Outcome::error,
       {"PID"}},
  };
}

std::string dump(const std::vector<Issue>& issues) {
  std::string out;
  for (const Issue& i : issues) {
    out += i.describe() + "\n";
  }
  return out;
}

}  // namespace

TEST(Hl7Validate, BrokenCorpusMessages) {
  for (const Case& c : brokenCases()) {
    SCOPED_TRACE(c.file);
    std::string text = corpus(c.file);
    Message m;
    ASSERT_TRUE(m.parse(text).ok());
    hl7::ValidationRules rules;
    rules.required_segments = c.required_segments;
    std::vector<Issue> issues = hl7::validate(m, rules);
    ASSERT_EQ(issues.size(), c.issues.size()) << dump(issues);
    for (size_t k = 0; k < issues.size(); ++k) {
      EXPECT_EQ(issues[k].code, c.issues[k].code) << dump(issues);
      EXPECT_EQ(issues[k].location.toString(), c.issues[k].location) << dump(issues);
      EXPECT_EQ(issues[k].segment_index, c.issues[k].segment_index);
      EXPECT_EQ(issues[k].text, c.issues[k].text);
      EXPECT_EQ(issues[k].severity, hl7::Severity::error);
      EXPECT_TRUE(issues[k].errc == psa::Errc::invalid_input);
      if (issues[k].segment_index < m.segmentCount()) {
        EXPECT_EQ(issues[k].byte_offset, m.segmentOffset(issues[k].segment_index));
      } else {
        EXPECT_EQ(issues[k].byte_offset, text.size());
      }
    }
    EXPECT_EQ(hl7::outcomeFor(issues), c.outcome);
  }
}

TEST(Hl7Validate, BrokenSegmentIdIsNotEchoed) {
  Message m;
  std::string text = corpus("broken_embedded_newline.hl7");
  ASSERT_TRUE(m.parse(text).ok());
  auto issues = hl7::validate(m);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].location.segment, "");
  EXPECT_EQ(issues[0].describe().find("continues"), std::string::npos);
  EXPECT_EQ(
      issues[0].describe(),
      "HL7 100 (Segment sequence error): segment 5 has no valid segment id [segment 5, byte " +
          std::to_string(text.find("that continues")) + "]");
}

TEST(Hl7Validate, LocationWithComponentCarriesRepetition) {
  Message m;
  ASSERT_TRUE(m.parse(corpus("broken_missing_trigger.hl7")).ok());
  auto issues = hl7::validate(m);
  ASSERT_EQ(issues.size(), 1u);
  const hl7::Location& loc = issues[0].location;
  EXPECT_EQ(loc.segment, "MSH");
  EXPECT_EQ(loc.sequence, 1);
  EXPECT_EQ(loc.field, 9);
  EXPECT_EQ(loc.repetition, 1);
  EXPECT_EQ(loc.component, 2);
}

TEST(Hl7Validate, FirstSegmentMustBeMsh) {
  Message m;
  ASSERT_TRUE(m.parse("BHS|^~\\&|A\rMSH|^~\\&|A|B|C|D|1||ADT^A04|1|P|2.5\r").ok());
  auto issues = hl7::validate(m);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].code, ErrorCode::segment_sequence);
  EXPECT_EQ(issues[0].location.toString(), "BHS");
  EXPECT_EQ(issues[0].text, "first segment is not MSH");
}

TEST(Hl7Validate, FieldSeparatorMustBeASymbol) {
  Message m;
  ASSERT_TRUE(m.parse("MSHA^~\\&AAAB\r").ok());
  auto issues = hl7::validate(m);
  ASSERT_GE(issues.size(), 1u);
  EXPECT_EQ(issues[0].code, ErrorCode::data_type);
  EXPECT_EQ(issues[0].location.toString(), "MSH-1");
  EXPECT_EQ(issues[0].text, "field separator is not a printable symbol");
}

TEST(Hl7Validate, EncodingCharactersMissing) {
  Message m;
  ASSERT_TRUE(m.parse("MSH||A|B|C|D|1||ADT^A04|1|P|2.5\r").ok());
  auto issues = hl7::validate(m);
  ASSERT_GE(issues.size(), 1u);
  EXPECT_EQ(issues[0].code, ErrorCode::data_type);
  EXPECT_EQ(issues[0].location.toString(), "MSH-2");
  EXPECT_EQ(issues[0].text, "encoding characters missing");
}

TEST(Hl7Validate, ValidCorpusMessagesHaveNoIssues) {
  for (const char* file : {"adt_a01_v231.hl7",
                           "adt_a04_v251_cr.hl7",
                           "adt_a08_v24_custom_delims.hl7",
                           "adt_a28_v25_latin1.hl7",
                           "adt_a31_v251_utf8.hl7",
                           "adt_a40_v23.hl7",
                           "adt_a01_v28_enhanced_nulls.hl7",
                           "adt_a08_v21.hl7",
                           "siu_s12_v251.hl7",
                           "siu_s13_v24.hl7",
                           "siu_s14_v23.hl7",
                           "siu_s15_v251.hl7",
                           "siu_s26_v27_truncation.hl7",
                           "oru_r01_v251_many_obx.hl7",
                           "mdm_t02_v25.hl7",
                           "vxu_v04_v251_crlf.hl7",
                           "rde_o11_v24.hl7",
                           "ppr_pc1_v25.hl7",
                           "dft_p03_v231.hl7",
                           "bar_p01_v23.hl7",
                           "mfn_m02_v25.hl7",
                           "mfn_m15_v251.hl7",
                           "oru_r01_v27_bang_delims.hl7",
                           "broken_no_pid.hl7"}) {
    Message m;
    ASSERT_TRUE(m.parse(corpus(file)).ok()) << file;
    auto issues = hl7::validate(m);
    EXPECT_TRUE(issues.empty()) << file << "\n" << dump(issues);
  }
}

TEST(Hl7Validate, AcceptedMessageTypes) {
  Message m;
  ASSERT_TRUE(m.parse(corpus("adt_a01_v231.hl7")).ok());
  hl7::ValidationRules rules;
  rules.accepted_message_types = {"ADT^A04", "ADT^A08", "SIU"};
  auto issues = hl7::validate(m, rules);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].code, ErrorCode::unsupported_event_code);
  EXPECT_EQ(issues[0].location.toString(), "MSH-9.2");
  EXPECT_EQ(hl7::outcomeFor(issues), hl7::Outcome::reject);

  rules.accepted_message_types = {"SIU", "ORU^R01"};
  issues = hl7::validate(m, rules);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].code, ErrorCode::unsupported_message_type);
  EXPECT_EQ(issues[0].location.toString(), "MSH-9.1");

  rules.accepted_message_types = {"ADT"};
  EXPECT_TRUE(hl7::validate(m, rules).empty());
  rules.accepted_message_types = {"ADT^A01"};
  EXPECT_TRUE(hl7::validate(m, rules).empty());
}

TEST(Hl7Validate, AcceptedVersionsAndProcessingIds) {
  Message m;
  ASSERT_TRUE(m.parse(corpus("oru_r01_v27_bang_delims.hl7")).ok());  // 2.7, processing id T
  hl7::ValidationRules rules;
  rules.accepted_versions = {"2.5.1"};
  rules.accepted_processing_ids = {"P"};
  auto issues = hl7::validate(m, rules);
  ASSERT_EQ(issues.size(), 2u);
  EXPECT_EQ(issues[0].code, ErrorCode::unsupported_version_id);
  EXPECT_EQ(issues[1].code, ErrorCode::unsupported_processing_id);
}

TEST(Hl7Validate, MaxIssuesAndAppend) {
  Message m;
  ASSERT_TRUE(m.parse("MSH|^~\\&\rxx1\rxx2\rxx3\rxx4\r").ok());
  hl7::ValidationRules rules;
  rules.max_issues = 3;
  std::vector<Issue> out(1);  // validate appends, it does not clear
  EXPECT_FALSE(hl7::validate(m, rules, out));
  EXPECT_EQ(out.size(), 4u);
}

TEST(Hl7Validate, UnparsedMessageReportsParseFailure) {
  Message m;
  ASSERT_FALSE(m.parse("PID|1").ok());
  auto issues = hl7::validate(m);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].code, ErrorCode::segment_sequence);
}

TEST(Hl7Validate, OutcomeFor) {
  std::vector<Issue> none;
  EXPECT_EQ(hl7::outcomeFor(none), hl7::Outcome::accept);
  Issue warning;
  warning.code = ErrorCode::data_type;
  warning.severity = hl7::Severity::warning;
  EXPECT_EQ(hl7::outcomeFor(std::vector<Issue>{warning}), hl7::Outcome::accept);
  Issue internal;
  internal.code = ErrorCode::application_internal_error;
  EXPECT_EQ(hl7::outcomeFor(std::vector<Issue>{internal}), hl7::Outcome::reject);
}
