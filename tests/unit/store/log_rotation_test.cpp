// The log facade's file output: size rotation keeps `keep` old files, the in-memory ring the
// support bundle reads, per-level counts, and runtime level changes.
#include <gtest/gtest.h>

#include <filesystem>

#include "psa/store/log.h"
#include "test_support.h"

namespace psa {
namespace {

namespace fs = std::filesystem;

struct QuietLog {
  QuietLog() { log::setStderr(false); }
  ~QuietLog() {
    log::setFile({}, 0, 0);
    log::setStderr(true);
    log::setLevel(log::Level::info);
  }
};

TEST(LogFile, RotatesBySizeAndKeepsTheNewestFiles) {
  QuietLog quiet;
  psa::test::TempDir dir("psa-log");
  const fs::path file = dir / "agent.log";
  ASSERT_TRUE(log::setFile(file, 2048, 2));
  log::Logger logger("test");
  for (int i = 0; i < 200; ++i) {
    logger.info("tick", {{"i", i}});
  }
  EXPECT_TRUE(fs::exists(file));
  EXPECT_TRUE(fs::exists(dir / "agent.log.1"));
  EXPECT_TRUE(fs::exists(dir / "agent.log.2"));
  EXPECT_FALSE(fs::exists(dir / "agent.log.3"));
  for (const char* f : {"agent.log", "agent.log.1", "agent.log.2"}) {
    EXPECT_LE(fs::file_size(dir / f), 2048u + 200u) << f;  // one line may cross the limit
  }
  // The newest line is in the current file, complete.
  EXPECT_NE(psa::test::readFile(file).find("event=tick i=199\n"), std::string::npos);
  EXPECT_FALSE(log::setFile(dir / "no-such-dir" / "x.log", 1024, 1));
}

TEST(LogFile, RecentLinesAndCountsFollowRuntimeLevelChanges) {
  QuietLog quiet;
  log::Logger logger("test");
  log::setLevel(log::Level::info);
  const uint64_t debug_before = log::linesWritten(log::Level::debug);
  logger.debug("not-yet");
  EXPECT_EQ(log::linesWritten(log::Level::debug), debug_before);
  log::setLevel(log::Level::debug);  // what `pms-agent log level debug` does in the agent
  logger.debug("now-visible", {{"n", 1}});
  EXPECT_EQ(log::linesWritten(log::Level::debug), debug_before + 1);
  auto lines = log::recentLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" level=debug comp=test event=now-visible n=1"), std::string::npos)
      << lines[0];
  for (int i = 0; i < 3000; ++i) {
    logger.info("fill", {{"i", i}});
  }
  auto all = log::recentLines(5000);
  EXPECT_EQ(all.size(), 2000u) << "the ring keeps the last 2000 lines";
  EXPECT_NE(all.back().find("event=fill i=2999"), std::string::npos);
}

}  // namespace
}  // namespace psa
