// Format sniffing, name patterns and the suggested file-drop adapter on the project's CSV, X12
// and HL7 fixtures; cell values never reach the report.
#include <gtest/gtest.h>

#include "psa/adapters/discover/file_survey.h"
#include "psa/adapters/source.h"
#include "psa/store/json.h"
#include "psa/store/schema.h"
#include "test_support.h"

namespace discover = psa::adapters::discover;
namespace json = psa::json;

namespace {

std::string fixture(const std::string& rel) {
  return psa::test::readFile(std::string(PSA_TEST_DATA_DIR) + "/" + rel);
}

TEST(DiscoverFileSurvey, SniffsCsvDialectEncodingAndHeader) {
  auto p = discover::sniffFile(fixture("csv/patients.csv"));
  EXPECT_EQ(p.format, "csv");
  EXPECT_EQ(p.delimiter, ',');
  EXPECT_EQ(p.encoding, "utf-8");
  EXPECT_FALSE(p.bom);
  EXPECT_TRUE(p.quoted);
  EXPECT_TRUE(p.header);
  ASSERT_FALSE(p.columns.empty());
  EXPECT_EQ(p.columns.front(), "PatientId");
  EXPECT_EQ(p.rows, 4u);
  auto a = discover::sniffFile(fixture("csv/appointments.csv"));
  EXPECT_TRUE(a.bom);
  EXPECT_EQ(a.line_ending, "CRLF");
  EXPECT_EQ(discover::sniffFile(fixture("csv/patients_1252.csv")).encoding, "windows-1252");
  EXPECT_EQ(discover::sniffFile(fixture("csv/utf16.csv")).encoding, "utf-16");
  auto semi = discover::sniffFile("a;b;c\n1;2;3\n4;5;6\n");
  EXPECT_EQ(semi.delimiter, ';');
  EXPECT_EQ(discover::sniffFile("a|b\n1|2\n").delimiter, '|');
  EXPECT_EQ(discover::sniffFile("a\tb\n1\t2\n").delimiter, '\t');
}

TEST(DiscoverFileSurvey, AFirstRowOfDataIsNotTakenForAHeader) {
  auto p = discover::sniffFile("1001,ZZPHIMARKER123,03/14/1980\n1002,ROE,01/01/1970\n");
  EXPECT_FALSE(p.header);
  EXPECT_EQ(p.columns.size(), 3u);
  EXPECT_EQ(p.rows, 2u);
  discover::FileSurvey s;
  s.addFile("export.csv", "1001,ZZPHIMARKER123,03/14/1980\n");
  const std::string all = json::serialize(s.report()) + s.summary() +
                          json::serialize(s.suggestion("/drop", "x", "generic"));
  EXPECT_EQ(all.find("ZZPHIMARKER123"), std::string::npos) << all;
}

TEST(DiscoverFileSurvey, SniffsX12EnvelopesHl7BatchesAndFhirJson) {
  auto x = discover::sniffFile(fixture("x12/837p_multi.x12"));
  EXPECT_EQ(x.format, "x12");
  EXPECT_TRUE(x.codes.count("837"));
  EXPECT_TRUE(x.versions.count("005010X222A1"));
  EXPECT_TRUE(x.versions.count("ISA 00501"));
  EXPECT_TRUE(discover::sniffFile(fixture("x12/835_remit.x12")).codes.count("835"));
  auto bad = discover::sniffFile(fixture("x12/missing_iea.x12"));
  EXPECT_NE(bad.error.find("missing_iea"), std::string::npos) << bad.error;
  auto h = discover::sniffFile(
      psa::test::readFile(std::string(PSA_TEST_DATA_DIR) + "/hl7/batch_fhs_bhs.hl7"));
  EXPECT_EQ(h.format, "hl7");
  EXPECT_TRUE(h.batch);
  EXPECT_GT(h.units, 1u);
  auto f = discover::sniffFile(
      R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]})");
  EXPECT_EQ(f.format, "fhir-json");
  EXPECT_TRUE(f.codes.count("Patient"));
  auto nd = discover::sniffFile("{\"resourceType\":\"Patient\"}\n{\"resourceType\":\"Patient\"}\n");
  EXPECT_EQ(nd.format, "ndjson");
  EXPECT_EQ(nd.units, 2u);
}

