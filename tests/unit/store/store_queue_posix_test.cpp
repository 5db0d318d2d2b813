// A failed acknowledgement commit (every write refused with EFBIG through RLIMIT_FSIZE, as on a
// full disk) leaves the records leasable again without a restart. POSIX: the resource limit is
// how a test makes every write fail here.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>

#include "psa/store/sqlite_store.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store {
namespace {

using namespace std::chrono_literals;
using testing::ackSync;
using testing::appendOne;
using testing::batchOf;
using testing::deadSync;
using testing::leaseOk;
using testing::makeRecord;
using testing::ManualClock;
using testing::nackSync;
using testing::openOk;
using testing::optionsIn;
using testing::releaseSync;
using testing::seqsOf;

// A commit of acks that fails (here every file write fails with EFBIG, as on a full disk)
// leaves the records queued, and they must be leased again without a restart (found by the
// chaos harness: the lease cursor had already passed them, so they stayed pending for good).
TEST(StoreQueue, FailedAckCommitLeavesTheRecordsLeasableAgain) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  for (int i = 0; i < 3; ++i) {
    appendOne(*store, "record " + std::to_string(i));
  }
  const auto leased = seqsOf(leaseOk(*store, 10));
  ASSERT_EQ(leased.size(), 3u);
  EXPECT_TRUE(leaseOk(*store, 10).empty());

  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* previous = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tiny = old;
  tiny.rlim_cur = 1;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &tiny), 0);
  const Status st = ackSync(*store, leased);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::full) || st.error().is(Errc::io)) << st.error().describe();

  const auto again = seqsOf(leaseOk(*store, 10));
  EXPECT_EQ(again, leased);
  ASSERT_TRUE(ackSync(*store, again).ok());
  EXPECT_EQ(store->stats()->pending, 0u);
}

}  // namespace
}  // namespace psa::store
