// SqliteStore queue behaviour: appends, leases, acks, nacks, dead letters, dedupe, budget,
// watermarks, close. Real SQLite files in a temp dir.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <thread>

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

TEST(StoreQueue, OpenCreatesDatabaseAndKeyFile) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->openReport().created);
  EXPECT_TRUE(store->openReport().key_created);
  EXPECT_FALSE(store->openReport().recovered_from_corruption);
  EXPECT_TRUE(testing::isPrivateFile(dir / "queue.key"));
  const std::string key = testing::keyFileText(dir / "queue.key");
  EXPECT_NE(key.find("\nkey 1 "), std::string::npos);
  store.reset();
  auto again = openOk(optionsIn(dir));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->openReport().created);
  EXPECT_FALSE(again->openReport().key_created);
}

TEST(StoreQueue, AppendLeaseAckRoundTrip) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  Record r = makeRecord("MSH|^~\\&|A", Kind::appointment, "ecw");
  r.vendor = "eclinicalworks";
  r.format = "csv+json";
  r.received_at_ms = 1234;
  std::vector<Record> rs;
  rs.push_back(std::move(r));
  auto res = store->appendSync(batchOf(std::move(rs)));
  ASSERT_TRUE(res.ok()) << res.error().describe();
  ASSERT_EQ(res->records.size(), 1u);
  EXPECT_FALSE(res->records[0].duplicate);
  EXPECT_EQ(res->records[0].msg_id.size(), 26u);

  auto leased = leaseOk(*store, 10);
  ASSERT_EQ(leased.size(), 1u);
  const Record& got = leased[0].record;
  EXPECT_EQ(got.msg_id, res->records[0].msg_id);
  EXPECT_EQ(got.payload.reveal(), "MSH|^~\\&|A");
  EXPECT_EQ(got.source, "ecw");
  EXPECT_EQ(got.vendor, "eclinicalworks");
  EXPECT_EQ(got.kind, Kind::appointment);
  EXPECT_EQ(got.format, "csv+json");
  EXPECT_EQ(got.received_at_ms, 1234);
  EXPECT_EQ(leased[0].attempts, 0u);

  auto st = store->stats();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->pending, 1u);
  EXPECT_EQ(st->leased, 1u);
  EXPECT_EQ(st->by_kind[Kind::appointment].pending, 1u);
  EXPECT_EQ(st->by_kind[Kind::appointment].bytes, 10u);
  EXPECT_EQ(st->oldest_pending_ms, 1234);
  EXPECT_TRUE(leaseOk(*store, 10).empty()) << "an in-flight record is not leased twice";

  ASSERT_TRUE(ackSync(*store, seqsOf(leased)).ok());
  st = store->stats();
  EXPECT_EQ(st->pending, 0u);
  EXPECT_EQ(st->leased, 0u);
  EXPECT_EQ(st->pending_bytes, 0u);
  EXPECT_EQ(st->delivered_total, 1u);
  EXPECT_EQ(st->oldest_pending_ms, 0);
  EXPECT_TRUE(leaseOk(*store, 10).empty());
  auto shown = store->show(got.msg_id);
  ASSERT_FALSE(shown.ok());
  EXPECT_TRUE(shown.error().is(Errc::not_found));
}

TEST(StoreQueue, ReceivedAtDefaultsToNow) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto o = optionsIn(dir);
  o.clock = clock;
  auto store = openOk(o);
  appendOne(*store, "x");
  auto l = leaseOk(*store, 1);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].record.received_at_ms, clock->nowMs());
}