TEST(DiscoverFileSurvey, NamePatternsGroupDigitsAndWordsButKeepExtensions) {
  EXPECT_EQ(discover::namePattern("visits_20261201_3.csv"), "visits_*_*.csv");
  EXPECT_EQ(discover::namePattern("claims_0001.x12"), "claims_*.x12");
  EXPECT_EQ(discover::namePattern("ADT_HL7_export_20261207.txt"), "ADT_HL7_export_*.txt");
  // A word outside the export vocabulary may be a name: it never reaches the report, even in
  // the only file of its shape.
  EXPECT_EQ(discover::namePattern("DOE_JOHN.csv"), "*_*.csv");
  EXPECT_EQ(discover::namePattern("acme_visits_Müller-3.csv"), "*_visits_*-*.csv");
  discover::FileSurvey lone;
  lone.addFile("SMITHERSON_visit.csv", "VisitId,When\n1,today\n");
  EXPECT_EQ((json::serialize(lone.report()) + lone.summary()).find("SMITHERSON"),
            std::string::npos);
  discover::FileSurvey s;
  const std::string csv = "PatientId,Note\n1,ZZPHIMARKER123\n";
  s.addFile("DOE_JOHN.csv", csv);
  s.addFile("ROE_JANE.csv", csv);
  s.addFile("visits_1.csv", "VisitId,When\n1,today\n");
  s.addFile("visits_2.csv", "VisitId,When\n2,today\n");
  const json::Value r = s.report();
  ASSERT_EQ(r.find("patterns")->items().size(), 2u) << json::serialize(r, true);
  std::map<std::string, int64_t> counts;
  for (const auto& p : r.find("patterns")->items()) {
    counts[p.getString("pattern")] = p.getInt("count");
  }
  EXPECT_EQ(counts["*_*.csv"], 2);
  EXPECT_EQ(counts["visits_*.csv"], 2);
  const std::string all = json::serialize(r) + s.summary();
  EXPECT_EQ(all.find("DOE"), std::string::npos);
  EXPECT_EQ(all.find("ZZPHIMARKER123"), std::string::npos);
}

TEST(DiscoverFileSurvey, CompletionAndASuggestionTheFileDropSchemaAccepts) {
  discover::FileSurvey s;
  s.addFile("charges_1.csv", "ChargeId,Amount\n1,10\n");
  s.addFile("claims_1.x12", fixture("x12/837p_multi.x12"));
  EXPECT_EQ(s.completion(), "stable");
  s.addAuxiliary("charges_1.csv.done");
  EXPECT_EQ(s.completion(), "marker");
  const json::Value a = s.suggestion("/var/drop", "pms-drop", "generic");
  std::vector<psa::schema::Issue> issues;
  psa::adapters::SourceRegistry registry;
  psa::adapters::registerBuiltinSources(registry);
  psa::schema::validate(a, *registry.find("file-drop")->schema, "", issues);
  EXPECT_TRUE(issues.empty()) << json::serialize(a, true) << issues.front().format();
  EXPECT_EQ(a.getString("complete"), "marker");
  EXPECT_EQ(a.find("patterns")->items().front().getString("kind"), "billing");
  discover::FileSurvey r;
  r.addAuxiliary("visits_1.csv.part");
  EXPECT_EQ(r.completion(), "rename");
  EXPECT_TRUE(discover::isTempName("x.tmp"));
  EXPECT_TRUE(discover::isTempName(".hidden"));
  EXPECT_FALSE(discover::isTempName("x.csv"));
  EXPECT_EQ(discover::markerSuffix("a.csv.ok"), ".ok");
}

}  // namespace

namespace {

TEST(DiscoverFileSurvey, CsvErrorsNameTheProblemAndPlaceNeverACell) {
  // Duplicate "header" names in a file whose first row is data.
  auto p = discover::sniffFile("ZZPHIMARKER123,ZZPHIMARKER123\n1,2\n");
  EXPECT_NE(p.error.find("duplicate_header_name at line 1"), std::string::npos) << p.error;
  EXPECT_EQ(p.error.find("ZZPHIMARKER123"), std::string::npos);
}

}  // namespace
