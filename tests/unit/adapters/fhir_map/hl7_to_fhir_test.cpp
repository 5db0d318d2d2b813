// HL7 v2 -> FHIR R4 mapping: golden Bundles from the project's sample messages (tests/data/hl7
// -> tests/data/fhir), each validated by the agent's validator; stable ids; references; the
// defaults the trigger event implies; clean errors.
// Regenerate the golden files after a deliberate table change (and bump kMappingVersion):
//   PSA_UPDATE_GOLDEN=1 build/bin/unit_adapters --gtest_filter='Hl7ToFhir*'
#include "psa/adapters/fhir_map/hl7_to_fhir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "hl7_samples.h"
#include "psa/adapters/fhir_map/validate.h"
#include "test_support.h"

namespace psa::adapters::fhir_map {
namespace {

MapOptions options() {
  MapOptions o;
  o.id_key = std::string(32, 'k');
  o.default_zone = "-05:00";
  return o;
}

json::Value mapOk(const std::string& text, const MapOptions& o = options()) {
  auto n = mapHl7v2(text, o);
  EXPECT_TRUE(n) << (n ? "" : n.error().describe());
  return n ? n.value().bundle : json::Value();
}

std::vector<std::string> violations(const json::Value& v) {
  std::vector<std::string> out;
  for (const auto& x : validateResource(v)) {
    out.push_back(x.text());
  }
  return out;
}

const json::Value* entryOf(const json::Value& bundle, std::string_view type, int nth = 0) {
  for (const auto& e : bundle.find("entry")->items()) {
    const json::Value* r = e.find("resource");
    if (r->getString("resourceType") == type && nth-- == 0) {
      return r;
    }
  }
  return nullptr;
}

struct Golden {
  const char* sample;
  std::vector<std::string> expected_violations;  // what the validator must report, exactly
};

class Hl7ToFhirGolden : public ::testing::TestWithParam<Golden> {};

TEST_P(Hl7ToFhirGolden, MatchesGoldenAndValidates) {
  const Golden& g = GetParam();
  const std::string name(g.sample);
  const json::Value bundle = mapOk(test::hl7Corpus(name + ".hl7"));
  const std::string got = json::serialize(bundle, true) + "\n";
  const std::string golden_path = std::string(PSA_TEST_DATA_DIR) + "/fhir/" + name + ".json";
  if (std::getenv("PSA_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden_path, std::ios::binary) << got;
  }
  EXPECT_EQ(got, test::readFile(golden_path)) << "golden " << golden_path;
  EXPECT_EQ(violations(bundle), g.expected_violations);
}

INSTANTIATE_TEST_SUITE_P(
    Samples, Hl7ToFhirGolden,
    ::testing::Values(
        Golden{"adt_a01_v231", {}}, Golden{"adt_a04_v251_cr", {}},
        Golden{"adt_a08_v21",
               // v2.1: an MRN without assigning authority and no gender: US Core says so.
               {"Patient.identifier[0].system: 1..1 required by US Core Patient, missing",
                "Patient.gender: 1..1 required by US Core Patient, missing"}},
        Golden{"adt_a28_v25_latin1", {}}, Golden{"adt_a31_v251_utf8", {}},
        Golden{"siu_s12_v251", {}},
        Golden{"siu_s14_v23",
               // v2.3 modification without times, MRN without authority, no gender.
               {"Patient.identifier[0].system: 1..1 required by US Core Patient, missing",
                "Patient.gender: 1..1 required by US Core Patient, missing",
                "Appointment: app-3: only proposed, cancelled or waitlist appointments can be "
                "missing start/end"}},
        Golden{"siu_s15_v251", {"Patient.gender: 1..1 required by US Core Patient, missing"}},
        Golden{"siu_s26_v27_truncation",
               // The no-show has no start or end: R4's app-3 allows that only when proposed,
               // cancelled or waitlisted.
               {"Patient.gender: 1..1 required by US Core Patient, missing",
                "Appointment: app-3: only proposed, cancelled or waitlist appointments can be "
                "missing start/end"}},
        Golden{"oru_r01_v251_many_obx", {}}, Golden{"vxu_v04_v251_crlf", {}}),
    [](const auto& info) { return std::string(info.param.sample); });

TEST(Hl7ToFhir, SsnRepetitionBecomesUsSsnIdentifierAndIdsCarryNoPhi) {
  const json::Value b = mapOk(test::hl7Corpus("adt_a01_v231.hl7"));
  const json::Value* patient = entryOf(b, "Patient");
  ASSERT_NE(patient, nullptr);
  bool ssn = false;
  for (const auto& id : patient->find("identifier")->items()) {
    if (id.getString("system") == "http://hl7.org/fhir/sid/us-ssn") {
      ssn = id.getString("value") == "TEST900001";
    }
  }
  EXPECT_TRUE(ssn);
  const std::string id = patient->getString("id");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find("MRN"), std::string::npos);
}

TEST(Hl7ToFhir, SamePatientFromTwoFeedsGetsTheSameIdAndKeyChangesIt) {
  // A01 and the ORU name MRN10001 of GOODHEALTH: one Patient id.
  const json::Value adt = mapOk(test::hl7Corpus("adt_a01_v231.hl7"));
  const json::Value oru = mapOk(test::hl7Corpus("oru_r01_v251_many_obx.hl7"));
  EXPECT_EQ(entryOf(adt, "Patient")->getString("id"), entryOf(oru, "Patient")->getString("id"));
  MapOptions other = options();
  other.id_key = std::string(32, 'z');
  const json::Value again = mapOk(test::hl7Corpus("adt_a01_v231.hl7"), other);
  EXPECT_NE(entryOf(adt, "Patient")->getString("id"), entryOf(again, "Patient")->getString("id"));
}

TEST(Hl7ToFhir, ReferencesInsideTheBundleAreConsistent) {
  const json::Value b = mapOk(test::hl7Corpus("oru_r01_v251_many_obx.hl7"));
  const std::string patient = "Patient/" + entryOf(b, "Patient")->getString("id");
  const json::Value* report = entryOf(b, "DiagnosticReport");
  ASSERT_NE(report, nullptr);
  EXPECT_EQ(report->find("subject")->getString("reference"), patient);
  EXPECT_EQ(report->getString("status"), "final");  // OBR-25 F
  std::set<std::string> results;
  for (const auto& r : report->find("result")->items()) {
    results.insert(r.getString("reference"));
  }
  std::set<std::string> observations;
  for (int i = 0; entryOf(b, "Observation", i) != nullptr; ++i) {
    const json::Value* o = entryOf(b, "Observation", i);
    observations.insert("Observation/" + o->getString("id"));
    EXPECT_EQ(o->find("subject")->getString("reference"), patient);
  }
  EXPECT_EQ(observations.size(), 41u);  // one per OBX
  EXPECT_EQ(results, observations);
  // Every entry is a PUT of its own id.
  for (const auto& e : b.find("entry")->items()) {
    const json::Value* r = e.find("resource");
    EXPECT_EQ(e.find("request")->getString("url"),
              r->getString("resourceType") + "/" + r->getString("id"));
  }
}

TEST(Hl7ToFhir, TwoReportsWithOneFillerIdStayTwoEntries) {
  std::string oru = test::hl7Corpus("oru_r01_v251_many_obx.hl7");
  const size_t obr = oru.find("OBR|");
  const std::string obr_line = oru.substr(obr, oru.find_first_of("\r\n", obr) - obr);
  oru += obr_line + "\rOBX|1|ST|X^Y^L||text||||||F\r";
  const json::Value b = mapOk(oru);
  ASSERT_NE(entryOf(b, "DiagnosticReport", 1), nullptr);
  EXPECT_NE(entryOf(b, "DiagnosticReport", 0)->getString("id"),
            entryOf(b, "DiagnosticReport", 1)->getString("id"));
  EXPECT_EQ(entryOf(b, "DiagnosticReport", 1)->find("result")->items().size(), 1u);
  EXPECT_TRUE(violations(b).empty()) << violations(b).front();
}

TEST(Hl7ToFhir, CodesFromTheMessageBecomeValidFhirCodes) {
  // Found by fuzz_fhir_map: a tab or a double space inside a unit or a code.
  std::string oru = test::hl7Corpus("oru_r01_v251_many_obx.hl7");
  oru.replace(oru.find("mg/dL^milligram"), 5, "mg\t /dL");
  oru.replace(oru.find("1001-1^"), 6, "10  01");
  const json::Value b = mapOk(oru);
  const json::Value* obs = entryOf(b, "Observation");
  EXPECT_EQ(obs->find("valueQuantity")->getString("code"), "mg /dL");
  EXPECT_EQ(obs->find("code")->find("coding")->items()[0].getString("code"), "10 01");
  EXPECT_TRUE(violations(b).empty()) << violations(b).front();
}

TEST(Hl7ToFhir, TriggerEventDefaultsFromTheTable) {
  // S12 with SCH-25 BOOKED, S15 forced cancelled, S26 forced noshow; ORU without OBR-25 final.
  EXPECT_EQ(entryOf(mapOk(test::hl7Corpus("siu_s15_v251.hl7")), "Appointment")->getString("status"),
            "cancelled");
  EXPECT_EQ(entryOf(mapOk(test::hl7Corpus("siu_s26_v27_truncation.hl7")), "Appointment")
                ->getString("status"),
            "noshow");
  std::string s12 = test::hl7Corpus("siu_s12_v251.hl7");
  s12.replace(s12.find("|BOOKED"), 7, "|");
  EXPECT_EQ(entryOf(mapOk(s12), "Appointment")->getString("status"), "booked");
  std::string oru = test::hl7Corpus("oru_r01_v251_many_obx.hl7");
  const size_t obr_end = oru.find_first_of("\r\n", oru.find("OBR|"));
  ASSERT_EQ(oru[obr_end - 1], 'F');
  oru.erase(obr_end - 1, 1);  // OBR-25 empty
  EXPECT_EQ(entryOf(mapOk(oru), "DiagnosticReport")->getString("status"), "final");
  // A04 registers: the Encounter arrived.
  EXPECT_EQ(
      entryOf(mapOk(test::hl7Corpus("adt_a04_v251_cr.hl7")), "Encounter")->getString("status"),
      "arrived");
}

TEST(Hl7ToFhir, TimesWithoutZoneTakeMsh7sThenTheConfiguredOneElseOnlyTheDate) {
  EXPECT_EQ(hl7Time("20240105083000", "-05:00", false), "2024-01-05T08:30:00-05:00");
  EXPECT_EQ(hl7Time("20240105083000+0100", "-05:00", true), "2024-01-05T08:30:00+01:00");
  EXPECT_EQ(hl7Time("20240105083000", "", false), "2024-01-05");
  EXPECT_EQ(hl7Time("20240105083000", "", true), std::nullopt);
  EXPECT_EQ(hl7Time("198907", "", false), "1989-07");
  EXPECT_EQ(hl7Time("2024010", "", false), std::nullopt);
  EXPECT_EQ(hl7Time("20240105083000.1234-0500", "", true), "2024-01-05T08:30:00.1234-05:00");
  // Out of range: month 13, hour 25, zone +99:00 - not a time FHIR accepts, so nothing.
  EXPECT_EQ(hl7Time("20241305", "", false), std::nullopt);
  EXPECT_EQ(hl7Time("20240105250000", "Z", false), std::nullopt);
  EXPECT_EQ(hl7Time("20240105083000+9900", "", false), std::nullopt);
  MapOptions bad_zone = options();
  bad_zone.default_zone = "EST";
  EXPECT_TRUE(
      mapHl7v2(test::hl7Corpus("adt_a01_v231.hl7"), bad_zone).error().is(Errc::invalid_argument));
  // A04's MSH-7 carries -0500: its times get that zone whatever the default.
  MapOptions utc = options();
  utc.default_zone = "Z";
  EXPECT_TRUE(violations(mapOk(test::hl7Corpus("adt_a04_v251_cr.hl7"), utc)).empty());
}

TEST(Hl7ToFhir, CleanErrors) {
  auto no_map = mapHl7v2(test::hl7Corpus("adt_a40_v23.hl7"), options());
  ASSERT_FALSE(no_map);
  EXPECT_TRUE(no_map.error().is(Errc::not_found)) << no_map.error().describe();
  EXPECT_NE(no_map.error().message.find("ADT^A40"), std::string::npos);

  auto no_pid = mapHl7v2(test::hl7Corpus("broken_no_pid.hl7"), options());
  ASSERT_FALSE(no_pid);
  EXPECT_TRUE(no_pid.error().is(Errc::invalid_input) || no_pid.error().is(Errc::not_found))
      << no_pid.error().describe();

  auto garbage = mapHl7v2("not hl7 at all", options());
  ASSERT_FALSE(garbage);
  EXPECT_TRUE(garbage.error().is(Errc::invalid_input));

  MapOptions short_key;
  short_key.id_key = "short";
  EXPECT_TRUE(
      mapHl7v2(test::hl7Corpus("adt_a01_v231.hl7"), short_key).error().is(Errc::invalid_argument));

  EXPECT_TRUE(hl7Mapped("SIU", "S12"));
  EXPECT_FALSE(hl7Mapped("SIU", "S17"));
}

}  // namespace
}  // namespace psa::adapters::fhir_map