TEST(StoreQueue, FifoOrderAndMsgIdOrderMatchSeqAcrossConcurrentProducers) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  std::vector<std::thread> producers;
  for (int t = 0; t < 8; ++t) {
    producers.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i) {
        appendOne(*store, "p" + std::to_string(t) + "-" + std::to_string(i));
      }
    });
  }
  for (auto& p : producers) {
    p.join();
  }
  std::vector<Leased> all;
  while (true) {
    auto l = leaseOk(*store, 7);
    if (l.empty()) {
      break;
    }
    for (auto& x : l) {
      all.push_back(std::move(x));
    }
  }
  ASSERT_EQ(all.size(), 200u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].seq, all[i].seq);
    EXPECT_LT(all[i - 1].record.msg_id, all[i].record.msg_id);
  }
  // Each producer's own records keep their order.
  std::map<std::string, int> last;
  for (const auto& l : all) {
    const std::string& p = l.record.payload.reveal();
    const std::string producer = p.substr(0, p.find('-'));
    const int i = std::stoi(p.substr(p.find('-') + 1));
    auto it = last.find(producer);
    if (it != last.end()) {
      EXPECT_LT(it->second, i);
    }
    last[producer] = i;
  }
  auto st = store->stats();
  EXPECT_EQ(st->appended_total, 200u);
  EXPECT_LT(st->commits_total, 200u) << "concurrent appends share group commits";
}

TEST(StoreQueue, NackMakesRecordDeliverableAfterRetryTime) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto o = optionsIn(dir);
  o.clock = clock;
  auto store = openOk(o);
  const std::string a = appendOne(*store, "a");
  const std::string b = appendOne(*store, "b");
  auto l = leaseOk(*store, 1);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].record.msg_id, a);
  ASSERT_TRUE(nackSync(*store, l[0].seq, 5000ms, "puback 0x97 quota exceeded").ok());

  auto info = store->show(a);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, "retry");
  EXPECT_EQ(info->attempts, 1u);
  EXPECT_EQ(info->reason, "puback 0x97 quota exceeded");
  EXPECT_EQ(info->next_attempt_ms, clock->nowMs() + 5000);
  EXPECT_EQ(store->stats()->retry, 1u);

  auto next = leaseOk(*store, 10);
  ASSERT_EQ(next.size(), 1u) << "the retry is not due yet; only b";
  EXPECT_EQ(next[0].record.msg_id, b);
  EXPECT_TRUE(leaseOk(*store, 10).empty());

  clock->advance(5000ms);
  auto due = leaseOk(*store, 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].record.msg_id, a);
  EXPECT_EQ(due[0].attempts, 1u);
  EXPECT_EQ(due[0].record.payload.reveal(), "a");
  EXPECT_EQ(store->show(a)->state, "leased");

  // A second nack counts another attempt; an ack then clears the retry counter.
  ASSERT_TRUE(nackSync(*store, due[0].seq, 0ms, "again").ok());
  auto again = leaseOk(*store, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 2u);
  ASSERT_TRUE(ackSync(*store, {again[0].seq, next[0].seq}).ok());
  auto st = store->stats();
  EXPECT_EQ(st->retry, 0u);
  EXPECT_EQ(st->pending, 0u);
}

TEST(StoreQueue, NackOfUnknownSeqIsNotFound) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  auto st = nackSync(*store, 42, 0ms, "x");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::not_found));
  EXPECT_EQ(st.error().message, "seq 42 is not queued");
  auto d = deadSync(*store, 42, "x");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.error().is(Errc::not_found));
}

