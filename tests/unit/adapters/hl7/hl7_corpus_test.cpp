// The whole corpus under tests/data/hl7: every valid message parses, validates, classifies to
// its kind, renders every leaf by a path that resolves back to it, and gets an ACK that is
// itself a valid HL7 message. Also: every file in the directory is covered by some test.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/classify.h"
#include "psa/adapters/hl7/inspect.h"
#include "psa/adapters/hl7/validate.h"
#include "test_support.h"

namespace hl7 = psa::adapters::hl7;
using psa::store::Kind;

namespace {

const std::string kDir = std::string(PSA_TEST_DATA_DIR) + "/hl7/";

struct Entry {
  const char* file;
  const char* type;
  const char* trigger;
  const char* version;
  Kind kind;
  char field_separator;
  size_t segments;
};

const std::vector<Entry> kValid = {
    {"adt_a01_v231.hl7", "ADT", "A01", "2.3.1", Kind::patient, '|', 9},
    {"adt_a04_v251_cr.hl7", "ADT", "A04", "2.5.1", Kind::patient, '|', 4},
    {"adt_a08_v24_custom_delims.hl7", "ADT", "A08", "2.4", Kind::patient, '#', 4},
    {"adt_a28_v25_latin1.hl7", "ADT", "A28", "2.5", Kind::patient, '|', 4},
    {"adt_a31_v251_utf8.hl7", "ADT", "A31", "2.5.1", Kind::patient, '|', 4},
    {"adt_a40_v23.hl7", "ADT", "A40", "2.3", Kind::patient, '|', 4},
    {"adt_a01_v28_enhanced_nulls.hl7", "ADT", "A01", "2.8", Kind::patient, '|', 4},
    {"adt_a08_v21.hl7", "ADT", "A08", "2.1", Kind::patient, '|', 3},
    {"siu_s12_v251.hl7", "SIU", "S12", "2.5.1", Kind::appointment, '|', 10},
    {"siu_s13_v24.hl7", "SIU", "S13", "2.4", Kind::appointment, '|', 5},
    {"siu_s14_v23.hl7", "SIU", "S14", "2.3", Kind::appointment, '|', 4},
    {"siu_s15_v251.hl7", "SIU", "S15", "2.5.1", Kind::appointment, '|', 4},
    {"siu_s26_v27_truncation.hl7", "SIU", "S26", "2.7", Kind::appointment, '|', 5},
    {"oru_r01_v251_many_obx.hl7", "ORU", "R01", "2.5.1", Kind::clinical, '|', 47},
    {"oru_r01_v27_bang_delims.hl7", "ORU", "R01", "2.7", Kind::clinical, '!', 5},
    {"mdm_t02_v25.hl7", "MDM", "T02", "2.5", Kind::clinical, '|', 6},
    {"vxu_v04_v251_crlf.hl7", "VXU", "V04", "2.5.1", Kind::clinical, '|', 6},
    {"rde_o11_v24.hl7", "RDE", "O11", "2.4", Kind::clinical, '|', 6},
    {"ppr_pc1_v25.hl7", "PPR", "PC1", "2.5", Kind::clinical, '|', 3},
    {"dft_p03_v231.hl7", "DFT", "P03", "2.3.1", Kind::billing, '|', 10},
    {"bar_p01_v23.hl7", "BAR", "P01", "2.3", Kind::billing, '|', 6},
    {"mfn_m02_v25.hl7", "MFN", "M02", "2.5", Kind::provider, '|', 5},
    {"mfn_m15_v251.hl7", "MFN", "M15", "2.5.1", Kind::inventory, '|', 4},
};

}  // namespace

TEST(Hl7Corpus, ValidMessages) {
  hl7::Classifier classifier;
  hl7::AckOptions options;
  options.clock = psa::Clock::system();
  options.control_id = [](std::string& out) { out += "ACK1"; };
  hl7::AckBuilder acks(options);
  for (const Entry& e : kValid) {
    SCOPED_TRACE(e.file);
    const std::string text = psa::test::readFile(kDir + e.file);
    hl7::Message m;
    ASSERT_TRUE(m.parse(text).ok()) << m.failure().describe();
    EXPECT_EQ(m.messageType(), e.type);
    EXPECT_EQ(m.triggerEvent(), e.trigger);
    EXPECT_EQ(m.version(), e.version);
    EXPECT_EQ(m.delimiters().field, e.field_separator);
    EXPECT_EQ(m.segmentCount(), e.segments);
    EXPECT_EQ(classifier.classify(m), e.kind);
    EXPECT_TRUE(hl7::validate(m).empty());

    // The same message with canonical CR terminators parses to the same structure.
    std::string cr = text;
    std::replace(cr.begin(), cr.end(), '\n', '\r');
    hl7::Message m2;
    ASSERT_TRUE(m2.parse(cr).ok());
    EXPECT_EQ(hl7::inspectText(m2), hl7::inspectText(m));

    // Every rendered leaf resolves back through its path.
    size_t leaves = 0;
    hl7::forEachLeaf(m, {}, [&](const hl7::Leaf& leaf) {
      ++leaves;
      hl7::Element e2 = m.get(leaf.path);
      EXPECT_EQ(e2.raw.data(), leaf.element.raw.data()) << leaf.path;
      EXPECT_EQ(e2.raw.size(), leaf.element.raw.size()) << leaf.path;
      EXPECT_EQ(e2.presence, leaf.element.presence) << leaf.path;
    });
    EXPECT_GT(leaves, 10u);

    // The ACK is a valid message in the same delimiters.
    std::string ack = acks.build(m, hl7::Outcome::accept);
    hl7::Message a;
    ASSERT_TRUE(a.parse(ack).ok()) << ack;
    EXPECT_EQ(a.delimiters(), m.delimiters());
    EXPECT_EQ(a.messageType(), "ACK");
    EXPECT_EQ(a.triggerEvent(), std::string_view(e.version) == "2.1" ? "" : e.trigger);
    EXPECT_EQ(a.get("MSA-2").raw, m.controlId());
    EXPECT_EQ(a.get("MSH-3").raw, m.get("MSH-5").raw);
    EXPECT_EQ(a.get("MSH-5").raw, m.get("MSH-3").raw);
    EXPECT_EQ(a.version(), m.version());
    EXPECT_TRUE(hl7::validate(a).empty()) << ack;
  }
}

TEST(Hl7Corpus, EveryFileIsCovered) {
  std::set<std::string> covered;
  for (const Entry& e : kValid) {
    covered.insert(e.file);
  }
  // Broken messages (hl7_validate_test, hl7_message_test) and batch files (hl7_batch_test).
  for (const char* f :
       {"broken_no_msh.hl7", "broken_missing_msh1.hl7", "broken_missing_control_id.hl7",
        "broken_missing_trigger.hl7", "broken_missing_type.hl7", "broken_missing_version.hl7",
        "broken_bad_version.hl7", "broken_bad_processing_id.hl7", "broken_bad_segment_id.hl7",
        "broken_embedded_newline.hl7", "broken_duplicate_encoding_chars.hl7", "broken_two_msh.hl7",
        "broken_no_pid.hl7", "batch_fhs_bhs.hl7", "batch_multi.hl7", "batch_bad_count.hl7",
        "batch_blank_lines.hl7", "batch_concatenated.hl7", "batch_orphan_segment.hl7"}) {
    covered.insert(f);
  }
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(".hl7")) {
      EXPECT_TRUE(covered.count(name)) << name << " is not in any test table";
    }
  }
}
