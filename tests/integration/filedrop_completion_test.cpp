// When the file-drop adapter picks a file up: never while it is being written. Each
// completeness rule (size+mtime stable, marker file, rename from a temp name) and the polling
// fallback, through the real `pms-agent run`.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "filedrop_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

std::string rows(int from, int to) {
  std::string s;
  for (int i = from; i < to; ++i) {
    s += std::to_string(i) + ",NAME" + std::to_string(i) + ",\"note, with comma\"\n";
  }
  return s;
}

// Writes `path` in `pieces` appends, `gap` apart, keeping the file open like an exporter;
// checks after every piece that the agent has not taken the file.
void writeSlowly(const fs::path& path, int pieces, std::chrono::milliseconds gap,
                 int rows_per_piece) {
  std::ofstream out(path, std::ios::binary);
  out << "Id,Name,Note\n";
  out.flush();
  for (int p = 0; p < pieces; ++p) {
    std::this_thread::sleep_for(gap);  // the exporter's pace, not a wait for the agent
    ASSERT_TRUE(fs::exists(path)) << "picked up while being written (piece " << p << ")";
    out << rows(p * rows_per_piece, (p + 1) * rows_per_piece);
    out.flush();
  }
}

TEST(FileDropCompletion, StableRuleNeverReadsAFileStillBeingWritten) {
  DropEnv env;
  AgentProcess agent(
      env.state, env.config({env.adapter(R"({"format":"csv","kind":"patient","stable_ms":600})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  writeSlowly(env.inbox / "slow.csv", 12, 150ms, 50);
  ASSERT_TRUE(waitArchived(env, "slow.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  EXPECT_EQ(s.records.size(), 600u);
  EXPECT_EQ(countInLog(agent, "event=file_ingested file=slow.csv"), 1u);
}

TEST(FileDropCompletion, MarkerRuleWaitsForNameDoneOrStemOk) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(R"({"format":"csv","kind":"patient","complete":"marker"})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  writeFile(env.inbox / "a.csv", "Id,Name\n1,A\n");
  writeFile(env.inbox / "b.csv", "Id,Name\n2,B\n");
  // Complete and stable, but no marker yet: never picked (several poll intervals pass).
  EXPECT_FALSE(waitFor([&] { return !fs::exists(env.inbox / "a.csv"); }, 1500ms));
  writeFile(env.inbox / "a.csv.done", "");
  ASSERT_TRUE(waitArchived(env, "a.csv")) << agent.log();
  EXPECT_TRUE(
      waitFor([&] { return !fs::exists(env.inbox / "a.csv.done"); }, 5s));  // marker removed
  EXPECT_TRUE(fs::exists(env.inbox / "b.csv"));
  writeFile(env.inbox / "b.ok", "");  // stem + suffix
  ASSERT_TRUE(waitArchived(env, "b.csv")) << agent.log();
  EXPECT_TRUE(waitFor([&] { return !fs::exists(env.inbox / "b.ok"); }, 5s));
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  EXPECT_EQ(s.records.size(), 2u);
  EXPECT_TRUE(findNamed(env.archive(), "a.csv.done").empty());  // markers are not data
}

TEST(FileDropCompletion, RenameRuleIgnoresTempNamesUntilTheRename) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(
          R"({"format":"csv","kind":"appointment","complete":"rename","stable_ms":0})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  // Written under a temp name (slowly, and an hidden one too): never picked.
  writeSlowly(env.inbox / "appts.csv.tmp", 6, 100ms, 20);
  writeFile(env.inbox / ".appts2.csv", "Id,Name,Note\n1,X,Y\n");
  EXPECT_FALSE(waitFor([&] { return !fs::exists(env.inbox / "appts.csv.tmp"); }, 800ms));
  fs::rename(env.inbox / "appts.csv.tmp", env.inbox / "appts.csv");
  ASSERT_TRUE(waitArchived(env, "appts.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_TRUE(fs::exists(env.inbox / ".appts2.csv"));
  Stored s = readStore(env.state);
  EXPECT_EQ(s.records.size(), 120u);
}

TEST(FileDropCompletion, PollingFallbackFindsFilesWithoutChangeEvents) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(
          R"({"format":"csv","kind":"patient","watch":"poll","poll_interval_ms":100,"stable_ms":200,
          "recursive":true})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  EXPECT_NE(agent.log().find("event=watching path=" + env.inbox.string() + " watch=polling"),
            std::string::npos);
  fs::create_directories(env.inbox / "site2" / "today");
  writeFile(env.inbox / "site2" / "today" / "p.csv", "Id,Name\n1,A\n2,B\n");
  writeFile(env.inbox / "top.csv", "Id,Name\n3,C\n");
  ASSERT_TRUE(waitFor([&] { return !findNamed(env.archive(), "p.csv").empty(); }, 20s))
      << agent.log();
  ASSERT_TRUE(waitArchived(env, "top.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  // The relative path is kept under the dated archive folder.
  auto archived = findNamed(env.archive(), "p.csv");
  ASSERT_EQ(archived.size(), 1u);
  EXPECT_EQ(archived[0].parent_path().filename(), "today");
  EXPECT_EQ(archived[0].parent_path().parent_path().filename(), "site2");
  EXPECT_EQ(readStore(env.state).records.size(), 3u);
}

}  // namespace
}  // namespace psa::test
