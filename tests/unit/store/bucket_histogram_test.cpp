// BucketHistogram (psa/store/bucket_histogram.h): cumulative counts per bound as Prometheus reads
// them; a value equal to a bound is in that bound's bucket, values past the last bound only in
// the count.
#include "psa/store/bucket_histogram.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace psa {
namespace {

TEST(BucketHistogram, EmptyReadsZeroForEveryBound) {
  const BucketHistogram h{1, 10, 100};
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.bounds, (std::vector<uint64_t>{1, 10, 100}));
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 0, 0}));
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum, 0u);
}

TEST(BucketHistogram, CountsAreCumulativeAndBoundsInclusive) {
  BucketHistogram h{1, 10, 100};
  for (const uint64_t v : {0, 1, 2, 10, 11, 100, 101, 5000}) {
    h.record(v);
  }
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 6}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_EQ(s.sum, 0u + 1 + 2 + 10 + 11 + 100 + 101 + 5000);
}

TEST(BucketHistogram, ConcurrentRecordsAreAllCounted) {
  BucketHistogram h{5, 50};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (uint64_t v = 0; v < 1000; ++v) {
        h.record(v % 100);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.count, 4000u);
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{4 * 10 * 6, 4 * 10 * 51}));
  EXPECT_EQ(s.sum, 4u * 10u * 4950u);
}

}  // namespace
}  // namespace psa
