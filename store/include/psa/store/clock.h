// Clock: injectable wall and monotonic time, so tests can control expiry and back-off.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>

namespace psa {

/// Source of time. The system clock is the default; tests inject a manual one.
/// Thread-safe: implementations must allow calls from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Wall-clock time (for timestamps in records and documents).
  virtual std::chrono::system_clock::time_point now() const = 0;
  /// Monotonic time (for timeouts and back-off).
  virtual std::chrono::steady_clock::time_point steady() const = 0;

  /// Milliseconds since the Unix epoch.
  int64_t nowMs() const;

  /// The process-wide real clock.
  static std::shared_ptr<const Clock> system();
};

using ClockPtr = std::shared_ptr<const Clock>;

/// The UTC calendar fields of a Unix time in seconds (what gmtime_r fills in; tm_wday and
/// tm_yday included), computed without the C library, so every OS gives the same answer.
std::tm utcCalendar(int64_t unix_s);
/// The inverse (timegm): fields are taken as UTC and may be out of range (normalised).
int64_t unixFromUtcCalendar(const std::tm& tm);

/// RFC 3339 UTC with milliseconds: 2026-11-25T20:44:20.123Z.
std::string formatRfc3339(int64_t unix_ms);
/// Parses RFC 3339 (Z or ±hh:mm offset, optional fraction). Returns false on bad input.
bool parseRfc3339(std::string_view text, int64_t& unix_ms);

}  // namespace psa
