// The audit trail survives SIGKILL with the records it describes: a process that appends and
// delivers from several threads is killed again and again (store_crash_child); afterwards the
// hash chain verifies and the aggregated "records.accepted" / "records.delivered" counts equal
// the records actually committed, although every run was killed before its 10 s aggregation
// window ended.
#include <gtest/gtest.h>
#include <signal.h>

#include <random>

#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::store {
namespace {

using namespace std::chrono_literals;

TEST(AuditCrash, CountsAndChainSurviveRepeatedSigkill) {
  psa::test::TempDir dir("psa-audit-crash");
  const auto report = dir / "acked.txt";
  std::mt19937 rng(std::random_device{}());
  constexpr int kRounds = 8;
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = psa::test::readFile(report).size();
    psa::test::Process::Options po;
    po.argv = {psa::test::binary("store_crash_child").string(), dir.path().string(), "3",
               report.string()};
    po.stdout_file = dir / ("child-" + std::to_string(round) + ".log");
    psa::test::Process child(std::move(po));
    const size_t want = before + 2000 + rng() % 20000;  // bytes of report: some records
    ASSERT_TRUE(psa::test::waitFor(
        [&] { return psa::test::readFile(report).size() >= want || !child.running(); }, 30s))
        << "round " << round;
    ASSERT_TRUE(child.running()) << psa::test::readFile(po.stdout_file);
    child.signal(SIGKILL);
    ASSERT_TRUE(child.wait(10s).has_value());
  }

  StoreOptions o;
  o.db_path = dir / "queue.db";
  o.key_file = dir / "queue.key";
  o.retain_delivered = std::chrono::hours(1);  // as the child: delivered rows stay countable
  {
    auto store = SqliteStore::open(o);
    ASSERT_TRUE(store.ok()) << store.error().describe();
    (*store)->close();  // flushes the counts the last killed run had saved
  }
  o.read_only = true;
  auto ro = SqliteStore::open(o);
  ASSERT_TRUE(ro.ok()) << ro.error().describe();
  auto stats = (*ro)->stats();
  ASSERT_TRUE(stats.ok());
  auto entries = (*ro)->auditEntries(0, 1'000'000);
  ASSERT_TRUE(entries.ok());
  uint64_t accepted = 0;
  uint64_t delivered = 0;
  for (const auto& e : *entries) {
    if (e.action == "records.accepted") {
      accepted += static_cast<uint64_t>(json::parse(e.detail)->getInt("count"));
    } else if (e.action == "records.delivered") {
      delivered += static_cast<uint64_t>(json::parse(e.detail)->getInt("count"));
    }
  }
  const uint64_t rows = stats->pending + stats->delivered_retained;
  std::printf("audit crash rounds=%d records=%llu delivered=%llu audit_entries=%zu\n", kRounds,
              static_cast<unsigned long long>(rows),
              static_cast<unsigned long long>(stats->delivered_retained), entries->size());
  EXPECT_GT(rows, 100u);
  EXPECT_EQ(accepted, rows) << "records.accepted counts lost in a crash";
  EXPECT_EQ(delivered, stats->delivered_retained) << "records.delivered counts lost in a crash";
  auto v = (*ro)->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << "seq " << v->first_bad_seq << ": " << v->problem;
}

}  // namespace
}  // namespace psa::store
