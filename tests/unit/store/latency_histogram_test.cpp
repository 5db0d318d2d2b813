// LatencyHistogram (psa/store/latency_histogram.h): exact below 16 us, within its 6.25 % bucket
// error above, and a percentile is an upper bound of the values it covers.
#include "psa/store/latency_histogram.h"

#include <gtest/gtest.h>

namespace psa {
namespace {

TEST(LatencyHistogram, EmptyReadsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(0.5), 0u);
  EXPECT_EQ(h.percentile(0.99), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < 16; ++v) {
    h.record(v);
  }
  EXPECT_EQ(h.count(), 16u);
  EXPECT_EQ(h.percentile(1.0), 15u);
  EXPECT_EQ(h.percentile(0.5), 7u);
}

TEST(LatencyHistogram, PercentilesAreUpperBoundsWithinTheBucketError) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100'000; ++v) {
    h.record(v);
  }
  EXPECT_EQ(h.count(), 100'000u);
  for (const double p : {0.5, 0.9, 0.99, 1.0}) {
    const auto exact = static_cast<double>(static_cast<uint64_t>(p * 99'999) + 1);
    const auto got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(got, exact * 1.0625) << p;
  }
}

TEST(LatencyHistogram, HugeValuesLandInTheLastBuckets) {
  LatencyHistogram h;
  h.record(UINT64_MAX);
  EXPECT_GE(h.percentile(1.0), uint64_t{1} << 63);
}

}  // namespace
}  // namespace psa
