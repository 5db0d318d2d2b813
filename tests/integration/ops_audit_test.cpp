// The audit trail through the real agent: the chain verifies after a run with SIGKILLs (and
// the delivery counts it holds add up exactly), an administrative act acknowledged to the CLI
// survives a SIGKILL right after, and a row edited with sqlite3 makes `audit verify` fail at
// that entry, from the files and through the running agent.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(OpsAudit, ChainVerifiesAfterSigkillsAndCountsEveryDeliveryOnce) {
  CloudEnv env({}, "psa-ops-audit");
  CloudSim sim(env.simOptions());
  const fs::path state = env.tmp / "state";
  const Prefilled pre = prefillStore(state, 6000, 0, "x");
  json::Value cfg = baseConfig();
  cfg.set("cloud", cloudSection(env));
  AgentProcess agent(state, cfg);

  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor([&] { return sim.unique().size() >= 1000; }, 60s));
  // An act the CLI saw acknowledged is on record even if the agent dies right after.
  auto r = agent.cli({"keys", "rotate"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  agent.kill();

  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor([&] { return sim.unique().size() >= 3000; }, 60s));
  agent.kill();
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(sim.waitForUnique(pre.queued.size(), 120s)) << sim.unique().size();
  ASSERT_TRUE(waitFor([&] {
    auto s = json::parse(agent.cli({"queue", "stats", "--json"}).output);
    return s && s->getInt("pending") == 0;
  }, 30s));
  agent.kill();  // killed once more, idle: the last counts were saved with the last acks

  r = agent.cli({"audit", "verify"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK    audit chain   intact: "), std::string::npos) << r.output;
  ASSERT_TRUE(agent.start()) << agent.log();  // flushes what the killed run aggregated
  ASSERT_EQ(agent.stop(), 0);
  const auto entries = auditEntriesOf(state);
  EXPECT_EQ(auditCount(entries, "records.delivered"), static_cast<int64_t>(pre.queued.size()))
      << "every record is counted as delivered exactly once across the kills";
  bool rotate_seen = false;
  for (const auto& e : entries) {
    if (e.action == "cli.keys.rotate") {
      rotate_seen = true;
      EXPECT_EQ(e.actor, "uid:" + std::to_string(::getuid()));
    }
  }
  EXPECT_TRUE(rotate_seen) << "the acknowledged keys rotate was lost by the SIGKILL";
  r = agent.cli({"audit", "verify", "--json"});
  EXPECT_EQ(r.exit_code, 0);
  auto doc = json::parse(r.output.substr(r.output.find('{')));
  ASSERT_TRUE(doc.ok()) << r.output;
  EXPECT_TRUE(doc->getBool("ok"));
  EXPECT_EQ(doc->getInt("entries"), static_cast<int64_t>(entries.size()));
}

TEST(OpsAudit, AnEditedRowMakesVerifyFailAtThatEntry) {
  if (::access("/usr/bin/sqlite3", X_OK) != 0) {
    GTEST_SKIP() << "needs the sqlite3 command line tool (packaging/install-deps.sh installs it)";
  }
  TempDir tmp("psa-ops-tamper");
  const fs::path state = tmp / "state";
  const Prefilled pre = prefillStore(state, 10, 2, "x");
  AgentProcess agent(state, baseConfig());
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_EQ(agent.cli({"queue", "retry", pre.dead[0]}).exit_code, 0);
  ASSERT_EQ(agent.cli({"keys", "rotate"}).exit_code, 0);
  ASSERT_EQ(agent.cli({"log", "level", "warn"}).exit_code, 0);
  ASSERT_EQ(agent.stop(), 0);
  const auto entries = auditEntriesOf(state);
  ASSERT_GE(entries.size(), 5u);
  ASSERT_EQ(agent.cli({"audit", "verify"}).exit_code, 0);

  // Someone hides a retry: one row changed by hand.
  int64_t victim = 0;
  for (const auto& e : entries) {
    if (e.action == "cli.queue.retry") {
      victim = e.seq;
    }
  }
  ASSERT_GT(victim, 0);
  auto sql = runCommand({"/usr/bin/sqlite3", (state / "queue.db").string(),
                         "UPDATE audit SET detail='{\"result\":\"nothing happened\"}' WHERE seq=" +
                             std::to_string(victim)});
  ASSERT_EQ(sql.exit_code, 0) << sql.output;

  const std::string expected = "FAIL  audit chain   broken at entry " + std::to_string(victim) +
                               ": hash does not match the entry's contents ▸ the audit table was "
                               "changed outside the agent; keep a copy of the database "
                               "(pms-agent bundle) and report it\n";
  auto r = agent.cli({"audit", "verify"});  // from the files
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(expected), std::string::npos) << r.output;

  ASSERT_TRUE(agent.start()) << agent.log();
  r = agent.cli({"audit", "verify"});  // through the running agent
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output, expected);
  r = agent.cli({"audit", "verify", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  auto doc = json::parse(r.output);
  ASSERT_TRUE(doc.ok()) << r.output;
  EXPECT_FALSE(doc->getBool("ok"));
  EXPECT_EQ(doc->getInt("first_bad_seq"), victim);
  EXPECT_EQ(doc->getString("problem"), "hash does not match the entry's contents");
  // New entries still chain on (the agent keeps working), the break stays reported.
  ASSERT_EQ(agent.cli({"keys", "rotate"}).exit_code, 0);
  EXPECT_EQ(agent.cli({"audit", "verify"}).output, expected);
  ASSERT_EQ(agent.stop(), 0);
}

}  // namespace
}  // namespace psa::test