TEST(StoreQueue, DeadLetterRetryAndPurge) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  const std::string a = appendOne(*store, "a", std::nullopt, Kind::billing);
  const std::string b = appendOne(*store, "b", std::nullopt, Kind::billing);
  auto l = leaseOk(*store, 2);
  ASSERT_EQ(l.size(), 2u);
  ASSERT_TRUE(deadSync(*store, l[0].seq, "puback 0x99 payload format invalid").ok());
  ASSERT_TRUE(deadSync(*store, l[1].seq, "rejected").ok());

  auto st = store->stats();
  EXPECT_EQ(st->pending, 0u);
  EXPECT_EQ(st->dead, 2u);
  EXPECT_EQ(st->by_kind[Kind::billing].dead, 2u);
  EXPECT_EQ(st->leased, 0u);
  auto dead = store->list(ListFilter::dead, 0, 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_EQ((*dead)[0].msg_id, a);
  EXPECT_EQ((*dead)[0].state, "dead");
  EXPECT_EQ((*dead)[0].reason, "puback 0x99 payload format invalid");
  EXPECT_GT((*dead)[0].dead_at_ms, 0);
  EXPECT_EQ((*dead)[0].size, 1u);
  EXPECT_TRUE(store->list(ListFilter::queued, 0, 10)->empty());
  auto revealed = store->reveal(a);
  ASSERT_TRUE(revealed.ok());
  EXPECT_EQ(revealed->reveal(), "a");

  ASSERT_TRUE(store->retryDead(a).ok());
  auto missing = store->retryDead(a);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.error().is(Errc::not_found));
  auto info = store->show(a);
  EXPECT_EQ(info->state, "pending");
  EXPECT_EQ(info->attempts, 0u);
  auto again = leaseOk(*store, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].record.msg_id, a) << "same msg_id after retry";
  EXPECT_EQ(again[0].record.payload.reveal(), "a");

  auto purged = store->purgeDead();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
  EXPECT_TRUE(store->show(b).error().is(Errc::not_found));
  EXPECT_EQ(store->stats()->dead, 0u);
}

TEST(StoreQueue, RetryAllDeadMovesEveryDeadLetter) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  for (int i = 0; i < 30; ++i) {
    appendOne(*store, "r" + std::to_string(i));
  }
  for (const auto& l : leaseOk(*store, 30)) {
    ASSERT_TRUE(deadSync(*store, l.seq, "bad").ok());
  }
  auto n = store->retryAllDead();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 30u);
  EXPECT_EQ(store->stats()->dead, 0u);
  EXPECT_EQ(leaseOk(*store, 100).size(), 30u);
}

TEST(StoreQueue, IngestDeadLettersAreStoredWithReason) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  AppendBatch b;
  b.records.push_back(makeRecord("good"));
  b.dead.push_back({makeRecord("bad hl7"), "MSH-9 missing at byte 120"});
  auto res = store->appendSync(std::move(b));
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->dead_ids.size(), 1u);
  auto info = store->show(res->dead_ids[0]);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, "dead");
  EXPECT_EQ(info->reason, "MSH-9 missing at byte 120");
  EXPECT_EQ(store->reveal(res->dead_ids[0])->reveal(), "bad hl7");
  EXPECT_EQ(store->stats()->dead, 1u);
  EXPECT_EQ(store->stats()->pending, 1u);
}

TEST(StoreQueue, ReleaseAllReturnsLeasedRecordsInOrder) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(appendOne(*store, "r" + std::to_string(i)));
  }
  auto first = leaseOk(*store, 2);
  auto second = leaseOk(*store, 2);
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].record.msg_id, ids[2]);
  ASSERT_TRUE(ackSync(*store, {first[0].seq}).ok());
  ASSERT_TRUE(releaseSync(*store).ok());
  EXPECT_EQ(store->stats()->leased, 0u);
  auto again = leaseOk(*store, 10);
  ASSERT_EQ(again.size(), 5u);
  for (size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].record.msg_id, ids[i + 1]) << "same ids, FIFO";
  }
}

TEST(StoreQueue, LeasedRecordsArePendingAfterReopen) {
  psa::test::TempDir dir;
  std::string id;
  {
    auto store = openOk(optionsIn(dir));
    id = appendOne(*store, "x");
    ASSERT_EQ(leaseOk(*store, 1).size(), 1u);
  }
  auto store = openOk(optionsIn(dir));
  EXPECT_EQ(store->openReport().pending, 1u);
  auto l = leaseOk(*store, 1);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].record.msg_id, id);
}

