// Client-side limits: a token bucket sized from "N per W" never admits more than N in any
// rolling window (also across a restart), and a persisted fixed-window budget never spends a
// window twice. With reserve-at-send / charge-at-answer, no window holds more than N requests
// whose [send, answer] interval touches it, however long and uneven the answers take.
#include <gtest/gtest.h>

#include <deque>
#include <fstream>
#include <map>
#include <random>

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
  // The next window counts the one request the stopped process may have had in flight at its
  // top; any later window starts fresh.
  EXPECT_EQ(again.used(hour + 3600000), 1u);
  EXPECT_EQ(again.used(hour + 7200000), 0u);
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

// One request as a client sees it: sent (reserved) at `send`, answered (charged) at `answer`.
struct Span {
  int64_t send_ms;
  int64_t answer_ms;
};

// The most requests whose [send, answer] touches one rolling window [t, t + w): the server may
// count each at any instant in between. Checked at every candidate start (each answer time).
size_t maxTouchingRolling(const std::vector<Span>& spans, int64_t w) {
  size_t best = 0;
  for (const auto& s : spans) {
    const int64_t t = s.answer_ms;
    size_t n = 0;
    for (const auto& o : spans) {
      n += (o.answer_ms >= t && o.send_ms < t + w) ? 1 : 0;
    }
    best = std::max(best, n);
  }
  return best;
}

// The same for fixed windows [k*w, (k+1)*w).
size_t maxTouchingFixed(const std::vector<Span>& spans, int64_t w) {
  std::map<int64_t, size_t> per;
  for (const auto& s : spans) {
    for (int64_t k = s.send_ms / w; k <= s.answer_ms / w; ++k) {
      ++per[k];
    }
  }
  size_t best = 0;
  for (const auto& [k, n] : per) {
    best = std::max(best, n);
  }
  return best;
}

// A greedy sequential client (one request at a time, like an adapter's worker) whose answers
// take between 0 and `max_delay_ms`, heavy-tailed so that slow and fast ones mix.
template <class Reserve, class Complete>
std::vector<Span> sequentialClient(int64_t start_ms, int64_t duration_ms, int64_t max_delay_ms,
                                   uint64_t seed, Reserve reserve, Complete complete) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> delay(0, max_delay_ms);
  std::bernoulli_distribution slow(0.2);
  std::vector<Span> spans;
  int64_t now = start_ms;
  while (now < start_ms + duration_ms) {
    const int64_t wait = reserve(now);
    if (wait > 0) {
      now += wait;
      continue;
    }
    const int64_t d = slow(rng) ? max_delay_ms : delay(rng) / 10;
    spans.push_back({now, now + d});
    now += d;
    complete(now);
  }
  return spans;
}

TEST(TokenBucket, ChargedAtTheAnswerNoRollingWindowTouchesMoreThanTheLimit) {
  struct Case {
    uint64_t limit;
    int64_t w;
    size_t min_per_window;  // the long-run use: a request in flight holds one of C places
  };
  // A small bucket (capacity 2) and eCW's own 250/min (capacity 25).
  for (const Case c : {Case{25, 6000, 14}, Case{250, 60000, 215}}) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      const Steady::time_point base{};
      auto b = api::TokenBucket::forLimit(c.limit, std::chrono::milliseconds(c.w), base);
      auto spans = sequentialClient(
          0, 20 * c.w, 700, seed,
          [&](int64_t now) -> int64_t {
            const auto d = b.tryReserve(base + std::chrono::milliseconds(now));
            if (d == api::TokenBucket::kUntilAnAnswer) {
              ADD_FAILURE() << "a sequential client never waits for its own answer";
              return 1000;
            }
            return std::chrono::ceil<std::chrono::milliseconds>(d).count();
          },
          [&](int64_t now) { b.complete(base + std::chrono::milliseconds(now)); });
      EXPECT_LE(maxTouchingRolling(spans, c.w), c.limit) << c.limit << " seed " << seed;
      EXPECT_GT(spans.size(), 20u * c.min_per_window) << c.limit << " seed " << seed;
      EXPECT_EQ(b.reserved(), 0u);
    }
  }
}

