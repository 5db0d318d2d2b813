// OutboundQueue on real SQLite files: dedupe by id, per-key ordering, finish/defer/requeue,
// the durable results queue, the budget, reopen after close, and no PHI in the files.
#include "psa/store/outbound_queue.h"

#include <gtest/gtest.h>

#include <future>

#include "psa/store/sqlite_store.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store {
namespace {

using testing::ManualClock;
using testing::openOk;
using testing::optionsIn;
using testing::RawDb;

template <class T, class Fn>
Result<T> sync(Fn call) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  call([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

OutboundPut request(const std::string& id, const std::string& order_key, int64_t issued_at,
                    const std::string& body = "MSH|^~\\&|PS", const std::string& target = "pms") {
  OutboundPut r;
  r.id = id;
  r.target = target;
  r.op = "create";
  r.kind = "appointment";
  r.format = "hl7v2";
  r.issued_at_ms = issued_at;
  r.expires_at_ms = issued_at + 3'600'000;
  r.ordering_key = Sensitive<std::string>(order_key);
  r.document = Sensitive<std::string>("{\"id\":\"" + id + "\",\"body\":\"" + body + "\"}");
  r.accepted_result = "{\"id\":\"" + id + "\",\"status\":\"accepted\"}";
  return r;
}

struct Fixture {
  psa::test::TempDir dir;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  SqliteStorePtr store;
  std::unique_ptr<OutboundQueue> q;

  explicit Fixture(OutboundOptions o = {}) { open(o); }
  void open(OutboundOptions o = {}) {
    StoreOptions so = optionsIn(dir);
    so.clock = clock;
    store = openOk(so);
    q = std::make_unique<OutboundQueue>(*store, o);
  }
  void close() {
    q.reset();
    store->close();
    store.reset();
  }
  PutOutcome put(OutboundPut r) {
    auto res = sync<PutOutcome>([&](auto cb) { q->put(std::move(r), cb); });
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().describe());
    return res.ok() ? *res : PutOutcome{};
  }
  std::string nextId(const std::string& target = "pms") {
    auto res = sync<NextOutcome>([&](auto cb) { q->next(target, cb); });
    EXPECT_TRUE(res.ok());
    return res.ok() && res->item ? res->item->id : std::string();
  }
  Result<bool> finish(const std::string& id, const std::string& status) {
    return sync<bool>([&](auto cb) {
      q->finish(id, status, "{\"id\":\"" + id + "\",\"status\":\"" + status + "\"}", 1, cb);
    });
  }
  std::vector<PendingResult> results() {
    auto res = sync<std::vector<PendingResult>>([&](auto cb) { q->pendingResults(0, 100, cb); });
    EXPECT_TRUE(res.ok());
    return res.ok() ? *res : std::vector<PendingResult>{};
  }
};

constexpr const char* kId1 = "01JE00000000000000000000A1";
constexpr const char* kId2 = "01JE00000000000000000000A2";
constexpr const char* kId3 = "01JE00000000000000000000A3";

TEST(OutboundQueue, PutQueuesRequestAndAcceptedResultTogether) {
  Fixture f;
  PutOutcome o = f.put(request(kId1, "MRN1", 1000));
  EXPECT_EQ(o.status, PutStatus::queued);
  auto results = f.results();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].id, kId1);
  EXPECT_NE(results[0].json.find("accepted"), std::string::npos);
  auto info = f.q->show(kId1);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, "queued");
  EXPECT_EQ(info->target, "pms");
}

TEST(OutboundQueue, ResendOfKnownIdNeverMakesASecondRow) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  PutOutcome again = f.put(request(kId1, "MRN1", 1000));
  EXPECT_EQ(again.status, PutStatus::known);
  EXPECT_EQ(again.state, "queued");
  EXPECT_EQ(f.q->list(0, 10)->size(), 1u);

  EXPECT_EQ(f.nextId(), kId1);
  ASSERT_TRUE(f.finish(kId1, "delivered").ok());
  PutOutcome after = f.put(request(kId1, "MRN1", 1000));
  EXPECT_EQ(after.status, PutStatus::known);
  EXPECT_EQ(after.state, "delivered");
  EXPECT_EQ(after.result, std::string("{\"id\":\"") + kId1 + "\",\"status\":\"delivered\"}");
  EXPECT_EQ(f.nextId(), "");
  // accepted, accepted again, delivered, delivered again: each committed for publishing.
  EXPECT_EQ(f.results().size(), 4u);
}

