// The real `pms-agent run` process: start-up, refusal on bad config or unsafe key file, and
// clean shutdown on SIGTERM.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "agent_fixture.h"
#include "test_support.h"

namespace psa::test {
namespace {

json::Value minimalConfig() {
  auto doc = json::parse(R"({"agent":{"id":"practice-0001","tenant":"test-tenant","log_level":"debug"}})");
  return *doc;
}

TEST(AgentRun, StartsCreatesStoreAndStopsCleanlyOnSigterm) {
  TempDir tmp("psa-run");
  AgentProcess agent(tmp / "state", minimalConfig());
  ASSERT_TRUE(agent.start()) << agent.log();
  EXPECT_TRUE(std::filesystem::exists(tmp / "state" / "queue.db"));
  struct stat st {};
  ASSERT_EQ(::stat((tmp / "state" / "queue.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(agent.stop(), 0) << agent.log();
  EXPECT_NE(agent.log().find("event=stopped"), std::string::npos);
}

TEST(AgentRun, InvalidConfigIsRefusedWithEveryProblem) {
  TempDir tmp("psa-run");
  auto cfg = minimalConfig();
  cfg.find("agent")->set("colour", json::Value::string("blue"));
  cfg.set("store", *json::parse(R"({"max_bytes":"big"})"));
  AgentProcess agent(tmp / "state", cfg);
  EXPECT_FALSE(agent.start());
  auto out = agent.log();
  EXPECT_NE(out.find("agent.colour: unknown key"), std::string::npos) << out;
  EXPECT_NE(out.find("store.max_bytes: expected an integer, found a string"), std::string::npos) << out;
  EXPECT_NE(out.find("config invalid; nothing started"), std::string::npos) << out;
}

TEST(AgentRun, RefusesGroupReadableKeyFileWithFix) {
  TempDir tmp("psa-run");
  AgentProcess agent(tmp / "state", minimalConfig());
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  ::chmod((tmp / "state" / "queue.key").c_str(), 0644);
  EXPECT_FALSE(agent.start());
  EXPECT_NE(agent.log().find("chmod 600"), std::string::npos) << agent.log();
}

}  // namespace
}  // namespace psa::test
