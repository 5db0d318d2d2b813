// A remote config that changes a file-drop adapter while an exporter keeps dropping CSV files:
// the old reader finishes its current commit before the new one takes the directory over
// (same name: handover), so every row arrives at the cloud exactly once.
#include <gtest/gtest.h>

#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

json::Value dropAdapter(const std::filesystem::path& dir, int poll_interval_ms) {
  json::Value a = json::Value::object();
  a.set("name", json::Value::string("ecw-export"));
  a.set("type", json::Value::string("file-drop"));
  a.set("vendor", json::Value::string("eclinicalworks"));
  a.set("path", json::Value::string(dir.string()));
  a.set("include", json::Value::array({json::Value::string("*.csv")}));
  a.set("format", json::Value::string("csv"));
  a.set("kind", json::Value::string("appointment"));
  a.set("stable_ms", json::Value::integer(100));
  a.set("poll_interval_ms", json::Value::integer(poll_interval_ms));
  return a;
}

TEST(RemoteFileDrop, ReaderReplacedWhileFilesKeepArrivingLosesAndDuplicatesNothing) {
  RemoteFixture f;
  const auto drop = f.env.tmp / "drop";
  std::filesystem::create_directories(drop);
  f.agent->config().set("adapters", json::Value::array({dropAdapter(drop, 200)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  // The exporter: a file of 200 rows every few ms, written under a temp name and renamed.
  constexpr int kFiles = 40;
  constexpr int kRows = 200;
  std::atomic<int> written{0};
  std::thread exporter([&] {
    for (int i = 0; i < kFiles; ++i) {
      std::string text = "row_id,clinic\n";
      for (int j = 0; j < kRows; ++j) {
        text += "f" + std::to_string(i) + "-" + std::to_string(j) + ",north\n";
      }
      const auto tmp = drop / ("visits-" + std::to_string(i) + ".csv.tmp");
      writeFile(tmp, text);
      std::filesystem::rename(tmp, drop / ("visits-" + std::to_string(i) + ".csv"));
      ++written;
      std::this_thread::sleep_for(25ms);  // exporter pace
    }
  });
  ASSERT_TRUE(waitFor([&] { return written >= 10 && f.sim->unique().size() >= 1000; }, 60s)) << f.agent->log();
  json::Value r = f.pushConfig(adaptersConfig({dropAdapter(drop, 300)}), 1);
  EXPECT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();
  EXPECT_EQ(r.find("replaced")->items().size(), 1u) << json::serialize(r);
  exporter.join();

  ASSERT_TRUE(waitFor([&] { return f.sim->unique().size() >= kFiles * kRows; }, 120s))
      << f.sim->unique().size() << " of " << kFiles * kRows << "\n" << f.agent->log();
  std::set<std::string> rows;
  size_t records = 0;
  for (const auto& [id, m] : f.sim->unique()) {
    auto doc = json::parse(m.payload);
    ASSERT_TRUE(doc.ok()) << m.payload.substr(0, 100);
    rows.insert(doc->getString("row_id"));
    ++records;
  }
  EXPECT_EQ(rows.size(), static_cast<size_t>(kFiles * kRows));
  EXPECT_EQ(records, static_cast<size_t>(kFiles * kRows)) << "rows were queued twice";
  for (const auto& e : std::filesystem::directory_iterator(drop)) {
    EXPECT_FALSE(e.is_regular_file()) << "left behind: " << e.path();
  }
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