TEST(OutboundQueue, SameIdWithAnotherDocumentIsAReplay) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  PutOutcome o = f.put(request(kId1, "MRN1", 1000, "something else"));
  EXPECT_EQ(o.status, PutStatus::replayed);
  EXPECT_EQ(f.results().size(), 1u);
}

TEST(OutboundQueue, SameKeyInIssueOrderOtherKeysNotBlocked) {
  Fixture f;
  // Arrive out of issue order: A2 (issued 2000) before A1 (issued 1000), both MRN1; A3 MRN2.
  f.put(request(kId2, "MRN1", 2000));
  f.put(request(kId1, "MRN1", 1000));
  f.put(request(kId3, "MRN2", 3000));
  EXPECT_EQ(f.nextId(), kId1);
  // A1 waits for the PMS: MRN1's later request waits too, MRN2 goes ahead.
  auto d = sync<bool>(
      [&](auto cb) { f.q->defer(kId1, f.clock->nowMs() + 60'000, 1, "pms unreachable", cb); });
  ASSERT_TRUE(d.ok() && *d);
  EXPECT_EQ(f.nextId(), kId3);
  ASSERT_TRUE(f.finish(kId3, "delivered").ok());
  auto none = sync<NextOutcome>([&](auto cb) { f.q->next("pms", cb); });
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->item);
  EXPECT_EQ(none->wake_at_ms, f.clock->nowMs() + 60'000);
  f.clock->advance(std::chrono::minutes(1));
  EXPECT_EQ(f.nextId(), kId1);
  // A failing request does not block its key for ever: once final, the next one goes.
  ASSERT_TRUE(f.finish(kId1, "failed").ok());
  EXPECT_EQ(f.nextId(), kId2);
  EXPECT_EQ(f.q->show(kId1)->attempts, 2u);
}

TEST(OutboundQueue, TargetsAreSeparate) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000, "x", "pms-a"));
  f.put(request(kId2, "MRN1", 2000, "y", "pms-b"));
  EXPECT_EQ(f.nextId("pms-b"), kId2);
  EXPECT_EQ(f.nextId("pms-a"), kId1);
}

TEST(OutboundQueue, FinishTwiceKeepsTheFirstFinalResult) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  ASSERT_TRUE(f.finish(kId1, "delivered").ok());
  auto again = f.finish(kId1, "failed");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::exists);
  EXPECT_EQ(f.q->show(kId1)->state, "delivered");
  EXPECT_EQ(f.finish(kId2, "delivered").error().code, Errc::not_found);
  EXPECT_FALSE(f.finish(kId1, "accepted").ok());
}

TEST(OutboundQueue, RequeueOnlyFailedOrExpired) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  auto r = sync<bool>([&](auto cb) { f.q->requeue(kId1, cb); });
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  ASSERT_TRUE(f.finish(kId1, "failed").ok());
  r = sync<bool>([&](auto cb) { f.q->requeue(kId1, cb); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(f.nextId(), kId1);
}

TEST(OutboundQueue, ResultsLeaveOnAckOnly) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  auto rs = f.results();
  ASSERT_EQ(rs.size(), 1u);
  auto a = sync<bool>([&](auto cb) { f.q->ackResult(rs[0].seq, cb); });
  ASSERT_TRUE(a.ok() && *a);
  EXPECT_TRUE(f.results().empty());
  auto q = sync<bool>([&](auto cb) { f.q->queueResult(kId2, "{\"status\":\"rejected\"}", cb); });
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(f.results().size(), 1u);
  EXPECT_EQ(f.results()[0].id, kId2);
}