TEST(StoreQueue, RetainDeliveredKeepsRowsThenPrunes) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto o = optionsIn(dir);
  o.clock = clock;
  o.retain_delivered = std::chrono::hours(1);
  auto store = openOk(o);
  const std::string id = appendOne(*store, "kept");
  auto l = leaseOk(*store, 1);
  ASSERT_TRUE(ackSync(*store, seqsOf(l)).ok());
  auto st = store->stats();
  EXPECT_EQ(st->pending, 0u);
  EXPECT_EQ(st->delivered_retained, 1u);
  auto info = store->show(id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, "delivered");
  EXPECT_TRUE(leaseOk(*store, 1).empty());
  EXPECT_TRUE(store->list(ListFilter::queued, 0, 10)->empty());
  // A receipt for an already delivered record changes nothing.
  EXPECT_EQ(*store->ackByMsgId({id}), 0u);

  clock->advance(std::chrono::hours(2));
  ASSERT_TRUE(psa::test::waitFor([&] { return store->stats()->delivered_retained == 0; }, 10s));
  EXPECT_TRUE(store->show(id).error().is(Errc::not_found));
}

TEST(StoreQueue, AckByMsgIdForReceiptMode) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  const std::string a = appendOne(*store, "a");
  const std::string b = appendOne(*store, "b");
  ASSERT_EQ(leaseOk(*store, 2).size(), 2u);
  auto n = store->ackByMsgId({a, "01ZZZZZZZZZZZZZZZZZZZZZZZZ"});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  auto st = store->stats();
  EXPECT_EQ(st->pending, 1u);
  EXPECT_EQ(st->leased, 1u);
  EXPECT_EQ(store->show(b)->state, "leased");
}

TEST(StoreQueue, DedupeReturnsOriginalMsgIdWithinWindow) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto o = optionsIn(dir);
  o.clock = clock;
  o.dedupe_window = std::chrono::hours(24);
  auto store = openOk(o);
  const std::string first = appendOne(*store, "msg", "sender|ctrl-1");

  // Same identity in a later batch, twice within one batch, and from concurrent producers that
  // land in the same group commit.
  AppendBatch b;
  for (int i = 0; i < 2; ++i) {
    Record r = makeRecord("msg");
    r.dedupe_identity = Sensitive<std::string>("sender|ctrl-1");
    b.records.push_back(std::move(r));
  }
  Record other = makeRecord("other");
  other.dedupe_identity = Sensitive<std::string>("sender|ctrl-2");
  b.records.push_back(std::move(other));
  Record twin = makeRecord("other");
  twin.dedupe_identity = Sensitive<std::string>("sender|ctrl-2");
  b.records.push_back(std::move(twin));
  auto res = store->appendSync(std::move(b));
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->records.size(), 4u);
  EXPECT_TRUE(res->records[0].duplicate);
  EXPECT_EQ(res->records[0].msg_id, first);
  EXPECT_TRUE(res->records[1].duplicate);
  EXPECT_EQ(res->records[1].msg_id, first);
  EXPECT_FALSE(res->records[2].duplicate);
  EXPECT_TRUE(res->records[3].duplicate);
  EXPECT_EQ(res->records[3].msg_id, res->records[2].msg_id);

  std::vector<std::promise<Result<AppendResult>>> ps(8);
  for (auto& p : ps) {
    Record r = makeRecord("c");
    r.dedupe_identity = Sensitive<std::string>("sender|ctrl-3");
    std::vector<Record> rs;
    rs.push_back(std::move(r));
    store->append(batchOf(std::move(rs)),
                  [&p](Result<AppendResult> r) { p.set_value(std::move(r)); });
  }
  std::set<std::string> ids;
  int originals = 0;
  for (auto& p : ps) {
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok());
    ids.insert(r->records[0].msg_id);
    originals += r->records[0].duplicate ? 0 : 1;
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(originals, 1);

  auto st = store->stats();
  EXPECT_EQ(st->pending, 3u);
  EXPECT_EQ(st->duplicates_total, 10u);

  // The original being delivered does not matter; the window does.
  ASSERT_TRUE(ackSync(*store, seqsOf(leaseOk(*store, 10))).ok());
  clock->advance(std::chrono::hours(23));
  auto dup = appendOne(*store, "msg", "sender|ctrl-1");
  EXPECT_EQ(dup, first);
  clock->advance(std::chrono::hours(2));
  const std::string fresh = appendOne(*store, "msg", "sender|ctrl-1");
  EXPECT_NE(fresh, first) << "outside the window the identity is new again";
  EXPECT_EQ(appendOne(*store, "msg", "sender|ctrl-1"), fresh);
}

