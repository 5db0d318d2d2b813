// Client-side rate limiting for the REST/FHIR pollers: a token bucket sized from a vendor's
// documented "N requests per W" limit, and a fixed-window budget (top-of-hour, UTC day) that is
// persisted so a restart never spends a window twice. Pure time arithmetic: callers pass the
// current time, so tests drive them without sleeping.
//
// When does a request count? The server counts it at an instant we cannot see: when it arrived
// there, or when the server answered it (gateways differ), and network jitter moves either.
// All we know is that the instant lies between our send and the arrival of the answer. Counting
// at the send alone is therefore not safe: a request sent at 59:59.9 whose answer arrives at
// 00:00.2 may be counted by the server in the new hour, which we would then spend in full
// (limit + 1); and requests sent in a burst can be counted by the server inside a later
// window than the one we charged. Counting only at the answer is not safe either: requests
// still in flight are counted by nobody, so concurrent senders could all start at once.
// So both limiters *reserve at send and stamp at arrival*: a request holds its place from the
// moment it is admitted (tryReserve) until its answer, failure or timeout comes back
// (complete), and only then is charged, at that later instant. Every window — rolling or
// fixed — then holds at most `limit` requests whose [send, answer] interval touches it, which
// bounds what the server counts whichever instant in that interval it uses. The proofs are next
// to the code (rate_limit.cpp).
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
///
/// Requests that take time use tryReserve() when sent and complete() when answered: the token
/// is held from the send and taken at the answer, so at most `capacity + rate_per_s * W`
/// requests have a [send, answer] interval that touches any interval of length W.
class TokenBucket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  /// tryReserve()'s answer when only an answer to a request in flight can free a token (the
  /// bucket is full of reserved tokens): waiting for time alone would not help.
  static constexpr std::chrono::nanoseconds kUntilAnAnswer = std::chrono::nanoseconds::max();

  TokenBucket(double capacity, double rate_per_s, double initial_tokens, TimePoint now);

  /// A bucket that can never exceed `limit` requests in any rolling `window`: capacity
  /// C = max(1, limit/10) and rate r = (limit - C) / window, so C + r*W = limit. It starts
  /// empty, so requests made just before a restart and just after it still fit in one window.
  /// `limit` must be >= 1 and `window` > 0 (else a 1-token, 1/s bucket is returned).
  static TokenBucket forLimit(uint64_t limit, std::chrono::milliseconds window, TimePoint now);

  /// Takes one token when one is available at `now` and returns zero; otherwise takes nothing
  /// and returns how long until a token will be available.
  std::chrono::nanoseconds tryTake(TimePoint now);

  /// Tokens available at `now` (after refill), reserved ones included.
  double available(TimePoint now);

  /// Reserves one token for a request sent at `now` when an unreserved one is available and
  /// returns zero; otherwise reserves nothing and returns how long until one will be, or
  /// kUntilAnAnswer. Every reservation ends in exactly one complete() or cancel().
  std::chrono::nanoseconds tryReserve(TimePoint now);
  /// The answer to a reserved request arrived (or the request failed) at `now`: its token is
  /// taken now. Never makes the bucket negative (a reserved token stays in the bucket).
  void complete(TimePoint now);
  /// A reserved request was never sent: the reservation is dropped, nothing is taken.
  void cancel();
  /// Tokens available and not reserved at `now`.
  double unreserved(TimePoint now);
  uint64_t reserved() const { return reserved_; }

  double capacity() const { return capacity_; }
  double ratePerSecond() const { return rate_; }

 private:
  void refill(TimePoint now);

  double capacity_;
  double rate_;
  double tokens_;
  TimePoint last_;
  uint64_t reserved_ = 0;  ///< requests sent and not yet answered
};

/// At most `limit` requests per fixed wall-clock window aligned to the Unix epoch (3600 s =
/// each clock hour, 86400 s = each UTC day). With a state file, the count survives restarts:
/// it is persisted (tmp + fsync + rename) in blocks of `reserve` requests ahead of use, so a
/// crash can only over-count (waste at most `reserve` requests), never under-count.
///
/// Requests that take time use tryReserve() when sent and complete() when answered: a request
/// counts in the window it was sent in and in every later window it is still in flight in, so
/// one answered after the top of the hour counts in the new hour too.
/// Not thread-safe.
class WindowBudget {
 public:
  /// `state_file` empty = in memory only.
  WindowBudget(uint64_t limit, std::chrono::seconds window, std::filesystem::path state_file,
               uint64_t reserve = 16);

  /// Reads the state file if it exists. Errors: Errc::io (unreadable), Errc::corrupt (not a
  /// budget file) — the caller may delete it and start over, which is only safe after a window.
  Status load();

  /// Takes one request of the window containing `now_ms` (sent and answered at once). Returns
  /// nullopt when taken, else the Unix ms at which the next window opens (nothing taken).
  /// Errors: Errc::io when the state file cannot be written (nothing taken: we never spend what
  /// we could not record).
  Result<std::optional<int64_t>> tryTake(int64_t now_ms);

  /// Like tryTake(), for a request sent at `now_ms` whose answer is still to come: it counts
  /// now and in every window that opens before complete(). Every reservation ends in exactly
  /// one complete() (sent) or cancel() (never sent; it still counts where it was charged).
  Result<std::optional<int64_t>> tryReserve(int64_t now_ms);
  /// The answer to a reserved request arrived (or the request failed) at `now_ms`.
  void complete(int64_t now_ms);
  void cancel();

  /// Requests counted in the window containing `now_ms` (requests in flight count in every
  /// window they touch).
  uint64_t used(int64_t now_ms) const;
  uint64_t limit() const { return limit_; }
  uint64_t inFlight() const { return in_flight_; }

 private:
  Status persist(int64_t window_start, uint64_t reserved);
  int64_t windowOf(int64_t now_ms) const;
  /// What a window opening after window_start_ starts with: the requests still in flight, plus
  /// one a previous process may have had in flight when it stopped (rate_limit.cpp says why).
  uint64_t carriedInto(int64_t start) const;
  void roll(int64_t now_ms);

  uint64_t limit_;
  int64_t window_ms_;
  std::filesystem::path file_;
  uint64_t reserve_;
  int64_t window_start_ = -1;
  uint64_t used_ = 0;
  uint64_t reserved_ = 0;       ///< persisted upper bound of used_ in window_start_
  uint64_t in_flight_ = 0;      ///< reserved and not yet completed or cancelled
  bool loaded_window_ = false;  ///< window_start_ came from the state file
};

}  // namespace psa::adapters::api
