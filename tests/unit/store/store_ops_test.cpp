// What the operations side needs from the store: read-only inspection (the CLI while the
// agent is down, or beside a hung one), audit counts that survive a crash, and audit retention
// that keeps the chain verifiable.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store {
namespace {

using namespace std::chrono_literals;
using testing::appendOne;
using testing::leaseOk;
using testing::ManualClock;
using testing::openOk;
using testing::optionsIn;
using testing::RawDb;
namespace fs = std::filesystem;

StoreOptions readOnly(StoreOptions o) {
  o.read_only = true;
  return o;
}

Status auditSync(SqliteStore& store, std::string action, std::string detail = "{}") {
  AuditEntry e;
  e.actor = "test";
  e.action = std::move(action);
  e.detail = std::move(detail);
  return testing::statusSync([&](StatusCallback cb) { store.audit(e, std::move(cb)); });
}

// Fills a store with 3 queued records (one delivered), 2 dead letters and audit entries.
std::vector<std::string> fill(SqliteStore& store) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(appendOne(store, "payload-" + std::to_string(i)));
  }
  auto l = leaseOk(store, 1);
  EXPECT_TRUE(testing::ackSync(store, {l.at(0).seq}).ok());
  AppendBatch dead;
  for (int i = 0; i < 2; ++i) {
    DeadLetterInput d;
    d.record = testing::makeRecord("bad-" + std::to_string(i));
    d.reason = "HL7 parse error at byte " + std::to_string(i);
    dead.dead.push_back(std::move(d));
  }
  auto r = store.appendSync(std::move(dead));
  EXPECT_TRUE(r.ok());
  return ids;
}

TEST(StoreOps, DeadReasonsGroupsMostFrequentFirst) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  auto none = store->deadReasons(10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  AppendBatch dead;
  const std::vector<std::string> reasons = {"puback 0x97 quota exceeded", "HL7 parse error",
                                            "puback 0x97 quota exceeded", "oversize",
                                            "puback 0x97 quota exceeded", "HL7 parse error"};
  for (size_t i = 0; i < reasons.size(); ++i) {
    DeadLetterInput d;
    d.record = testing::makeRecord("bad-" + std::to_string(i));
    d.reason = reasons[i];
    dead.dead.push_back(std::move(d));
  }
  ASSERT_TRUE(store->appendSync(std::move(dead)).ok());
  auto grouped = store->deadReasons(10);
  ASSERT_TRUE(grouped.ok());
  ASSERT_EQ(grouped->size(), 3u);
  EXPECT_EQ(grouped->at(0).reason, "puback 0x97 quota exceeded");
  EXPECT_EQ(grouped->at(0).count, 3u);
  EXPECT_EQ(grouped->at(1).reason, "HL7 parse error");
  EXPECT_EQ(grouped->at(1).count, 2u);
  EXPECT_EQ(grouped->at(2).count, 1u);
  EXPECT_GT(grouped->at(0).last_dead_at_ms, 0);
  auto top = store->deadReasons(1);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->size(), 1u);
}

TEST(StoreOps, ReadOnlyOpenInspectsWithoutKeyOrWrites) {
  psa::test::TempDir dir;
  std::vector<std::string> ids;
  {
    auto store = openOk(optionsIn(dir));
    ids = fill(*store);
  }
  // The CLI may run as a user who cannot read the key: read-only needs none.
  fs::rename(dir / "queue.key", dir / "elsewhere.key");
  const std::string db_before = psa::test::readFile(dir / "queue.db");

  auto ro = openOk(readOnly(optionsIn(dir)));
  ASSERT_TRUE(ro);
  auto stats = ro->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending, 3u);
  EXPECT_EQ(stats->dead, 2u);
  EXPECT_EQ(stats->current_key_id, 1u);
  EXPECT_EQ(stats->key_count, 1u);
  auto queued = ro->list(ListFilter::queued, 0, 100);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(queued->size(), 3u);
  auto dead = ro->list(ListFilter::dead, 0, 100);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_EQ(dead->at(1).reason, "HL7 parse error at byte 1");
  auto shown = ro->show(ids[3]);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ(shown->state, "pending");
  auto verify = ro->verifyAudit();
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok) << verify->problem;
  EXPECT_GT(verify->entries, 0u);

  // Everything that would change something is refused, with words that say why.
  auto appended = ro->appendSync(testing::batchOf({}));
  ASSERT_FALSE(appended.ok());
  EXPECT_TRUE(appended.error().is(Errc::closed));
  EXPECT_EQ(appended.error().message,
            "the store is open read-only (inspection); the running agent makes changes");
  EXPECT_TRUE(ro->retryDead(dead->at(0).msg_id).error().is(Errc::closed));
  EXPECT_TRUE(ro->purgeDead().error().is(Errc::closed));
  EXPECT_TRUE(ro->rotateKey().error().is(Errc::closed));
  auto revealed = ro->reveal(ids[3]);
  ASSERT_FALSE(revealed.ok());
  EXPECT_EQ(revealed.error().message, "the store is open read-only (inspection): no key is loaded");
  EXPECT_TRUE(ro->salvage(dir / "queue.db").error().is(Errc::closed));
  EXPECT_TRUE(testing::leaseSync(*ro, 1).error().is(Errc::closed));
  EXPECT_TRUE(auditSync(*ro, "x").error().is(Errc::closed));
  ro->close();

  EXPECT_EQ(psa::test::readFile(dir / "queue.db"), db_before) << "read-only open changed the file";
  EXPECT_FALSE(fs::exists(dir / "queue.key")) << "read-only open created a key file";
}

