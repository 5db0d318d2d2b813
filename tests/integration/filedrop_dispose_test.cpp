// What happens to a dropped file after it was read: archive (dated) or delete, the same
// content dropped again, a crash between the last commit and the move, an unreadable file,
// and many small files in one go; through the real `pms-agent run` and the real store.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "filedrop_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

const char* const kPatients = "Id,Name\n1,A\n2,B\n3,C\n";

TEST(FileDropDispose, DeleteAfterIngest) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(R"({"format":"csv","kind":"patient","after":"delete"})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  writeFile(env.inbox / "p.csv", kPatients);
  ASSERT_TRUE(waitFor([&] { return !fs::exists(env.inbox / "p.csv"); }, 20s)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_FALSE(fs::exists(env.archive()));
  EXPECT_EQ(readStore(env.state).records.size(), 3u);
  EXPECT_NE(agent.log().find("event=file_ingested file=p.csv format=csv records=3 dead=0"),
            std::string::npos);
}

TEST(FileDropDispose, SameContentDroppedAgainIsArchivedUnread) {
  DropEnv env;
  AgentProcess agent(env.state, env.config({env.adapter(R"({"format":"csv","kind":"patient"})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  writeFile(env.inbox / "p_0101.csv", kPatients);
  ASSERT_TRUE(waitArchived(env, "p_0101.csv")) << agent.log();
  writeFile(env.inbox / "p_0102.csv", kPatients);  // same bytes, new name
  ASSERT_TRUE(waitArchived(env, "p_0102.csv")) << agent.log();
  writeFile(env.inbox / "p_0101.csv", kPatients);  // same name again, later
  ASSERT_TRUE(waitFor(
      [&] {
        return !fs::exists(env.inbox / "p_0101.csv") &&
               findNamed(env.archive(), "p_0101.1.csv").size() == 1;
      },
      20s))
      << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(readStore(env.state).records.size(), 3u);
  EXPECT_EQ(countInLog(agent, "event=file_duplicate_skipped"), 2u);
  EXPECT_NE(agent.log().find(
                "event=file_duplicate file=p_0102.csv first_ingested_as=p_0101.csv records=3"),
            std::string::npos);
}

TEST(FileDropDispose, DuplicatePolicyErrorMovesTheCopyToError) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(R"({"format":"csv","kind":"patient","duplicates":"error"})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  writeFile(env.inbox / "a.csv", kPatients);
  ASSERT_TRUE(waitArchived(env, "a.csv")) << agent.log();
  writeFile(env.inbox / "b.csv", kPatients);
  ASSERT_TRUE(waitInError(env, "b.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  const std::string report = readFile(env.error() / "b.csv.error.txt");
  EXPECT_NE(report.find("error:     duplicate\n           same content as a.csv, ingested at "),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("nothing of it was ingested"), std::string::npos);
  EXPECT_EQ(readStore(env.state).records.size(), 3u);
}

TEST(FileDropDispose, CrashBetweenLastCommitAndMoveDoesNotIngestAgain) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(R"({"format":"csv","kind":"patient","exclude":["archive"]})")}));
  ASSERT_TRUE(agent.start()) << agent.log();
  // Make the move fail after the commit: a plain file where the archive folder should be.
  fs::remove_all(env.archive());
  writeFile(env.archive(), "blocker");
  writeFile(env.inbox / "p.csv", kPatients);
  ASSERT_TRUE(
      waitFor([&] { return countInLog(agent, "event=archive_failed file=p.csv") > 0; }, 20s))
      << agent.log();
  agent.kill();  // committed ("done"), not moved
  EXPECT_TRUE(fs::exists(env.inbox / "p.csv"));
  fs::remove(env.archive());
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "p.csv")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(countInLog(agent, "event=file_already_ingested file=p.csv records=3"), 1u);
  Stored s = readStore(env.state);
  EXPECT_EQ(s.records.size(), 3u);
  ASSERT_EQ(s.watermarks.size(), 1u);
  EXPECT_NE(s.watermarks.begin()->second.find(R"("state":"done")"), std::string::npos);
}

TEST(FileDropDispose, UnreadableFileGoesToErrorAndOthersKeepFlowing) {
  DropEnv env;
  // Root reads any file, so the agent runs as `nobody` when the test runs as root.
  const bool as_root = ::geteuid() == 0;
  fs::create_directories(env.state);
  auto cfg = env.config({env.adapter(R"({"format":"csv","kind":"patient"})")});
  cfg.find("agent")->set("state_dir", json::Value::string(env.state.string()));
  cfg.set("control",
          *json::parse("{\"socket\":\"" + (env.state / "control.sock").string() + "\"}"));
  const fs::path config_file = env.tmp / "agent.json";
  writeFile(config_file, json::serialize(cfg, true));
  writeFile(env.inbox / "secret.csv", kPatients);
  ::chmod((env.inbox / "secret.csv").c_str(), 0);
  writeFile(env.inbox / "ok.csv", "Id,Name\n9,Z\n");
  Process::Options opts;
  opts.argv = {binary("pms-agent").string(), "run", "--config", config_file.string()};
  if (as_root) {
    for (const auto& p : {env.state, env.inbox, env.inbox / "secret.csv", env.inbox / "ok.csv"}) {
      ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0) << p;
    }
    opts.argv.insert(opts.argv.begin(),
                     {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  }
  const fs::path log = env.tmp / "agent.log";
  opts.stdout_file = log;
  Process proc(std::move(opts));
  ASSERT_TRUE(waitFor([&] { return readFile(log).find("event=ready") != std::string::npos; }, 20s))
      << readFile(log);
  ASSERT_TRUE(waitArchived(env, "ok.csv")) << readFile(log);
  ASSERT_TRUE(waitInError(env, "secret.csv")) << readFile(log);
  proc.signal(SIGTERM);
  ASSERT_EQ(proc.wait(30s).value_or(-1), 0);
  const std::string report = readFile(env.error() / "secret.csv.error.txt");
  EXPECT_NE(
      report.find(
          "error:     unreadable\n           cannot open: Permission denied (check the file's "
          "owner and mode)\n"),
      std::string::npos)
      << report;
  EXPECT_NE(readFile(log).find("event=file_unreadable file=secret.csv"), std::string::npos);
  EXPECT_EQ(readStore(env.state).records.size(), 1u);
}

TEST(FileDropDispose, AThousandSmallFiles) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(R"({"format":"csv","kind":"appointment","stable_ms":100})")}));
  for (int i = 0; i < 1000; ++i) {
    writeFile(env.inbox / ("appt_" + std::to_string(10000 + i) + ".csv"),
              "Id,File,Row\n" + std::to_string(i) + "-1," + std::to_string(i) + ",1\n" +
                  std::to_string(i) + "-2," + std::to_string(i) + ",2\n");
  }
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(agent.start()) << agent.log();
  auto inboxFiles = [&] {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(env.inbox, ec)) {
      n += e.is_regular_file(ec) ? 1 : 0;
    }
    return n;
  };
  ASSERT_TRUE(waitFor([&] { return inboxFiles() == 0; }, 120s)) << inboxFiles() << " left\n"
                                                                << agent.log();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_EQ(agent.stop(), 0);
  std::printf("1000 files (2 rows each) ingested and archived in %lld ms\n",
              static_cast<long long>(ms));
  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 2000u);
  std::set<std::string> unique;
  for (const auto& p : s.payloads()) {
    unique.insert(p);
  }
  EXPECT_EQ(unique.size(), 2000u);
  EXPECT_EQ(countInLog(agent, "event=file_ingested"), 1000u);
}

}  // namespace
}  // namespace psa::test