// A busy feed must not let the dedupe index eat the disk budget: past dedupe_max_entries the
// oldest identities go first (the window shortens), and the count survives a restart.
TEST(StoreQueue, DedupeIndexIsCappedOldestFirst) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  auto o = optionsIn(dir);
  o.clock = clock;
  o.dedupe_window = std::chrono::hours(24);
  o.dedupe_max_entries = 100;
  std::string oldest, newest;
  {
    auto store = openOk(o);
    for (int i = 0; i < 250; ++i) {
      const std::string id = appendOne(*store, "m", "sender|ctrl-" + std::to_string(i));
      (i == 0 ? oldest : newest) = id;
      clock->advance(std::chrono::milliseconds(1));  // ordered seen_at, no maintenance due
    }
    auto before = store->stats();
    EXPECT_EQ(before->dedupe_entries, 250u);
    EXPECT_EQ(before->dedupe_max_entries, 100u);
    EXPECT_EQ(before->dedupe_window_s, 0);

    clock->advance(std::chrono::seconds(61));  // next maintenance prunes down to the cap
    ASSERT_TRUE(psa::test::waitFor([&] { return store->stats()->dedupe_entries <= 100; }, 10s))
        << store->stats()->dedupe_entries;
    auto after = store->stats();
    EXPECT_EQ(after->dedupe_entries, 100u) << "only the excess goes";
    // Kept ctrl-150..249; the newest evicted (ctrl-149) was seen 61.1 s before the cut.
    EXPECT_EQ(after->dedupe_window_s, 61);
    EXPECT_EQ(appendOne(*store, "m", "sender|ctrl-249"), newest) << "recent identity still known";
    EXPECT_EQ(store->stats()->dedupe_entries, 100u);
    EXPECT_NE(appendOne(*store, "m", "sender|ctrl-0"), oldest) << "evicted identity is new again";
    EXPECT_EQ(store->stats()->dedupe_entries, 101u);
  }
  // The count is a stored counter; a database from before it is counted once at open.
  EXPECT_EQ(openOk(o)->stats()->dedupe_entries, 101u);
  {
    psa::store::testing::RawDb raw(dir / "queue.db");
    raw.exec("DELETE FROM counters WHERE name='dedupe'");
  }
  EXPECT_EQ(openOk(o)->stats()->dedupe_entries, 101u);
  // The default cap follows the disk budget.
  o.dedupe_max_entries = 0;
  o.max_bytes = 16u << 20;
  EXPECT_EQ(openOk(o)->stats()->dedupe_max_entries, (16u << 20) / 10 / 160);
}

TEST(StoreQueue, BudgetRefusesBatchThenAcceptsAfterAcks) {
  psa::test::TempDir dir;
  auto o = optionsIn(dir);
  o.max_bytes = 16u << 20;
  auto store = openOk(o);
  const std::string big(256 * 1024, 'x');
  size_t stored = 0;
  Error refusal;
  for (int i = 0; i < 200; ++i) {
    std::vector<Record> rs;
    rs.push_back(makeRecord(big));
    auto r = store->appendSync(batchOf(std::move(rs)));
    if (!r.ok()) {
      refusal = r.error();
      break;
    }
    ++stored;
  }
  ASSERT_TRUE(refusal.is(Errc::full)) << refusal.describe();
  EXPECT_NE(refusal.message.find("disk budget"), std::string::npos) << refusal.message;
  EXPECT_GT(stored, 10u);
  EXPECT_EQ(store->stats()->pending, stored) << "nothing of the refused batch stored";
  // A batch with a watermark is refused as a whole.
  AppendBatch b;
  b.records.push_back(makeRecord(big));
  b.watermarks.push_back({"poller", "Patient", "cursor-2"});
  EXPECT_TRUE(store->appendSync(std::move(b)).error().is(Errc::full));
  EXPECT_FALSE(store->watermark("poller", "Patient")->has_value());

  std::vector<int64_t> seqs;
  while (true) {
    auto l = leaseOk(*store, 100);
    if (l.empty()) {
      break;
    }
    for (auto s : seqsOf(l)) {
      seqs.push_back(s);
    }
  }
  ASSERT_EQ(seqs.size(), stored);
  ASSERT_TRUE(ackSync(*store, seqs).ok());
  // The acks' pages sit in the WAL (it counts against the budget) until the writer's next
  // checkpoint truncates it: on a loaded machine that may be a moment later, so wait for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Status after = Error(Errc::full, "not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<Record> rs;
    rs.push_back(makeRecord(big));
    auto r = store->appendSync(batchOf(std::move(rs)));
    if (r.ok() || !r.error().is(Errc::full)) {
      after = r.ok() ? Status() : Status(r.error());
      break;
    }
    after = r.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(after.ok()) << after.error().describe();
}