TEST(StoreOps, ReadOnlyOpenOfMissingDatabaseCreatesNothing) {
  psa::test::TempDir dir;
  auto ro = SqliteStore::open(readOnly(optionsIn(dir)));
  ASSERT_FALSE(ro.ok());
  EXPECT_TRUE(ro.error().is(Errc::not_found));
  EXPECT_EQ(ro.error().message, "no queue database at " + (dir / "queue.db").string() +
                                    " (has the agent run with this config yet?)");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(StoreOps, ReadOnlyOpenBesideARunningWriterSeesCommittedState) {
  psa::test::TempDir dir;
  auto writer = openOk(optionsIn(dir));
  appendOne(*writer, "a");
  auto ro = openOk(readOnly(optionsIn(dir)));
  ASSERT_TRUE(ro);
  EXPECT_EQ(ro->list(ListFilter::queued, 0, 10)->size(), 1u);
  appendOne(*writer, "b");  // the writer is never blocked by the reader
  EXPECT_EQ(ro->list(ListFilter::queued, 0, 10)->size(), 2u);
  ro->close();
  writer->close();
}

TEST(StoreOps, AggregatedAuditCountsSurviveACrash) {
  psa::test::TempDir dir;
  psa::test::TempDir crashed;
  auto store = openOk(optionsIn(dir));
  for (int i = 0; i < 5; ++i) {
    appendOne(*store, "r" + std::to_string(i));
  }
  auto l = leaseOk(*store, 2);
  ASSERT_TRUE(testing::ackSync(*store, testing::seqsOf(l)).ok());
  // The counts are still aggregated in memory (flushed every 10 s or at close), but they are
  // saved with the records: a copy of the files taken now is what a SIGKILL leaves behind.
  for (const char* f : {"queue.db", "queue.db-wal", "queue.key"}) {
    if (fs::exists(dir / f)) {
      testing::copyPrivate(dir / f, crashed / f);
    }
  }
  store->close();

  auto recovered = openOk(optionsIn(crashed));
  recovered->close();  // flushes what the "crashed" run had aggregated
  auto ro = openOk(readOnly(optionsIn(crashed)));
  auto entries = ro->auditEntries(0, 100);
  ASSERT_TRUE(entries.ok());
  uint64_t accepted = 0;
  uint64_t delivered = 0;
  for (const auto& e : *entries) {
    if (e.action == "records.accepted") {
      auto d = psa::json::parse(e.detail);
      accepted += static_cast<uint64_t>(d->getInt("count"));
    } else if (e.action == "records.delivered") {
      delivered += static_cast<uint64_t>(psa::json::parse(e.detail)->getInt("count"));
    }
  }
  EXPECT_EQ(accepted, 5u);
  EXPECT_EQ(delivered, 2u);
  EXPECT_TRUE(ro->verifyAudit()->ok);
  // And once flushed they are not counted again.
  ro->close();
  openOk(optionsIn(crashed))->close();
  auto again = openOk(readOnly(optionsIn(crashed)));
  EXPECT_EQ(again->auditEntries(0, 100)->size(), entries->size());
}

// Waits (real time) until the writer's maintenance tick has written an entry with `action`.
bool waitForAction(SqliteStore& store, const std::string& action, size_t count = 1) {
  return psa::test::waitFor(
      [&] {
        auto e = store.auditEntries(0, 10000);
        size_t n = 0;
        for (const auto& entry : *e) {
          n += entry.action == action ? 1 : 0;
        }
        return n >= count;
      },
      10s);
}

TEST(StoreOps, AuditRetentionCutsAtACheckpointAndTheChainStillVerifies) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  StoreOptions o = optionsIn(dir);
  o.clock = clock;
  o.audit_retain = std::chrono::hours(1);
  auto store = openOk(o);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(auditSync(*store, "test.old").ok());
  }
  clock->advance(61s);  // the next maintenance tick writes the first checkpoint
  ASSERT_TRUE(waitForAction(*store, "audit.checkpoint"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(auditSync(*store, "test.new").ok());
  }
  // Nothing is old enough yet: the chain still starts at seq 1.
  EXPECT_EQ(store->auditEntries(0, 1)->at(0).seq, 1);

  clock->advance(1h + 1min);  // the checkpoint is now older than the retention period
  ASSERT_TRUE(waitForAction(*store, "audit.pruned"));
  auto entries = store->auditEntries(0, 100);
  ASSERT_TRUE(entries.ok());
  ASSERT_FALSE(entries->empty());
  EXPECT_EQ(entries->front().action, "audit.checkpoint");
  EXPECT_EQ(entries->front().seq, 6);
  for (const auto& e : *entries) {
    EXPECT_NE(e.action, "test.old");
  }
  const auto& pruned = *std::find_if(entries->begin(), entries->end(), [](const AuditEntry& e) {
    return e.action == "audit.pruned";
  });
  EXPECT_EQ(pruned.detail.rfind("{\"before_seq\":6,\"count\":5,", 0), 0u) << pruned.detail;
  auto v = store->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->entries, entries->size());

  // An idle store does not grow: no checkpoint after a checkpoint or a prune.
  const size_t n = entries->size();
  clock->advance(20min);
  std::this_thread::sleep_for(2500ms);  // two maintenance ticks; nothing may be written
  EXPECT_LE(store->auditEntries(0, 100)->size(), n + 1);
}

