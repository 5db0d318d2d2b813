// Exactly once at any size: the real `pms-agent run` is SIGKILLed at random points while it
// streams a 200,000-row CSV (and once during its first pass over the file), restarted each
// time; after every kill the store holds exactly the rows 1..n (no duplicate, no gap), and
// after the last run every row exactly once.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "filedrop_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

constexpr int kRows = 200000;

std::string bigCsv() {
  std::string s = "Id,LastName,FirstName,Note,Amount\r\n";
  s.reserve(static_cast<size_t>(kRows) * 72);
  for (int i = 0; i < kRows; ++i) {
    s += std::to_string(i) + ",LAST" + std::to_string(i % 977) + ",FIRST" + std::to_string(i % 131);
    switch (i % 5) {
      case 0:
        s += ",\"multi\r\nline, with comma\",";
        break;
      case 1:
        s += ",\"said \"\"hi\"\"\",";
        break;
      default:
        s += ",plain,";
        break;
    }
    s += std::to_string(i % 1000) + ".50\r\n";
  }
  return s;
}

// The Id of each stored row, in store order.
std::vector<int> storedIds(const Stored& s) {
  std::vector<int> ids;
  ids.reserve(s.records.size());
  for (const auto& r : s.records) {
    const std::string& p = r.payload.reveal();
    EXPECT_EQ(p.rfind(R"({"Id":")", 0), 0u) << "unexpected payload shape";
    ids.push_back(std::atoi(p.c_str() + 7));
  }
  return ids;
}

size_t countSince(const AgentProcess& agent, size_t offset, std::string_view needle) {
  const std::string log = agent.log();
  size_t n = 0;
  for (size_t pos = log.find(needle, offset); pos != std::string::npos;
       pos = log.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

TEST(FileDropCrash, SigkillAtRandomPointsOfALargeFileLosesAndRepeatsNothing) {
  DropEnv env;
  AgentProcess agent(
      env.state, env.config({env.adapter(
                     R"({"format":"csv","kind":"patient","batch_records":500,"stable_ms":100})")}));
  const std::string data = bigCsv();
  writeFile(env.inbox / "patients_full.csv", data);
  const unsigned seed = std::random_device{}();
  std::printf("seed %u, file %zu bytes\n", seed, data.size());
  std::mt19937 rng(seed);

  size_t last_stored = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    const size_t offset = agent.log().size();
    ASSERT_TRUE(agent.start()) << agent.log();
    if (round == 0) {
      // Killed while hashing/validating the file, before its first batch.
    } else {
      // Somewhere in the first half of what is left (batches of 500 rows).
      const size_t left = (static_cast<size_t>(kRows) - last_stored) / 500;
      const size_t commits =
          std::uniform_int_distribution<size_t>(1, std::max<size_t>(1, left / 2))(rng);
      ASSERT_TRUE(waitFor(
          [&] {
            return countSince(agent, offset, "event=file_progress") >= commits ||
                   countSince(agent, offset, "event=file_ingested") > 0;
          },
          60s))
          << agent.log().substr(offset);
    }
    agent.kill();
    Stored s = readStore(env.state);
    const std::vector<int> ids = storedIds(s);
    // A prefix of the file: rows 0..n-1, each once, in order.
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(ids[i], static_cast<int>(i)) << "after " << ids.size() << " rows";
    }
    EXPECT_GE(ids.size(), last_stored);
    std::printf("round %d: killed with %zu rows stored\n", round, ids.size());
    last_stored = ids.size();
    if (ids.size() == static_cast<size_t>(kRows)) {
      break;
    }
  }
  // Finish.
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "patients_full.csv", 120s)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  const std::vector<int> ids = storedIds(s);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kRows));
  for (int i = 0; i < kRows; ++i) {
    ASSERT_EQ(ids[static_cast<size_t>(i)], i);
  }
  EXPECT_TRUE(s.dead.empty());
  EXPECT_GE(countInLog(agent, "event=file_resumed file=patients_full.csv"), 1u);
  // The archived file is the dropped one, byte for byte.
  auto archived = findNamed(env.archive(), "patients_full.csv");
  ASSERT_EQ(archived.size(), 1u);
  EXPECT_EQ(fs::file_size(archived[0]), data.size());
}

}  // namespace
}  // namespace psa::test
