// A lock-free latency histogram: log-linear buckets (16 per power of two, <= 6.25 % error)
// over microseconds, recorded from any thread and read for percentiles in status documents.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace psa {

/// Thread-safe: record() and the readers may run concurrently (relaxed counters; a reading is
/// a snapshot that may miss the records in flight).
class LatencyHistogram {
 public:
  void record(uint64_t us) {
    buckets_[index(us)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  /// Upper bound of the bucket holding the p-quantile (0 < p <= 1); 0 if empty.
  uint64_t percentile(double p) const {
    const uint64_t total = count();
    if (total == 0) {
      return 0;
    }
    const auto rank = static_cast<uint64_t>(p * static_cast<double>(total - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load(std::memory_order_relaxed);
      if (seen >= rank) {
        return upper(i);
      }
    }
    return upper(kBuckets - 1);
  }

 private:
  static constexpr size_t kSub = 16;
  static constexpr size_t kBuckets = 61 * kSub;
  static size_t index(uint64_t v) {
    if (v < kSub) {
      return static_cast<size_t>(v);
    }
    const int msb = 63 - __builtin_clzll(v);
    const size_t sub = static_cast<size_t>((v >> (msb - 4)) & (kSub - 1));
    return static_cast<size_t>(msb - 3) * kSub + sub;
  }
  static uint64_t upper(size_t i) {
    if (i < kSub) {
      return i;
    }
    const int msb = static_cast<int>(i / kSub) + 3;
    const uint64_t sub = i % kSub;
    return ((kSub + sub) << (msb - 4)) + ((uint64_t{1} << (msb - 4)) - 1);
  }
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
};

}  // namespace psa
