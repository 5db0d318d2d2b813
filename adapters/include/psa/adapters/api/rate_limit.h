// Client-side rate limiting for the REST/FHIR pollers: a token bucket sized from a vendor's
// documented "N requests per W" limit, and a fixed-window budget (top-of-hour, UTC day) that is
// persisted so a restart never spends a window twice. Pure time arithmetic: callers pass the
// current time, so tests drive them without sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "psa/store/result.h"

namespace psa::adapters::api {

/// A token bucket: holds at most `capacity` tokens and gains `rate_per_s` per second. Every
/// request takes one token. In any interval of length W it admits at most
/// `capacity + rate_per_s * W` requests (plus the tokens it started with). Not thread-safe.
class TokenBucket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  TokenBucket(double capacity, double rate_per_s, double initial_tokens, TimePoint now);

  /// A bucket that can never exceed `limit` requests in any rolling `window`: capacity
  /// C = max(1, limit/10) and rate r = (limit - C) / window, so C + r*W = limit. It starts
  /// empty, so requests made just before a restart and just after it still fit in one window.
  /// `limit` must be >= 1 and `window` > 0 (else a 1-token, 1/s bucket is returned).
  static TokenBucket forLimit(uint64_t limit, std::chrono::milliseconds window, TimePoint now);

  /// Takes one token when one is available at `now` and returns zero; otherwise takes nothing
  /// and returns how long until a token will be available.
  std::chrono::nanoseconds tryTake(TimePoint now);

  /// Tokens available at `now` (after refill).
  double available(TimePoint now);

  double capacity() const { return capacity_; }
  double ratePerSecond() const { return rate_; }

 private:
  void refill(TimePoint now);

  double capacity_;
  double rate_;
  double tokens_;
  TimePoint last_;
};

/// At most `limit` requests per fixed wall-clock window aligned to the Unix epoch (3600 s =
/// each clock hour, 86400 s = each UTC day). With a state file, the count survives restarts:
/// it is persisted (tmp + fsync + rename) in blocks of `reserve` requests ahead of use, so a
/// crash can only over-count (waste at most `reserve` requests), never under-count.
/// Not thread-safe.
class WindowBudget {
 public:
  /// `state_file` empty = in memory only.
  WindowBudget(uint64_t limit, std::chrono::seconds window, std::filesystem::path state_file,
               uint64_t reserve = 16);

  /// Reads the state file if it exists. Errors: Errc::io (unreadable), Errc::corrupt (not a
  /// budget file) — the caller may delete it and start over, which is only safe after a window.
  Status load();

  /// Takes one request of the window containing `now_ms`. Returns nullopt when taken, else the
  /// Unix ms at which the next window opens (nothing taken). Errors: Errc::io when the state
  /// file cannot be written (nothing taken: we never spend what we could not record).
  Result<std::optional<int64_t>> tryTake(int64_t now_ms);

  /// Requests counted in the window containing `now_ms`.
  uint64_t used(int64_t now_ms) const;
  uint64_t limit() const { return limit_; }

 private:
  Status persist(int64_t window_start, uint64_t reserved);

  uint64_t limit_;
  int64_t window_ms_;
  std::filesystem::path file_;
  uint64_t reserve_;
  int64_t window_start_ = -1;
  uint64_t used_ = 0;
  uint64_t reserved_ = 0;  ///< persisted upper bound of used_ in window_start_
};

}  // namespace psa::adapters::api
