// Client-side limits: a token bucket sized from "N per W" never admits more than N in any
// rolling window (also across a restart), and a persisted fixed-window budget never spends a
// window twice.
#include <gtest/gtest.h>

#include <deque>
#include <fstream>

#include "psa/adapters/api/rate_limit.h"
#include "test_support.h"

namespace api = psa::adapters::api;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

// Greedy client: requests as soon as the bucket allows, for `duration`; returns request times.
std::vector<Steady::time_point> greedy(api::TokenBucket& b, Steady::time_point start,
                                       std::chrono::milliseconds duration) {
  std::vector<Steady::time_point> times;
  auto now = start;
  while (now < start + duration) {
    const auto wait = b.tryTake(now);
    if (wait.count() == 0) {
      times.push_back(now);
    } else {
      now += wait;
    }
  }
  return times;
}

size_t maxInAnyWindow(const std::vector<Steady::time_point>& times, std::chrono::milliseconds w) {
  size_t best = 0;
  std::deque<Steady::time_point> q;
  for (auto t : times) {
    q.push_back(t);
    while (!q.empty() && q.front() <= t - w) {
      q.pop_front();
    }
    best = std::max(best, q.size());
  }
  return best;
}

TEST(TokenBucket, ForLimitNeverExceedsTheLimitInAnyRollingWindow) {
  struct Case {
    uint64_t n;
    std::chrono::milliseconds w;
  };
  for (const Case c : {Case{250, 60s}, Case{100, 1s}, Case{9, 1s}, Case{50, 60s}, Case{1, 1s},
                       Case{3, 10s}}) {
    const auto start = Steady::time_point{} + 1000s;
    auto b = api::TokenBucket::forLimit(c.n, c.w, start);
    auto times = greedy(b, start, c.w * 12);
    EXPECT_LE(maxInAnyWindow(times, c.w), c.n) << c.n << "/" << c.w.count();
    // ...and uses most of it: (N - C) per window in the long run, C = max(1, N/10).
    const double capacity = std::max(1.0, static_cast<double>(c.n / 10));
    EXPECT_GE(static_cast<double>(times.size()),
              0.95 * (static_cast<double>(c.n) - capacity) * 12)
        << c.n << "/" << c.w.count();
    EXPECT_EQ(b.capacity(), capacity);
  }
}

TEST(TokenBucket, RestartStartingEmptyStaysWithinTheWindow) {
  // A process that ran flat out, crashed, and a new one that starts at once: together still
  // at most N in any window, because the new bucket starts empty.
  const auto w = 60s;
  const auto t0 = Steady::time_point{} + 1000s;
  auto first = api::TokenBucket::forLimit(250, w, t0);
  auto times = greedy(first, t0, 90s);
  auto second = api::TokenBucket::forLimit(250, w, t0 + 90s);
  auto more = greedy(second, t0 + 90s, 120s);
  times.insert(times.end(), more.begin(), more.end());
  EXPECT_LE(maxInAnyWindow(times, w), 250u);
}

TEST(TokenBucket, TryTakeReportsTheWait) {
  const auto t0 = Steady::time_point{} + 10s;
  api::TokenBucket b(2, 4, 2, t0);  // 2 tokens, 4 per second
  EXPECT_EQ(b.tryTake(t0).count(), 0);
  EXPECT_EQ(b.tryTake(t0).count(), 0);
  EXPECT_EQ(b.tryTake(t0), std::chrono::nanoseconds(250ms));
  EXPECT_EQ(b.tryTake(t0 + 250ms).count(), 0);
  EXPECT_NEAR(b.available(t0 + 10s), 2.0, 1e-9);  // capped at capacity
}

TEST(WindowBudget, CountsPerAlignedWindowAndTellsWhenTheNextOpens) {
  api::WindowBudget b(3, 3600s, {});
  const int64_t hour = 1795000000000 - 1795000000000 % 3600000;
  for (int i = 0; i < 3; ++i) {
    auto r = b.tryTake(hour + 10);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, std::nullopt);
  }
  auto full = b.tryTake(hour + 3599999);
  ASSERT_TRUE(full);
  EXPECT_EQ(*full, std::optional<int64_t>(hour + 3600000));
  auto next = b.tryTake(hour + 3600000);  // top of the next hour: a fresh window
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, std::nullopt);
}

TEST(WindowBudget, PersistedCountSurvivesARestartAndErrsOnTheSafeSide) {
  psa::test::TempDir dir("psa-budget");
  const auto file = dir / "drchrono.hour.budget";
  const int64_t hour = 1795000000000 - 1795000000000 % 3600000;
  {
    api::WindowBudget b(500, 3600s, file, 16);
    ASSERT_TRUE(b.load());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(b.tryTake(hour + i));
    }
  }  // "crash": 20 spent, 32 reserved on disk
  api::WindowBudget again(500, 3600s, file, 16);
  ASSERT_TRUE(again.load());
  EXPECT_EQ(again.used(hour + 100), 32u);
  EXPECT_EQ(again.used(hour + 3600000), 0u);  // a later window starts fresh
  // Exhausting the window after the restart takes exactly the remainder.
  size_t taken = 0;
  for (;;) {
    auto r = again.tryTake(hour + 200);
    ASSERT_TRUE(r);
    if (r->has_value()) {
      break;
    }
    ++taken;
  }
  EXPECT_EQ(taken, 500u - 32u);
}

TEST(WindowBudget, CorruptFileIsReported) {
  psa::test::TempDir dir("psa-budget");
  const auto file = dir / "x.budget";
  psa::test::writeFile(file, "{\"nope\":1}");
  api::WindowBudget b(10, 60s, file);
  auto st = b.load();
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().is(psa::Errc::corrupt));
  EXPECT_EQ(st.error().message, "rate budget file " + file.string() + " is not a budget record");
}

}  // namespace
