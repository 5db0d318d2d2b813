// A lock-free histogram over fixed bucket bounds, read as Prometheus wants it: cumulative
// counts per upper bound ("le"), plus the sum and count of all observations. Unlike
// LatencyHistogram (log-linear buckets, read for percentiles), a bound here is exact: a value
// equal to a bound counts in that bound's bucket.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

namespace psa {

/// A reading of a BucketHistogram. `cumulative[i]` counts the observations <= `bounds[i]`;
/// `count` counts them all (the "+Inf" bucket). Units are the recorder's (µs, records, ...).
struct HistogramSnapshot {
  std::vector<uint64_t> bounds;      ///< ascending upper bounds
  std::vector<uint64_t> cumulative;  ///< same size as `bounds`
  uint64_t count = 0;
  uint64_t sum = 0;
};

/// Thread-safe: record() and snapshot() may run concurrently (relaxed counters; a snapshot may
/// miss the records in flight, but its buckets and count always agree).
class BucketHistogram {
 public:
  /// `bounds` must be ascending and distinct (a programming error otherwise; not checked).
  BucketHistogram(std::initializer_list<uint64_t> bounds)
      : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]()) {}

  void record(uint64_t v) {
    const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    buckets_[static_cast<size_t>(at)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
  }

  HistogramSnapshot snapshot() const {
    HistogramSnapshot s;
    s.bounds = bounds_;
    s.cumulative.reserve(bounds_.size());
    for (size_t i = 0; i < bounds_.size(); ++i) {
      s.count += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative.push_back(s.count);
    }
    s.count += buckets_[bounds_.size()].load(std::memory_order_relaxed);
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::vector<uint64_t> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, then the overflow
  std::atomic<uint64_t> sum_{0};
};

}  // namespace psa