bool hasSeq(SqliteStore& store, int64_t seq) {
  auto e = store.auditEntries(seq - 1, 1);
  return e.ok() && !e->empty() && e->front().seq == seq;
}

void setUploaded(SqliteStore& store, const std::string& seq) {
  AppendBatch b;
  b.watermarks.push_back(WatermarkUpdate{".agent", "audit_uploaded_seq", seq});
  ASSERT_TRUE(store.appendSync(std::move(b)).ok());
}

TEST(StoreOps, AuditRetentionNeverPrunesEntriesNotYetUploaded) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  StoreOptions o = optionsIn(dir);
  o.clock = clock;
  o.audit_retain = std::chrono::hours(1);
  o.audit_upload_scope = ".agent";
  o.audit_upload_key = "audit_uploaded_seq";
  auto store = openOk(o);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(auditSync(*store, "test.old").ok());  // seq 1..5
  }
  clock->advance(61s);
  ASSERT_TRUE(waitForAction(*store, "audit.checkpoint"));  // seq 6
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(auditSync(*store, "test.new").ok());  // seq 7..9
  }

  // Nothing uploaded yet: the checkpoint is older than the retention period, yet nothing goes.
  // (The same maintenance pass writes the next checkpoint, which shows that it ran.)
  clock->advance(1h + 1min);
  ASSERT_TRUE(waitForAction(*store, "audit.checkpoint", 2));  // seq 10
  EXPECT_TRUE(hasSeq(*store, 1));

  // Uploaded up to 4: entry 5 is still before the only old checkpoint, so still nothing goes.
  setUploaded(*store, "4");
  ASSERT_TRUE(auditSync(*store, "test.new").ok());  // seq 11
  clock->advance(16min);
  ASSERT_TRUE(waitForAction(*store, "audit.checkpoint", 3));  // seq 12
  EXPECT_TRUE(hasSeq(*store, 1));
  EXPECT_TRUE(hasSeq(*store, 5));
  auto kept = store->auditEntries(0, 100);
  ASSERT_TRUE(kept.ok());
  for (const auto& e : kept.value()) {
    EXPECT_NE(e.action, "audit.pruned");
  }

  // Uploaded up to 5 (everything before checkpoint 6): the old entries are pruned at last,
  // and only those (checkpoints 10 and 12 are not old enough yet).
  setUploaded(*store, "5");
  clock->advance(61s);
  ASSERT_TRUE(waitForAction(*store, "audit.pruned"));
  auto entries = store->auditEntries(0, 100);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->front().seq, 6);
  const auto& pruned = *std::find_if(entries->begin(), entries->end(), [](const AuditEntry& e) {
    return e.action == "audit.pruned";
  });
  EXPECT_EQ(pruned.detail.rfind("{\"before_seq\":6,\"count\":5,", 0), 0u) << pruned.detail;
  auto v = store->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
}

TEST(StoreOps, EntriesRemovedByHandBeforeACheckpointAreReported) {
  psa::test::TempDir dir;
  auto clock = std::make_shared<ManualClock>();
  StoreOptions o = optionsIn(dir);
  o.clock = clock;
  o.audit_retain = std::chrono::hours(24);
  {
    auto store = openOk(o);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(auditSync(*store, "test.entry").ok());
    }
    clock->advance(61s);
    ASSERT_TRUE(waitForAction(*store, "audit.checkpoint"));
    ASSERT_TRUE(auditSync(*store, "test.entry").ok());
  }
  {
    RawDb raw(dir / "queue.db");
    raw.exec("DELETE FROM audit WHERE seq<4");  // looks like a prune, but none was recorded
  }
  auto ro = openOk(readOnly(optionsIn(dir)));
  auto v = ro->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_bad_seq, 4);
  EXPECT_EQ(v->problem,
            "entries before checkpoint 4 were removed without a recorded prune (audit.pruned)");
}

}  // namespace
}  // namespace psa::store
