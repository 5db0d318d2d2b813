// TrafficHistory: differences of cumulative totals, bounded, with rates and its JSON shape.
#include "http/traffic_history.h"

#include <gtest/gtest.h>

namespace psa::agent::http {
namespace {

using std::chrono::seconds;

TEST(TrafficHistoryTest, FirstSampleSetsTheBaselineAndLaterOnesStoreDifferences) {
  TrafficHistory h(seconds(10), 8);
  h.sample(1'000, 100, 40);
  EXPECT_TRUE(h.points().empty());
  h.sample(11'000, 130, 45);
  h.sample(21'000, 130, 60);
  const auto points = h.points();
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].at_ms, 11'000);
  EXPECT_EQ(points[0].in, 30u);
  EXPECT_EQ(points[0].out, 5u);
  EXPECT_EQ(points[1].at_ms, 21'000);
  EXPECT_EQ(points[1].in, 0u);
  EXPECT_EQ(points[1].out, 15u);
}

TEST(TrafficHistoryTest, KeepsOnlyCapacityPointsOldestFirst) {
  TrafficHistory h(seconds(10), 3);
  for (int i = 0; i <= 10; ++i) {
    h.sample(i * 10'000, static_cast<uint64_t>(i) * 2, static_cast<uint64_t>(i));
  }
  const auto points = h.points();
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].at_ms, 80'000);
  EXPECT_EQ(points[1].at_ms, 90'000);
  EXPECT_EQ(points[2].at_ms, 100'000);
  for (const auto& p : points) {
    EXPECT_EQ(p.in, 2u);
    EXPECT_EQ(p.out, 1u);
  }
}

TEST(TrafficHistoryTest, ACounterThatWentBackwardsCountsFromZero) {
  TrafficHistory h;
  h.sample(0, 500, 300);
  h.sample(10'000, 520, 7);  // the link restarted: its acked total began again at 0
  const auto points = h.points();
  ASSERT_EQ(points.size(), 1u);
  EXPECT_EQ(points[0].in, 20u);
  EXPECT_EQ(points[0].out, 7u);
}

TEST(TrafficHistoryTest, RatesCoverTheWindowEndingAtTheNewestPoint) {
  TrafficHistory h(seconds(10), 360);
  EXPECT_EQ(h.inRate(seconds(60)), 0.0);
  h.sample(0, 0, 0);
  // 30 s at 10 in/s and 2 out/s, then 30 s at 1 in/s and 0 out/s.
  uint64_t in = 0;
  uint64_t out = 0;
  for (int i = 1; i <= 6; ++i) {
    in += i <= 3 ? 100 : 10;
    out += i <= 3 ? 20 : 0;
    h.sample(i * 10'000, in, out);
  }
  EXPECT_DOUBLE_EQ(h.inRate(seconds(30)), 1.0);
  EXPECT_DOUBLE_EQ(h.outRate(seconds(30)), 0.0);
  EXPECT_DOUBLE_EQ(h.inRate(seconds(60)), 330.0 / 60.0);
  EXPECT_DOUBLE_EQ(h.outRate(seconds(60)), 1.0);
  // A window longer than the history is not diluted by time before the first sample.
  EXPECT_DOUBLE_EQ(h.inRate(seconds(3600)), 330.0 / 60.0);
}

TEST(TrafficHistoryTest, JsonHasTheIntervalAndOnePointTriplePerSample) {
  TrafficHistory h(seconds(15), 10);
  h.sample(1'000, 0, 0);
  h.sample(16'000, 4, 3);
  const json::Value v = h.toJson();
  EXPECT_EQ(json::serialize(v), R"({"interval_s":15,"points":[[16000,4,3]]})");
}

}  // namespace
}  // namespace psa::agent::http
