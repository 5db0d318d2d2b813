// The file-drop adapter on CSV files, through the real `pms-agent run` and the real store:
// RFC 4180 quoting, embedded newlines, BOM, CRLF, lone CR, Windows-1252, delimiters and kinds
// per file pattern, header-less files; bad rows dead-lettered with line/byte, fatal files
// moved to error/ with a reason file and nothing ingested.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "filedrop_harness.h"

namespace psa::test {
namespace {

std::string fixture(const std::string& name) {
  return readFile(std::string(PSA_TEST_DATA_DIR) + "/" + name);
}

void drop(const DropEnv& env, const std::string& fixture_name, const std::string& as = {}) {
  const std::string name = as.empty() ? fs::path(fixture_name).filename().string() : as;
  writeFile(env.inbox / name, fixture(fixture_name));
}

std::vector<const store::Record*> ofKind(const Stored& s, store::Kind kind) {
  std::vector<const store::Record*> out;
  for (const auto& r : s.records) {
    if (r.kind == kind) {
      out.push_back(&r);
    }
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(FileDropCsv, QuotingNewlinesBomCrlf1252AndPerPatternSettings) {
  DropEnv env;
  auto adapter = env.adapter(R"({"format":"csv","kind":"appointment","patterns":[
      {"match":"patients_1252.csv","kind":"patient","csv":{"encoding":"windows-1252"}},
      {"match":"patients*.csv","kind":"patient"},
      {"match":"charges*.csv","kind":"billing","csv":{"delimiter":";"}},
      {"match":"providers*.csv","kind":"provider","csv":{"delimiter":"\t"}},
      {"match":"lone_cr.csv","kind":"other"}]})");
  AgentProcess agent(env.state, env.config({adapter}));
  drop(env, "csv/patients.csv");
  drop(env, "csv/appointments.csv");
  drop(env, "csv/patients_1252.csv");
  drop(env, "csv/charges.csv");
  drop(env, "csv/providers.csv");
  drop(env, "csv/lone_cr.csv");
  ASSERT_TRUE(agent.start()) << agent.log();
  for (const char* f : {"patients.csv", "appointments.csv", "patients_1252.csv", "charges.csv",
                        "providers.csv", "lone_cr.csv"}) {
    ASSERT_TRUE(waitArchived(env, f)) << f << "\n" << agent.log();
  }
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_TRUE(findNamed(env.error(), "patients.csv.error.txt").empty());

  Stored s = readStore(env.state);
  EXPECT_TRUE(s.dead.empty());
  ASSERT_EQ(s.records.size(), 4u + 3u + 2u + 3u + 3u + 3u);
  for (const auto& r : s.records) {
    EXPECT_EQ(r.format, "csv+json");
    EXPECT_EQ(r.source, "drop");
    EXPECT_EQ(r.vendor, "generic");
    EXPECT_GT(r.received_at_ms, 0);
  }
  auto patients = ofKind(s, store::Kind::patient);
  ASSERT_EQ(patients.size(), 6u);
  std::vector<std::string> pp;
  for (auto* r : patients) {
    pp.push_back(r->payload.reveal());
  }
  EXPECT_TRUE(contains(
      pp, R"({"PatientId":"1001","MRN":"MRN0001001","LastName":"DOE","FirstName":"JANE",)"
          R"("MiddleName":"Q","DOB":"03/14/1980","Sex":"F","Address1":"123 Main St, Apt 4",)"
          R"("City":"Springfield","State":"IL","Zip":"62701","Phone":"(217) 555-0101",)"
          R"("Email":"jane.doe@example.com","PrimaryInsurance":"Acme Health PPO"})"));
  // Embedded newline and doubled quotes survive as JSON escapes.
  EXPECT_TRUE(std::any_of(pp.begin(), pp.end(), [](const std::string& p) {
    return p.find(R"("Address1":"77 Elm St\nUnit 2")") != std::string::npos;
  }));
  EXPECT_TRUE(std::any_of(pp.begin(), pp.end(), [](const std::string& p) {
    return p.find(R"("Address1":"45 \"Old\" Mill Rd")") != std::string::npos;
  }));
  // Windows-1252 converted to UTF-8.
  EXPECT_TRUE(contains(
      pp,
      "{\"PatientId\":\"2001\",\"LastName\":\"M\xC3\xBCller\",\"FirstName\":\"J\xC3\xBCrgen\","
      "\"Note\":\"Copay 20\xE2\x82\xAC\"}"));

  auto appts = ofKind(s, store::Kind::appointment);
  ASSERT_EQ(appts.size(), 3u);
  std::vector<std::string> ap;
  for (auto* r : appts) {
    ap.push_back(r->payload.reveal());
  }
  // The BOM is not part of the first key; CRLF inside quotes is data.
  EXPECT_TRUE(contains(
      ap, R"({"AppointmentId":"A-20240102-0001","PatientId":"1001","ProviderId":"P100",)"
          R"("Resource":"Room 1","StartDateTime":"2024-01-02T09:00:00",)"
          R"("StopDateTime":"2024-01-02T09:30:00","LengthMinutes":"30","Type":"Follow-up",)"
          R"("Status":"Scheduled","Location":"Main Clinic","Notes":""})"));
  EXPECT_TRUE(std::any_of(ap.begin(), ap.end(), [](const std::string& p) {
    return p.find(R"("Notes":"Said \"call me back\"\r\nre: time")") != std::string::npos;
  }));

  auto billing = ofKind(s, store::Kind::billing);
  ASSERT_EQ(billing.size(), 3u);
  std::vector<std::string> bp;
  for (auto* r : billing) {
    bp.push_back(r->payload.reveal());
  }
  EXPECT_TRUE(contains(
      bp, R"({"ChargeId":"C0002","PatientId":"1002","EncounterId":"E5002",)"
          R"("ServiceDate":"01/02/2024","CPT":"99204","Modifier1":"25","ICD10_1":"Z00.00",)"
          R"("ICD10_2":"","Units":"1","Amount":"210,50","RenderingNPI":"1234567893"})"));
  auto providers = ofKind(s, store::Kind::provider);
  ASSERT_EQ(providers.size(), 3u);
  std::vector<std::string> prv;
  for (auto* r : providers) {
    prv.push_back(r->payload.reveal());
  }
  EXPECT_TRUE(contains(
      prv, R"({"ProviderId":"P102","NPI":"1234567895","LastName":"OKAFOR","FirstName":"CHIDI",)"
           R"("Credentials":"NP","Specialty":"","Taxonomy":"363L00000X","Active":"N"})"));
  auto other = ofKind(s, store::Kind::other);
  ASSERT_EQ(other.size(), 3u);
  std::vector<std::string> op;
  for (auto* r : other) {
    op.push_back(r->payload.reveal());
  }
  EXPECT_TRUE(contains(op, R"({"Id":"2","Name":"BRA\rVO"})"));

  // Every file's progress is "done" under its content hash.
  ASSERT_EQ(s.watermarks.size(), 6u);
  for (const auto& [key, value] : s.watermarks) {
    EXPECT_EQ(key.rfind("file:", 0), 0u) << key;
    EXPECT_NE(value.find(R"("state":"done")"), std::string::npos) << value;
  }
}

TEST(FileDropCsv, BadRowsAreDeadLetteredNeighboursStoredAndReported) {
  DropEnv env;
  AgentProcess agent(env.state, env.config({env.adapter(R"({"format":"csv","kind":"patient"})")}));
  drop(env, "csv/ragged.csv");
  drop(env, "csv/invalid_utf8.csv");
  drop(env, "csv/quote_errors.csv");
  ASSERT_TRUE(agent.start()) << agent.log();
  for (const char* f : {"ragged.csv", "invalid_utf8.csv", "quote_errors.csv"}) {
    ASSERT_TRUE(waitArchived(env, f)) << f << "\n" << agent.log();
  }
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  EXPECT_EQ(s.records.size(), 2u + 2u + 1u);
  std::set<std::string> payloads;
  for (const auto& r : s.records) {
    payloads.insert(r.payload.reveal());
  }
  EXPECT_TRUE(payloads.count(
      R"({"PatientId":"1004","LastName":"LOE","FirstName":"LINDA","DOB":"01/01/1990"})"));
  EXPECT_TRUE(payloads.count(R"({"PatientId":"1004","LastName":"O'NEIL"})"));
  EXPECT_TRUE(payloads.count(R"({"Id":"3","Height":"5'4","Name":"POE"})"));

  ASSERT_EQ(s.dead.size(), 6u);
  std::map<std::string, std::string> reasons;  // reason -> raw row
  for (const auto& d : s.dead) {
    EXPECT_EQ(d.info.source, "drop");
    EXPECT_EQ(d.info.kind, store::Kind::patient);
    EXPECT_EQ(d.info.format, "binary");
    reasons[d.info.reason] = d.payload;
  }
  EXPECT_EQ(
      reasons["ragged.csv row 2: line 3, byte 86: row 2 has 5 fields, header has 4 (ragged_row)"],
      "1002,ROE,RICHARD,07/02/1975,EXTRA");
  EXPECT_EQ(
      reasons.count(
          "ragged.csv row 3: line 4, byte 106: row 3 has 3 fields, header has 4 (ragged_row)"),
      1u);
  EXPECT_EQ(reasons.count(
                "invalid_utf8.csv row 2: line 3, byte 37: invalid UTF-8 (row 2) (invalid_utf8)"),
            1u);
  EXPECT_EQ(reasons.count(
                "invalid_utf8.csv row 3: line 4, byte 47: invalid UTF-8 (row 3) (invalid_utf8)"),
            1u);
  EXPECT_EQ(reasons.count(
                "quote_errors.csv row 1: line 2, byte 21: '\"' inside an unquoted field (row 1) "
                "(quote_in_unquoted_field)"),
            1u);
  EXPECT_EQ(
      reasons.count("quote_errors.csv row 2: line 3, byte 34: text after the closing quote of a "
                    "field (row 2) (text_after_closing_quote)"),
      1u);

  // The report in error/ lists each dead row with its line, byte and dead-letter id.
  const std::string report = readFile(env.error() / "ragged.csv.error.txt");
  EXPECT_NE(
      report.find("result:    ingested 2 records; 2 dead-lettered; the file was archived to "),
      std::string::npos)
      << report;
  for (const auto& d : s.dead) {
    if (d.info.reason.rfind("ragged.csv", 0) == 0) {
      EXPECT_NE(report.find(d.info.reason + " -> dead letter " + d.info.msg_id), std::string::npos)
          << report;
    }
  }
  EXPECT_FALSE(fs::exists(env.error() / "ragged.csv"));  // the file itself was archived
}

TEST(FileDropCsv, FatalErrorsMoveTheFileToErrorWithNothingIngested) {
  DropEnv env;
  AgentProcess agent(env.state, env.config({env.adapter(R"({"format":"csv","kind":"patient"})")}));
  drop(env, "csv/unterminated_quote.csv");
  drop(env, "csv/duplicate_header.csv");
  drop(env, "csv/utf16.csv");
  drop(env, "csv/blank_only.csv");
  drop(env, "csv/patients.csv");  // a good neighbour keeps flowing
  ASSERT_TRUE(agent.start()) << agent.log();
  for (const char* f :
       {"unterminated_quote.csv", "duplicate_header.csv", "utf16.csv", "blank_only.csv"}) {
    ASSERT_TRUE(waitInError(env, f)) << f << "\n" << agent.log();
  }
  ASSERT_TRUE(waitArchived(env, "patients.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);

  auto report = [&](const std::string& f) { return readFile(env.error() / (f + ".error.txt")); };
  const std::string r1 = report("unterminated_quote.csv");
  EXPECT_NE(r1.find("result:    FAILED, moved to the error directory; nothing of it was ingested"),
            std::string::npos)
      << r1;
  EXPECT_NE(
      r1.find(
          "error:     unterminated_quote at line 3, byte 57\n"
          "           line 3, byte 57: quoted field is not closed before the end of the file\n"),
      std::string::npos)
      << r1;
  EXPECT_NE(
      report("duplicate_header.csv")
          .find("duplicate_header_name at line 1, byte 29\n"
                "           line 1, byte 29: duplicate header name 'LastName' (columns 2 and 4)"),
      std::string::npos);
  EXPECT_NE(report("utf16.csv").find("unsupported_encoding at line 1, byte 0"), std::string::npos);
  EXPECT_NE(
      report("blank_only.csv").find("line 4, byte 4: no header row (the file is empty or blank)"),
      std::string::npos);
  // The error file is byte-for-byte the dropped file.
  EXPECT_EQ(readFile(env.error() / "unterminated_quote.csv"),
            fixture("csv/unterminated_quote.csv"));

  Stored s = readStore(env.state);
  EXPECT_EQ(s.records.size(),
            4u);  // patients.csv only: the row before the bad quote is not ingested
  EXPECT_TRUE(s.dead.empty());
  EXPECT_EQ(s.watermarks.size(), 1u);  // failed files leave no progress behind
  EXPECT_NE(
      agent.log().find(
          "event=file_failed file=unterminated_quote.csv code=unterminated_quote line=3 byte=57"),
      std::string::npos);
}

TEST(FileDropCsv, HeaderlessFileUsesConfiguredColumnsAndFileOffsets) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(
          R"({"format":"csv","kind":"inventory","csv":{"header":false,"columns":["ItemId","Qty"]}})")}));
  writeFile(env.inbox / "stock.csv", "\xEF\xBB\xBFINV-1,40\r\nINV-2,5,EXTRA\r\nINV-3,\"1,5\"\r\n");
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "stock.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].payload.reveal(), R"({"ItemId":"INV-1","Qty":"40"})");
  EXPECT_EQ(s.records[1].payload.reveal(), R"({"ItemId":"INV-3","Qty":"1,5"})");
  EXPECT_EQ(s.records[0].kind, store::Kind::inventory);
  ASSERT_EQ(s.dead.size(), 1u);
  // Byte 21 of the file is the first byte of the extra field (BOM counted).
  EXPECT_EQ(s.dead[0].info.reason,
            "stock.csv row 2: line 2, byte 21: row 2 has 3 fields, header has 2 (ragged_row)");
  EXPECT_EQ(s.dead[0].payload, "INV-2,5,EXTRA");
}

}  // namespace
}  // namespace psa::test