TEST(StoreQueue, SqliteFullMapsToFullAndStoreKeepsWorking) {
  psa::test::TempDir dir;
  auto o = optionsIn(dir);
  o.sqlite_max_pages = 400;  // 1.6 MB with 4 KiB pages
  auto store = openOk(o);
  const std::string big(64 * 1024, 'y');
  Error refusal;
  size_t stored = 0;
  for (int i = 0; i < 100; ++i) {
    std::vector<Record> rs;
    rs.push_back(makeRecord(big));
    auto r = store->appendSync(batchOf(std::move(rs)));
    if (!r.ok()) {
      refusal = r.error();
      break;
    }
    ++stored;
  }
  ASSERT_TRUE(refusal.is(Errc::full)) << refusal.describe();
  EXPECT_NE(refusal.message.find("database or disk is full"), std::string::npos);
  EXPECT_EQ(store->stats()->pending, stored);
  // Small appends and acks still work, and acked space is reused.
  ASSERT_TRUE(ackSync(*store, seqsOf(leaseOk(*store, 1000))).ok());
  EXPECT_EQ(store->stats()->pending, 0u);
  for (int i = 0; i < 5; ++i) {
    std::vector<Record> rs;
    rs.push_back(makeRecord(big));
    auto r = store->appendSync(batchOf(std::move(rs)));
    EXPECT_TRUE(r.ok()) << r.error().describe();
  }
  EXPECT_EQ(leaseOk(*store, 100).size(), 5u);
}

TEST(StoreQueue, FailingBatchDoesNotFailOthersInTheSameCommit) {
  psa::test::TempDir dir;
  auto o = optionsIn(dir);
  o.sqlite_max_pages = 200;
  auto store = openOk(o);
  for (int round = 0; round < 5; ++round) {
    std::promise<Result<AppendResult>> big_p, small_p, bad_p;
    AppendBatch big;
    for (int i = 0; i < 40; ++i) {
      big.records.push_back(makeRecord(std::string(32 * 1024, 'z')));
    }
    big.watermarks.push_back({"s", "k", "big"});
    AppendBatch bad;
    bad.records.push_back(makeRecord("x"));
    bad.records.back().source.clear();
    std::vector<Record> one;
    one.push_back(makeRecord("small"));
    store->append(std::move(big), [&](Result<AppendResult> r) { big_p.set_value(std::move(r)); });
    store->append(std::move(bad), [&](Result<AppendResult> r) { bad_p.set_value(std::move(r)); });
    store->append(batchOf(std::move(one)),
                  [&](Result<AppendResult> r) { small_p.set_value(std::move(r)); });
    auto big_r = big_p.get_future().get();
    auto bad_r = bad_p.get_future().get();
    auto small_r = small_p.get_future().get();
    ASSERT_FALSE(big_r.ok());
    EXPECT_TRUE(big_r.error().is(Errc::full)) << big_r.error().describe();
    ASSERT_FALSE(bad_r.ok());
    EXPECT_TRUE(bad_r.error().is(Errc::invalid_argument));
    EXPECT_EQ(bad_r.error().message, "source of item 0 is empty");
    EXPECT_TRUE(small_r.ok()) << small_r.error().describe();
  }
  EXPECT_FALSE(store->watermark("s", "k")->has_value()) << "the failed batch left nothing";
  EXPECT_EQ(store->stats()->pending, 5u);
}

