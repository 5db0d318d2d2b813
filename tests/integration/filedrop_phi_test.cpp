// No PHI at rest in clear and none in logs: a marker placed in CSV fields (stored rows, a
// dead-lettered row, a file that fails), an HL7 message and an X12 claim never appears in any
// file under the state dir (database, WAL, key, log) nor in the error reports. Also: the
// adapter pauses when the store is at its disk budget and resumes from its checkpoint.
#include <gtest/gtest.h>

#include "filedrop_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

TEST(FileDropPhi, MarkerInFieldsNeverReachesStateFilesLogsOrReports) {
  DropEnv env;
  const std::string m = uniqueMarker();
  auto csv = env.adapter(R"({"format":"csv","kind":"patient","include":["*.csv"]})");
  auto hl7 = env.adapter(R"({"format":"hl7","include":["*.hl7"]})");
  hl7.set("name", json::Value::string("drop-hl7"));
  AgentProcess agent(env.state, env.config({csv, hl7}));
  // Stored rows, a ragged (dead-lettered) row and a bad-UTF-8 row carry the marker.
  writeFile(env.inbox / "p.csv",
            "Id,LastName,Note\n1," + m + ",ok\n2,DOE," + m + ",EXTRA\n3,\xC3(" + m + ",x\n");
  // A file failing after a row with the marker (unterminated quote).
  writeFile(env.inbox / "f.csv", "Id,LastName,Note\n1," + m + ",ok\n2,\"" + m + ",x\n");
  // An HL7 message with the marker in PID-5, and a bad one (no MSH-10) with it too.
  writeFile(env.inbox / "m.hl7",
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|C1|P|2.5.1\rEVN|A04\rPID|1||1||" + m +
                "^JANE\r"
                "MSH|^~\\&|A|B|C|D|20240101||ADT^A08||P|2.5.1\rEVN|A08\rPID|1||2||" +
                m + "^JOHN\r");
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "p.csv")) << agent.log();
  ASSERT_TRUE(waitInError(env, "f.csv")) << agent.log();
  ASSERT_TRUE(waitArchived(env, "m.hl7")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);

  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 2u);  // row 1 of p.csv, message 1
  ASSERT_EQ(s.dead.size(), 3u);     // ragged + bad UTF-8 rows, message 2
  size_t with_marker = 0;
  for (const auto& p : s.payloads()) {
    with_marker += p.find(m) != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(with_marker, 2u);  // the marker really went through the pipeline
  for (const auto& d : s.dead) {
    EXPECT_EQ(d.info.reason.find(m), std::string::npos) << d.info.reason;
  }
  // Reopening the store for the check wrote nothing in clear either.
  EXPECT_TRUE(filesContaining(env.state, m).empty());
  // In the error dir only the failed data file itself holds it, never a report.
  const auto in_error = filesContaining(env.error(), m);
  ASSERT_EQ(in_error.size(), 1u);
  EXPECT_EQ(in_error[0].filename(), "f.csv");
  EXPECT_EQ(agent.log().find(m), std::string::npos);
  EXPECT_TRUE(fs::exists(env.error() / "p.csv.error.txt"));
  EXPECT_TRUE(fs::exists(env.error() / "m.hl7.error.txt"));
}

TEST(FileDropBackPressure, PausesAtTheDiskBudgetAndResumesFromItsCheckpoint) {
  DropEnv env;
  auto cfg = env.config({env.adapter(R"({"format":"csv","kind":"patient","batch_records":200})")});
  cfg.set("store", *json::parse(R"({"max_bytes":1048576})"));
  AgentProcess agent(env.state, cfg);
  std::string data = "Id,Note\n";
  for (int i = 0; i < 20000; ++i) {
    data += std::to_string(i) + "," + std::string(60, 'n') + "\n";
  }
  writeFile(env.inbox / "big.csv", data);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(
      waitFor([&] { return countInLog(agent, "event=paused_store_full file=big.csv") > 0; }, 30s))
      << agent.log();
  EXPECT_TRUE(fs::exists(env.inbox / "big.csv"));  // left where it was
  ASSERT_EQ(agent.stop(), 0);                      // stops promptly while paused
  const size_t stored_while_full = readStore(env.state).records.size();
  EXPECT_GT(stored_while_full, 0u);
  EXPECT_LT(stored_while_full, 20000u);

  agent.config().set("store", *json::parse(R"({"max_bytes":104857600})"));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "big.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 20000u);
  for (size_t i = 0; i < s.records.size(); ++i) {
    ASSERT_EQ(s.records[i].payload.reveal().rfind("{\"Id\":\"" + std::to_string(i) + "\"", 0), 0u)
        << i;
  }
}

}  // namespace
}  // namespace psa::test