TEST(OutboundQueue, BudgetRefusesWithAReasonAndLosesNothing) {
  OutboundOptions o;
  o.max_rows = 2;
  Fixture f(o);
  EXPECT_EQ(f.put(request(kId1, "A", 1)).status, PutStatus::queued);
  EXPECT_EQ(f.put(request(kId2, "B", 2)).status, PutStatus::queued);
  PutOutcome full = f.put(request(kId3, "C", 3));
  EXPECT_EQ(full.status, PutStatus::full);
  EXPECT_NE(full.error.find("max_rows 2"), std::string::npos);
  EXPECT_EQ(f.q->list(0, 10)->size(), 2u);
  // A known id is still answered when full.
  EXPECT_EQ(f.put(request(kId1, "A", 1)).status, PutStatus::known);
  ASSERT_TRUE(f.finish(kId1, "delivered").ok());
  EXPECT_EQ(f.put(request(kId3, "C", 3)).status, PutStatus::queued);
}

TEST(OutboundQueue, SurvivesReopen) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  f.put(request(kId2, "MRN1", 2000));
  ASSERT_TRUE(f.finish(kId1, "delivered").ok());
  f.close();
  f.open();
  EXPECT_EQ(f.q->show(kId1)->state, "delivered");
  EXPECT_EQ(f.nextId(), kId2);
  EXPECT_EQ(f.results().size(), 3u);
  EXPECT_EQ(f.put(request(kId1, "MRN1", 1000)).state, "delivered");
  auto stats = f.q->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->queued, 1u);
  EXPECT_EQ(stats->finished, 1u);
  ASSERT_EQ(stats->by_target.size(), 1u);
  EXPECT_EQ(stats->by_target[0].first, "pms");
}

TEST(OutboundQueue, PruneDropsOldFinishedRequests) {
  OutboundOptions o;
  o.retain_finished_ms = 1000;
  Fixture f(o);
  f.put(request(kId1, "MRN1", 1000));
  f.put(request(kId2, "MRN2", 1000));
  ASSERT_TRUE(f.finish(kId1, "delivered").ok());
  f.clock->advance(std::chrono::seconds(2));
  auto n = sync<uint64_t>([&](auto cb) { f.q->prune(cb); });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(f.q->show(kId1).error().code, Errc::not_found);
  EXPECT_EQ(f.q->show(kId2)->state, "queued");
}

TEST(OutboundQueue, KeyRotationKeepsTheKeyItsRowsNeed) {
  Fixture f;
  f.put(request(kId1, "MRN1", 1000));
  ASSERT_TRUE(f.store->rotateKey().ok());
  f.put(request(kId2, "MRN1", 2000));
  // Rows under key 1 keep it (the store drops a key only when no row needs it).
  f.close();
  f.open();
  ASSERT_TRUE(f.q->reveal(kId1).ok());
  EXPECT_EQ(f.nextId(), kId1);
  // The same patient across the rotation is still one sequence: while A1 waits, A2 waits.
  ASSERT_TRUE(sync<bool>([&](auto cb) {
                f.q->defer(kId1, f.clock->nowMs() + 1000, 1, "pms unreachable", cb);
              }).ok());
  EXPECT_EQ(f.nextId(), "");
  f.clock->advance(std::chrono::seconds(1));
  EXPECT_EQ(f.nextId(), kId1);
  ASSERT_TRUE(f.finish(kId1, "delivered").ok());
  EXPECT_EQ(f.nextId(), kId2);
  EXPECT_EQ(f.results().size(), 3u);
}

TEST(OutboundQueue, NoPhiInClearInDatabaseOrWal) {
  const std::string marker = psa::test::uniqueMarker();
  Fixture f;
  f.put(request(kId1, "MRN-" + marker, 1000, "PID|1||" + marker));
  ASSERT_TRUE(f.q->reveal(kId1).ok());
  EXPECT_NE(f.q->reveal(kId1)->reveal().find(marker), std::string::npos);
  ASSERT_TRUE(sync<bool>([&](auto cb) {
                f.q->finish(kId1, "failed", "{\"error\":\"" + marker + "\"}", 1, cb);
              }).ok());
  // While open (WAL holds the latest pages) and after close (checkpointed into the db file).
  EXPECT_TRUE(psa::test::filesContaining(f.dir.path(), marker).empty());
  f.close();
  EXPECT_TRUE(psa::test::filesContaining(f.dir.path(), marker).empty());
}

}  // namespace
}  // namespace psa::store