TEST(StoreQueue, LeaseNeverReturnsUncommittedRows) {
  psa::test::TempDir dir;
  auto o = optionsIn(dir);
  o.sqlite_max_pages = 300;
  o.max_batch_records = 100000;
  auto store = openOk(o);
  std::atomic<bool> stop{false};
  std::atomic<size_t> seen{0};
  std::thread reader([&] {
    while (!stop) {
      seen += leaseOk(*store, 100).size();
    }
  });
  for (int i = 0; i < 5; ++i) {
    // Each batch inserts rows one by one and then fails on SQLITE_FULL: its rows exist only
    // inside the open transaction until the savepoint is rolled back.
    AppendBatch big;
    for (int r = 0; r < 400; ++r) {
      big.records.push_back(makeRecord(std::string(4096, 'q')));
    }
    auto res = store->appendSync(std::move(big));
    ASSERT_FALSE(res.ok());
    EXPECT_TRUE(res.error().is(Errc::full));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(seen.load(), 0u);
  EXPECT_EQ(store->stats()->pending, 0u);
  appendOne(*store, "committed");
  EXPECT_EQ(leaseOk(*store, 10).size(), 1u);
}

TEST(StoreQueue, WatermarksCommitWithTheirRecords) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  EXPECT_FALSE(store->watermark("epic-fhir", "Patient")->has_value());
  AppendBatch b;
  b.records.push_back(makeRecord("p1"));
  b.watermarks.push_back({"epic-fhir", "Patient", "2026-11-25T10:00:00Z"});
  b.watermarks.push_back({"epic-fhir", "Appointment", "page-7"});
  b.watermarks.push_back({"other", "Patient", "o"});
  ASSERT_TRUE(store->appendSync(std::move(b)).ok());
  EXPECT_EQ(store->watermark("epic-fhir", "Patient")->value(), "2026-11-25T10:00:00Z");
  auto all = store->watermarks("epic-fhir");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at("Appointment"), "page-7");

  // Invalid record: the whole batch (watermark included) is refused.
  AppendBatch bad;
  bad.records.push_back(makeRecord("p2"));
  bad.records.back().msg_id = "preset";
  bad.watermarks.push_back({"epic-fhir", "Patient", "advanced"});
  auto r = store->appendSync(std::move(bad));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "records[0].msg_id must be empty: the store assigns it");
  EXPECT_EQ(store->watermark("epic-fhir", "Patient")->value(), "2026-11-25T10:00:00Z");
  EXPECT_EQ(store->stats()->pending, 1u);

  // Erase.
  AppendBatch erase;
  erase.watermarks.push_back({"epic-fhir", "Appointment", std::nullopt});
  ASSERT_TRUE(store->appendSync(std::move(erase)).ok());
  EXPECT_FALSE(store->watermark("epic-fhir", "Appointment")->has_value());
  EXPECT_EQ(store->watermarks("epic-fhir")->size(), 1u);
}

