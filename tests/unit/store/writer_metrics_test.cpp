// SqliteStore::writerMetrics(): each committed round adds one commit-latency observation and
// one group-size observation counting the records it appended or settled.
#include <gtest/gtest.h>

#include "store_test_helpers.h"

namespace psa::store {
namespace {

using testing::ackSync;
using testing::appendOne;
using testing::batchOf;
using testing::leaseOk;
using testing::makeRecord;
using testing::openOk;
using testing::optionsIn;
using testing::seqsOf;

// The observations recorded between two snapshots that fell in (lower, upper].
uint64_t between(const HistogramSnapshot& before, const HistogramSnapshot& after, uint64_t lower,
                 uint64_t upper) {
  auto at = [](const HistogramSnapshot& s, uint64_t bound) {
    for (size_t i = 0; i < s.bounds.size(); ++i) {
      if (s.bounds[i] == bound) {
        return s.cumulative[i];
      }
    }
    ADD_FAILURE() << "no bound " << bound;
    return uint64_t{0};
  };
  return (at(after, upper) - at(before, upper)) - (at(after, lower) - at(before, lower));
}

TEST(WriterMetrics, CommitsRecordGroupSizesAndLatency) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  const WriterMetrics before = store->writerMetrics();

  std::vector<Record> three;
  for (int i = 0; i < 3; ++i) {
    three.push_back(makeRecord("r" + std::to_string(i)));
  }
  ASSERT_TRUE(store->appendSync(batchOf(std::move(three))).ok());
  appendOne(*store, "r3");
  const auto leased = leaseOk(*store, 10);
  ASSERT_EQ(leased.size(), 4u);
  ASSERT_TRUE(ackSync(*store, seqsOf(leased)).ok());

  const WriterMetrics after = store->writerMetrics();
  // Maintenance may commit rounds of its own (zero records) in between.
  const uint64_t commits = after.group_records.count - before.group_records.count;
  EXPECT_GE(commits, 3u);
  EXPECT_EQ(after.group_records.sum - before.group_records.sum, 3u + 1u + 4u);
  EXPECT_EQ(between(before.group_records, after.group_records, 2, 5), 2u);  // the 3 and the 4
  EXPECT_GE(after.group_records.cumulative.front() - before.group_records.cumulative.front(), 1u);
  // A latency observation per commit (maintenance may add one between the two readings),
  // cumulative counts never above the count.
  EXPECT_GE(after.commit_us.count - before.commit_us.count, 3u);
  ASSERT_FALSE(after.commit_us.cumulative.empty());
  for (size_t i = 1; i < after.commit_us.cumulative.size(); ++i) {
    EXPECT_LE(after.commit_us.cumulative[i - 1], after.commit_us.cumulative[i]);
  }
  EXPECT_LE(after.commit_us.cumulative.back(), after.commit_us.count);
}

}  // namespace
}  // namespace psa::store
