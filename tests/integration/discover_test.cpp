// `pms-agent discover hl7` and `discover files` as the real binary: sample files and a real
// MLLP feed sent with `pms-agent hl7 send`; the report's structure and counts, a suggestion that
// `pms-agent config validate` accepts as it is, the refusal of a live adapter's port, and a PHI
// marker planted in every patient field and CSV cell that appears in no output and no file.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "discover_test_util.h"
#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace discover_util;

// ADT^A04 with the marker in name, MRN, SSN repetition, address and sending application.
std::string marked(const std::string& m, int n, bool ssn, const std::string& eol = "\r") {
  return "MSH|^~\\&|APP" + m + "|FAC|PSA|EDGE|20261201||ADT^A04^ADT_A01|C" + std::to_string(n) +
         "|P|2.5.1" + eol + "EVN|A04|20261201" + eol + "PID|1||" + m + "^^^HOSP^MR~" + m +
         "^^^SSA^SS||" + m + "^" + m + "||19800101|F|||1 " + m + " ST^^TOWN^IL^62701||||||||" +
         (ssn ? "123-45-6789" : "") + eol + "IN1|1|PLAN^" + m + eol;
}

TEST(Discover, Hl7SamplesGiveStructureCountsAndAValidSuggestionWithoutAnyValue) {
  TempDir tmp("psa-discover");
  const std::string m = uniqueMarker();
  writeFile(tmp / "cr.hl7", marked(m, 1, true) + marked(m, 2, false));
  writeFile(tmp / "lf.hl7", marked(m, 3, true, "\n") + "\n" + marked(m, 4, false, "\n"));
  writeFile(tmp / "crlf.hl7",
            "FHS|^~\\&\r\nBHS|^~\\&\r\n" + marked(m, 5, false, "\r\n") + "BTS|1\r\nFTS|1\r\n");
  writeFile(tmp / "mllp.hl7", "\x0b" + marked(m, 6, false) + "\x1c\r");
  writeFile(tmp / "bad.hl7", "MSH|^~\\&|A|B|C|D|2026||ADT^A04||P|2.5.1\rPID|1||" + m + "\r");
  writeFile(tmp / "siu.hl7", readFile(std::string(PSA_TEST_DATA_DIR) + "/hl7/siu_s12_v251.hl7"));
  const fs::path sug = tmp / "suggest.json";
  std::vector<std::string> args = {"discover", "hl7"};
  for (const char* f : {"cr.hl7", "lf.hl7", "crlf.hl7", "mllp.hl7", "bad.hl7", "siu.hl7"}) {
    args.push_back((tmp / f).string());
  }
  auto with = [&](std::vector<std::string> extra) {
    auto a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  const CliRun j = agentCli(tmp, with({"--json", "--suggest", sug.string()}));
  ASSERT_EQ(j.rc, 0) << j.out << j.err;
  const json::Value r = parsed(j.out);
  EXPECT_EQ(r.getInt("messages"), 8);
  EXPECT_EQ(r.getInt("files"), 6);
  const json::Value* adt = entry(r, "message_types", "type", "ADT^A04");
  ASSERT_NE(adt, nullptr) << j.out;
  EXPECT_EQ(adt->getInt("count"), 7);  // bad.hl7 parses, fails validation (no MSH-10)
  EXPECT_EQ(adt->find("fields")->getInt("PID-19"), 2);
  EXPECT_EQ(adt->getInt("in1"), 6);
  EXPECT_EQ(adt->find("identifier_types")->find("PID-3")->getInt("SS"), 6);
  ASSERT_NE(entry(r, "message_types", "type", "SIU^S12"), nullptr);
  ASSERT_NE(entry(r, "ssn_like", "field", "PID-19"), nullptr);
  EXPECT_EQ(entry(r, "ssn_like", "field", "PID-19")->getInt("count"), 2);
  EXPECT_FALSE(r.find("validation_issues")->items().empty());
  EXPECT_EQ(r.find("sending_applications")->getInt("distinct"), 3);
  const json::Value* s = r.find("suggested_adapter");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->getString("type"), "hl7-mllp");
  EXPECT_EQ(s->find("message_types")->items().size(), 2u);
  expectValidates(tmp, sug);
  expectNoMarker(m, j, sug);

  const CliRun h = agentCli(tmp, args);
  EXPECT_EQ(h.rc, 0) << h.out << h.err;
  EXPECT_NE(h.out.find("ADT^A04  x7"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("PID-19 2/7"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("\"type\": \"hl7-mllp\""), std::string::npos) << h.out;
  expectNoMarker(m, h, sug);
}

TEST(Discover, ExitCodesForNothingToAnalyseAndUsage) {
  TempDir tmp("psa-discover");
  writeFile(tmp / "junk.hl7", "PID|1||ZZ\r");
  const CliRun nothing = agentCli(tmp, {"discover", "hl7", (tmp / "junk.hl7").string()});
  EXPECT_EQ(nothing.rc, 1) << nothing.out << nothing.err;
  EXPECT_EQ(agentCli(tmp, {"discover", "hl7"}).rc, 2);
  EXPECT_EQ(agentCli(tmp, {"discover", "hl7", "--listen", "127.0.0.1:1"}).rc, 2);
  EXPECT_EQ(agentCli(tmp, {"discover", "hl7", "--listen", "127.0.0.1:1", "--for", "soon"}).rc, 2);
  fs::create_directories(tmp / "empty");
  EXPECT_EQ(agentCli(tmp, {"discover", "files", (tmp / "empty").string()}).rc, 1);
  EXPECT_EQ(agentCli(tmp, {"discover", "files", (tmp / "empty").string(), "--watch", "x"}).rc, 2);
}

TEST(Discover, FilesSurveyPatternsFormatsAndAValidFileDropSuggestion) {
  TempDir tmp("psa-discover");
  const std::string m = uniqueMarker();
  const fs::path drop = tmp / "drop";
  fs::create_directories(drop);
  for (int d = 1; d <= 3; ++d) {
    writeFile(drop / ("visits_2026120" + std::to_string(d) + ".csv"),
              "VisitId;PatientName;SSN\r\n" + std::to_string(d) + ";" + m + ";" + m + "\r\n");
  }
  writeFile(drop / "claims_0001.x12",
            readFile(std::string(PSA_TEST_DATA_DIR) + "/x12/837p_multi.x12"));
  writeFile(drop / "adt_0001.hl7",
            "FHS|^~\\&\rBHS|^~\\&\r" + marked(m, 1, true) + "BTS|1\rFTS|1\r");
  writeFile(drop / "adt_0001.hl7.done", "");
  const fs::path sug = tmp / "suggest.json";
  const CliRun j =
      agentCli(tmp, {"discover", "files", drop.string(), "--json", "--suggest", sug.string()});
  ASSERT_EQ(j.rc, 0) << j.out << j.err;
  const json::Value r = parsed(j.out);
  EXPECT_EQ(r.getInt("files"), 5);
  const json::Value* visits = entry(r, "patterns", "pattern", "visits_*.csv");
  ASSERT_NE(visits, nullptr) << j.out;
  EXPECT_EQ(visits->getInt("count"), 3);
  EXPECT_EQ(visits->find("csv")->getString("delimiter"), ";");
  EXPECT_EQ(visits->find("csv")->getString("line_endings"), "CRLF");
  EXPECT_EQ(visits->find("csv")->find("columns")->items().size(), 3u);
  EXPECT_EQ(visits->find("csv")->getInt("rows"), 3);
  const json::Value* x12 = entry(r, "patterns", "pattern", "claims_*.x12");
  ASSERT_NE(x12, nullptr);
  EXPECT_EQ(x12->getInt("count"), 1);
  EXPECT_EQ(x12->find("transaction_sets")->items().front().asString(), "837");
  const json::Value* hl7 = entry(r, "patterns", "pattern", "adt_*.hl7");
  ASSERT_NE(hl7, nullptr);
  EXPECT_TRUE(hl7->find("batch")->asBool());
  EXPECT_EQ(r.find("completion")->getString("suggested"), "marker");
  EXPECT_EQ(r.find("suggested_adapter")->getString("complete"), "marker");
  expectValidates(tmp, sug);
  expectNoMarker(m, j, sug);
  const CliRun h = agentCli(tmp, {"discover", "files", drop.string()});
  EXPECT_EQ(h.rc, 0);
  EXPECT_NE(h.out.find("visits_*.csv  x3  csv, delimiter ';'"), std::string::npos) << h.out;
  expectNoMarker(m, h, sug);
}

TEST(Discover, ListenRefusesALiveAdaptersPortAndProfilesATestFeed) {
  TempDir tmp("psa-discover");
  const std::string m = uniqueMarker();
  const int live = freePort();
  json::Value adapter = *json::parse(
      R"({"name":"cerner-adt","type":"hl7-mllp","vendor":"cerner","listen":"0.0.0.0:0"})");
  adapter.set("listen", json::Value::string("0.0.0.0:" + std::to_string(live)));
  const fs::path cfg = configWith(tmp, adapter);
  const CliRun refused = agentCli(tmp, {"--config", cfg.string(), "discover", "hl7", "--listen",
                                        "127.0.0.1:" + std::to_string(live), "--for", "30s"});
  EXPECT_EQ(refused.rc, 2);
  EXPECT_NE(refused.err.find("adapter cerner-adt listens on 0.0.0.0:" + std::to_string(live) +
                             "; discovery must not take a live feed's port"),
            std::string::npos)
      << refused.err;

  const int port = freePort();
  const fs::path out = tmp / "listen.out";
  const fs::path err = tmp / "listen.err";
  const fs::path sug = tmp / "listen.suggest.json";
  Process::Options o;
  o.argv = {binary("pms-agent").string(),
            "--config",
            cfg.string(),
            "discover",
            "hl7",
            "--listen",
            "127.0.0.1:" + std::to_string(port),
            "--for",
            "6s",
            "--json",
            "--suggest",
            sug.string()};
  o.stdout_file = out;
  o.stderr_file = err;
  Process listener(o);
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", port); }, 20s)) << readFile(err);
  writeFile(tmp / "feed.hl7", marked(m, 1, true) + marked(m, 2, false) + marked(m, 3, true));
  const CliRun sent = agentCli(tmp, {"hl7", "send", (tmp / "feed.hl7").string(), "--to",
                                     "127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(sent.rc, 0) << sent.out << sent.err;
  EXPECT_NE(sent.out.find("3 accepted"), std::string::npos) << sent.out;
  ASSERT_EQ(listener.wait(60s).value_or(-1), 0) << readFile(err);
  const CliRun r{0, readFile(out), readFile(err)};
  const json::Value report = parsed(r.out);
  EXPECT_EQ(report.getInt("messages"), 3);
  const json::Value* adt = entry(report, "message_types", "type", "ADT^A04");
  ASSERT_NE(adt, nullptr) << r.out;
  EXPECT_EQ(adt->getInt("count"), 3);
  EXPECT_EQ(entry(report, "ssn_like", "field", "PID-19")->getInt("count"), 2);
  EXPECT_EQ(report.find("suggested_adapter")->getString("listen"),
            "127.0.0.1:" + std::to_string(port));
  expectNoMarker(m, r, sug);
  // The suggestion, placed beside nothing else, validates.
  expectValidates(tmp, sug);
  EXPECT_TRUE(filesContaining(tmp.path() / "state", m).empty());
}

// A PMS that writes slowly under a temp name and renames when done, and one that writes in
// place and drops a marker file: `--watch` tells them apart.
TEST(Discover, WatchObservesHowThePmsFinishesAFile) {
  for (const bool renaming : {true, false}) {
    TempDir tmp("psa-discover");
    const std::string m = uniqueMarker();
    const fs::path drop = tmp / "drop";
    fs::create_directories(drop);
    const fs::path out = tmp / "watch.out";
    const fs::path err = tmp / "watch.err";
    const fs::path sug = tmp / "watch.suggest.json";
    Process::Options o;
    o.argv = {binary("pms-agent").string(),
              "discover",
              "files",
              drop.string(),
              "--watch",
              "5s",
              "--json",
              "--suggest",
              sug.string()};
    o.stdout_file = out;
    o.stderr_file = err;
    Process watcher(o);
    ASSERT_TRUE(waitFor([&] { return readFile(err).find("watching") != std::string::npos; }, 20s));
    // The exporter writes row by row, the way a PMS report job does (its pace, not a wait of
    // the test's).
    const fs::path writing = drop / (renaming ? "visits_1.csv.part" : "visits_1.csv");
    std::string content = "VisitId,Name\n";
    writeFile(writing, content);
    for (int row = 0; row < 8; ++row) {
      std::this_thread::sleep_for(100ms);
      content += std::to_string(row) + "," + m + "\n";
      writeFile(writing, content);
    }
    if (renaming) {
      fs::rename(writing, drop / "visits_1.csv");
    } else {
      writeFile(drop / "visits_1.csv.done", "");
    }
    ASSERT_EQ(watcher.wait(60s).value_or(-1), 0) << readFile(err);
    const json::Value r = parsed(readFile(out));
    const json::Value* c = r.find("completion");
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->find("watched")->asBool());
    if (renaming) {
      EXPECT_EQ(c->getInt("renames"), 1) << readFile(out);
      EXPECT_EQ(c->getString("suggested"), "rename");
    } else {
      EXPECT_GE(c->getInt("markers"), 1) << readFile(out);
      EXPECT_GE(c->getInt("grew_in_place"), 1) << readFile(out);
      EXPECT_EQ(c->getString("suggested"), "marker");
    }
    EXPECT_EQ(entry(r, "patterns", "pattern", "visits_*.csv")->getInt("count"), 1);
    expectValidates(tmp, sug);
    expectNoMarker(m, CliRun{0, readFile(out), readFile(err)}, sug);
  }
}

}  // namespace
}  // namespace psa::test