TEST(StoreQueue, WatermarkReaderSeesBatchAllOrNothing) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::thread reader([&] {
    while (!stop) {
      // The watermark says how many records the producer has committed; a reader may never see
      // the watermark ahead of the records (or vice versa within one batch).
      auto wm = store->watermark("p", "n");
      auto rows = store->list(ListFilter::queued, 0, 1000);
      if (wm.ok() && wm->has_value() && rows.ok() &&
          rows->size() < static_cast<size_t>(std::stoi(**wm))) {
        ++violations;
      }
    }
  });
  for (int i = 1; i <= 100; ++i) {
    AppendBatch b;
    b.records.push_back(makeRecord("r" + std::to_string(i)));
    b.watermarks.push_back({"p", "n", std::to_string(i)});
    ASSERT_TRUE(store->appendSync(std::move(b)).ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(store->watermark("p", "n")->value(), "100");
}

TEST(StoreQueue, InvalidInputIsRejectedWithExactErrors) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  {
    AppendBatch b;
    b.records.push_back(makeRecord("x"));
    b.records.back().kind = static_cast<Kind>(42);
    auto r = store->appendSync(std::move(b));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(Errc::invalid_argument));
    EXPECT_EQ(r.error().message, "records[0].kind is not a known kind");
  }
  {
    AppendBatch b;
    b.records.push_back(makeRecord(std::string((64u << 20) + 1, 'x')));
    auto r = store->appendSync(std::move(b));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().is(Errc::limit));
    EXPECT_EQ(r.error().message,
              "records[0].payload is 67108865 bytes; the limit is 67108864");
  }
  {
    AppendBatch b;
    b.watermarks.push_back({"", "k", "v"});
    auto r = store->appendSync(std::move(b));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "watermarks[0] needs a scope and a key");
  }
  {
    AppendBatch b;
    b.dead.push_back({makeRecord("x", Kind::other, std::string(300, 's')), "r"});
    auto r = store->appendSync(std::move(b));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "source of item 0 is longer than 256 bytes");
  }
  EXPECT_EQ(store->stats()->pending, 0u);
  EXPECT_EQ(store->stats()->dead, 0u);
}

TEST(StoreQueue, CloseCompletesQueuedWorkThenRefuses) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    std::vector<Record> rs;
    rs.push_back(makeRecord("r"));
    store->append(batchOf(std::move(rs)), [&ok](Result<AppendResult> r) { ok += r.ok() ? 1 : 0; });
  }
  store->close();
  EXPECT_EQ(ok.load(), 50);
  std::vector<Record> rs;
  rs.push_back(makeRecord("late"));
  auto late = store->appendSync(batchOf(std::move(rs)));
  ASSERT_FALSE(late.ok());
  EXPECT_TRUE(late.error().is(Errc::closed));
  auto l = testing::leaseSync(*store, 1);
  ASSERT_FALSE(l.ok());
  EXPECT_TRUE(l.error().is(Errc::closed));
  EXPECT_TRUE(ackSync(*store, {1}).error().is(Errc::closed));
  EXPECT_TRUE(store->stats().error().is(Errc::closed));
  store->close();  // idempotent
  auto reopened = openOk(optionsIn(dir));
  EXPECT_EQ(reopened->stats()->pending, 50u);
}

// A completion that throws is a broken invariant: fatal_test.cpp (ThrowingStoreCompletionIsFatal).

TEST(StoreQueue, DeliverableListenerFiresAfterCommit) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  std::atomic<int> calls{0};
  store->setDeliverableListener([&calls] { ++calls; });
  appendOne(*store, "r");
  EXPECT_GE(calls.load(), 1);
  const int before = calls.load();
  auto l = leaseOk(*store, 1);
  ASSERT_TRUE(nackSync(*store, l[0].seq, 0ms, "retry now").ok());
  EXPECT_GT(calls.load(), before);
  store->setDeliverableListener({});
}

TEST(StoreQueue, ListPagesBySeq) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  for (int i = 0; i < 10; ++i) {
    appendOne(*store, "r" + std::to_string(i), std::nullopt,
              i % 2 == 0 ? Kind::patient : Kind::clinical);
  }
  auto page1 = store->list(ListFilter::queued, 0, 4);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 4u);
  auto page2 = store->list(ListFilter::queued, page1->back().seq, 100);
  ASSERT_EQ(page2->size(), 6u);
  EXPECT_GT(page2->front().seq, page1->back().seq);
  EXPECT_EQ((*page1)[1].kind, Kind::clinical);
  EXPECT_EQ((*page1)[0].state, "pending");
  EXPECT_EQ((*page1)[0].key_id, 1u);
  auto st = store->stats();
  EXPECT_EQ(st->by_kind[Kind::patient].pending, 5u);
  EXPECT_EQ(st->by_kind[Kind::clinical].pending, 5u);
  EXPECT_GT(st->db_bytes, 0u);
}

}  // namespace
}  // namespace psa::store
