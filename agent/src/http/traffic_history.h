// Records in and out over the last hour, for the status page's chart and for rates: a fixed
// ring of samples, so memory does not grow with uptime. PHI-free (counts only).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "psa/store/json.h"

namespace psa::agent::http {

/// Records in (accepted by the store) and out (acknowledged by the cloud) over the last hour,
/// one point per sample; bounded (fixed capacity, no growth with uptime). Thread-safe: every
/// member may be called from any thread (one mutex).
class TrafficHistory {
 public:
  struct Point {
    int64_t at_ms;  ///< end of the interval (Unix ms)
    uint64_t in;    ///< records accepted by the store during the interval
    uint64_t out;   ///< records acknowledged by the cloud during the interval
  };

  /// `interval`: how often the owner calls sample() (reported in toJson()); `capacity`: the
  /// number of points kept (the oldest is dropped first; at least 1).
  explicit TrafficHistory(std::chrono::seconds interval = std::chrono::seconds(10),
                          size_t capacity = 360);

  /// Called every `interval` with the cumulative totals (e.g. store appended_total, link acked);
  /// stores the differences. The first call only sets the baseline (no point). A counter that
  /// went backwards (e.g. after a restart of the link) counts from 0.
  void sample(int64_t now_ms, uint64_t in_total, uint64_t out_total);

  /// The kept points, oldest first.
  std::vector<Point> points() const;

  /// Records per second over the last `window`, ending at the newest point (0 without points).
  /// Divides by the time the points in the window actually cover, so a young agent's rate is
  /// not diluted by time before its first sample.
  double inRate(std::chrono::seconds window) const;
  double outRate(std::chrono::seconds window) const;

  /// {"interval_s":10,"points":[[at_ms,in,out],...]}, oldest first.
  json::Value toJson() const;

 private:
  struct Slot {
    Point point;
    int64_t from_ms;  ///< start of the interval (the previous sample)
  };
  double rate(std::chrono::seconds window, uint64_t Point::*field) const;

  const std::chrono::seconds interval_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<Slot> ring_;  ///< grows to capacity_, then overwritten at next_
  size_t next_ = 0;
  bool has_baseline_ = false;
  int64_t last_ms_ = 0;
  uint64_t last_in_ = 0;
  uint64_t last_out_ = 0;
};

}  // namespace psa::agent::http