TEST(TokenBucket, ConcurrentReservationsWaitForAnAnswerAndStayWithinTheLimit) {
  // Requests sent as fast as the bucket lets them, up to its capacity (10) in flight at once,
  // against 100 per 10 s; the answers arrive late (up to 4 s) and unevenly. A request waits
  // for room, reservations included, sometimes until an answer frees a place.
  const Steady::time_point base{};
  const auto at = [&](int64_t ms) { return base + std::chrono::milliseconds(ms); };
  auto b = api::TokenBucket::forLimit(100, 10s, at(0));
  std::vector<Span> spans;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> delay(0, 4000);
  std::multimap<int64_t, int64_t> answers;  // answer time -> send time
  int64_t now = 0;
  size_t waited_for_answer = 0;
  while (now < 120000) {
    // Answers due by now arrive first.
    while (!answers.empty() && answers.begin()->first <= now) {
      b.complete(at(answers.begin()->first));
      spans.push_back({answers.begin()->second, answers.begin()->first});
      answers.erase(answers.begin());
    }
    const auto d = b.tryReserve(at(now));
    if (d.count() == 0) {
      answers.emplace(now + delay(rng), now);
      continue;
    }
    waited_for_answer += d == api::TokenBucket::kUntilAnAnswer ? 1 : 0;
    const int64_t next_answer = answers.empty() ? INT64_MAX : answers.begin()->first;
    const int64_t next_token = d == api::TokenBucket::kUntilAnAnswer
                                   ? INT64_MAX
                                   : now + std::chrono::ceil<std::chrono::milliseconds>(d).count();
    ASSERT_LT(std::min(next_answer, next_token), INT64_MAX);
    now = std::min(next_answer, next_token);
  }
  EXPECT_LE(maxTouchingRolling(spans, 10000), 100u);
  EXPECT_GT(spans.size(), 300u);
  EXPECT_GT(waited_for_answer, 0u);
}

TEST(WindowBudget, ARequestAnsweredAfterTheTopOfTheHourCountsInTheNewHour) {
  api::WindowBudget b(3, 3600s, {});
  const int64_t hour = 1795000000000 - 1795000000000 % 3600000;
  ASSERT_TRUE(b.tryTake(hour + 10));
  ASSERT_TRUE(b.tryTake(hour + 20));
  auto late = b.tryReserve(hour + 3599900);  // sent 100 ms before the top of the hour
  ASSERT_TRUE(late);
  ASSERT_EQ(*late, std::nullopt);
  EXPECT_EQ(b.used(hour + 3600000), 1u);  // still in flight: it touches the next hour
  b.complete(hour + 3600200);             // answered 200 ms into the next hour
  EXPECT_EQ(b.used(hour + 3600300), 1u);
  size_t taken = 0;
  for (;;) {
    auto r = b.tryTake(hour + 3600300);
    ASSERT_TRUE(r);
    if (r->has_value()) {
      EXPECT_EQ(**r, hour + 7200000);
      break;
    }
    ++taken;
  }
  EXPECT_EQ(taken, 2u);  // the new hour holds 3: the late answer and two more
  // Cancelled (never sent) requests count where they were charged, and nowhere later.
  auto unsent = b.tryReserve(hour + 7200000 - 1);
  ASSERT_TRUE(unsent);
  b.cancel();
  EXPECT_EQ(b.used(hour + 7200000), 0u);
  EXPECT_EQ(b.inFlight(), 0u);
}

TEST(WindowBudget, ChargedAtTheAnswerNoFixedWindowTouchesMoreThanTheLimit) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const int64_t w = 2000;
    api::WindowBudget b(8, std::chrono::seconds(w / 1000), {});
    const int64_t t0 = 1795000000000 - 1795000000000 % 3600000;
    auto spans = sequentialClient(
        t0, 30 * w, 600, seed,
        [&](int64_t now) -> int64_t {
          auto r = b.tryReserve(now);
          EXPECT_TRUE(r);
          return r && r->has_value() ? **r - now : 0;
        },
        [&](int64_t now) { b.complete(now); });
    EXPECT_LE(maxTouchingFixed(spans, w), 8u) << "seed " << seed;
    EXPECT_GT(spans.size(), 30u * 6u) << "seed " << seed;
  }
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
