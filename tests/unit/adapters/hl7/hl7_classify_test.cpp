// Classification of HL7 messages into record kinds, with per-adapter overrides.
#include <gtest/gtest.h>

#include "psa/adapters/hl7/classify.h"

namespace hl7 = psa::adapters::hl7;
using psa::store::Kind;

TEST(Hl7Classify, DefaultMapping) {
  struct Row {
    const char* type;
    const char* trigger;
    Kind kind;
  };
  for (const Row& r : {Row{"ADT", "A01", Kind::patient},     Row{"ADT", "A40", Kind::patient},
                       Row{"SIU", "S12", Kind::appointment}, Row{"SIU", "S26", Kind::appointment},
                       Row{"DFT", "P03", Kind::billing},     Row{"BAR", "P01", Kind::billing},
                       Row{"MFN", "M02", Kind::provider},    Row{"MFN", "M15", Kind::inventory},
                       Row{"MFN", "M16", Kind::inventory},   Row{"PMU", "B01", Kind::provider},
                       Row{"ORU", "R01", Kind::clinical},    Row{"ORM", "O01", Kind::clinical},
                       Row{"OML", "O21", Kind::clinical},    Row{"MDM", "T02", Kind::clinical},
                       Row{"RDE", "O11", Kind::clinical},    Row{"VXU", "V04", Kind::clinical},
                       Row{"PPR", "PC1", Kind::clinical},    Row{"ACK", "A01", Kind::other},
                       Row{"QRY", "A19", Kind::other},       Row{"", "", Kind::other},
                       Row{"adt", "A01", Kind::other}}) {
    EXPECT_EQ(hl7::defaultKind(r.type, r.trigger), r.kind) << r.type << "^" << r.trigger;
    EXPECT_EQ(hl7::Classifier().classify(r.type, r.trigger), r.kind);
  }
}

TEST(Hl7Classify, OverridesWinTypeTriggerFirst) {
  auto c = hl7::Classifier::withOverrides({{"ZPM", Kind::patient},
                                           {"mfn^m02", Kind::other},
                                           {"ADT", Kind::other},
                                           {"ADT^A08", Kind::appointment}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->classify("ZPM", "Z01"), Kind::patient);
  EXPECT_EQ(c->classify("ZPM", ""), Kind::patient);
  EXPECT_EQ(c->classify("MFN", "M02"), Kind::other);
  EXPECT_EQ(c->classify("MFN", "M05"), Kind::provider);  // built-in
  EXPECT_EQ(c->classify("ADT", "A08"), Kind::appointment);
  EXPECT_EQ(c->classify("ADT", "A01"), Kind::other);
  EXPECT_EQ(c->classify("adt", "a08"), Kind::appointment);  // overrides compare upper-cased
  EXPECT_EQ(c->classify("SIU", "S12"), Kind::appointment);
  EXPECT_EQ(c->classify(std::string(20, 'A'), "X"), Kind::other);  // too long for any key
}

TEST(Hl7Classify, ClassifiesAParsedMessage) {
  std::string text = "MSH|^~\\&|A|B|C|D|1||MFN^M15^MFN_M15|1|P|2.5\r";
  hl7::Message m;
  ASSERT_TRUE(m.parse(text).ok());
  EXPECT_EQ(hl7::Classifier().classify(m), Kind::inventory);
}

TEST(Hl7Classify, BadOverrides) {
  struct Bad {
    std::map<std::string, std::string> map;
    const char* error;
  };
  for (const Bad& b : {
           Bad{{{"AD", "patient"}},
               "kind map key \"AD\": expected TYPE or TYPE^TRIGGER (e.g. ADT^A08)"},
           Bad{{{"ADT^", "patient"}},
               "kind map key \"ADT^\": expected TYPE or TYPE^TRIGGER (e.g. ADT^A08)"},
           Bad{{{"ADT^A01^X", "patient"}},
               "kind map key \"ADT^A01^X\": expected TYPE or TYPE^TRIGGER (e.g. ADT^A08)"},
           Bad{{{"ADT", "people"}},
               "kind map \"ADT\": unknown kind \"people\" (expected patient, appointment, "
               "clinical, billing, provider, inventory or other)"},
           Bad{{{"adt", "patient"}, {"ADT", "other"}}, "kind map key \"ADT\" given twice"},
       }) {
    auto c = hl7::Classifier::fromConfig(b.map);
    ASSERT_FALSE(c.ok()) << b.error;
    EXPECT_TRUE(c.error().is(psa::Errc::invalid_argument));
    EXPECT_EQ(c.error().message, b.error);
  }
  auto ok = hl7::Classifier::fromConfig({{"ZPM", "patient"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->classify("ZPM", "Z01"), Kind::patient);
}
