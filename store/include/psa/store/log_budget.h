// A budget of lines per time window, for anything that must not let a flood of bad input
// flood its output (warn lines, audit entries): the lines over budget are counted and
// reported with the next line allowed.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace psa {

/// At most `per_window` lines per `window` (a fixed window that starts at the first line
/// after the previous one ended). Thread-safe.
class LogBudget {
 public:
  explicit LogBudget(int per_window,
                     std::chrono::steady_clock::duration window = std::chrono::seconds(1))
      : per_window_(per_window), window_(window) {}

  /// True if a line may be written; `suppressed` then gets the lines refused since the last
  /// one allowed (and is left alone otherwise).
  bool take(uint64_t& suppressed) {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= window_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= per_window_) {
      ++dropped_;
      return false;
    }
    ++used_;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  const int per_window_;
  const std::chrono::steady_clock::duration window_;
  int used_ = 0;
  uint64_t dropped_ = 0;
  std::chrono::steady_clock::time_point window_start_{};
};

}  // namespace psa
