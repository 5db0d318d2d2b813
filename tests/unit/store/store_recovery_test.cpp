// SqliteStore corruption handling, salvage, audit chain, and disk space given back.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "psa/store/sqlite_store.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store {
namespace {

using namespace std::chrono_literals;
using testing::ackSync;
using testing::appendOne;
using testing::leaseOk;
using testing::makeRecord;
using testing::openOk;
using testing::optionsIn;
using testing::RawDb;
using testing::seqsOf;
namespace fs = std::filesystem;

void overwrite(const fs::path& file, uint64_t offset, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string junk(n, '\0');
  for (char& c : junk) {
    c = static_cast<char>(rng());
  }
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
}

TEST(StoreRecovery, GarbageDatabaseIsMovedAsideAndAFreshOneWorks) {
  psa::test::TempDir dir;
  { auto store = openOk(optionsIn(dir)); appendOne(*store, "x"); }
  const std::string garbage(64 * 1024, 'G');
  psa::test::writeFile(dir / "queue.db", garbage);
  auto store = openOk(optionsIn(dir));
  ASSERT_TRUE(store);
  const OpenReport& rep = store->openReport();
  EXPECT_TRUE(rep.recovered_from_corruption);
  EXPECT_TRUE(rep.created);
  EXPECT_FALSE(rep.key_created) << "the key file is kept";
  EXPECT_TRUE(std::regex_match(rep.moved_aside.filename().string(),
                               std::regex(R"(queue\.db\.corrupt-\d{8}T\d{6}Z)")))
      << rep.moved_aside;
  EXPECT_EQ(psa::test::readFile(rep.moved_aside), garbage) << "never deleted or modified";
  EXPECT_FALSE(rep.corruption_reason.empty());
  const std::string id = appendOne(*store, "fresh");
  auto l = leaseOk(*store, 10);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].record.msg_id, id);
  auto entries = store->auditEntries(0, 100);
  ASSERT_TRUE(entries.ok());
  bool logged = false;
  for (const auto& e : *entries) {
    logged = logged || e.action == "store.corruption_recovered";
  }
  EXPECT_TRUE(logged);
  bool in_log = false;
  for (const auto& line : log::recentLines(200)) {
    in_log = in_log || (line.find("store.corruption_recovered") != std::string::npos &&
                        line.find("level=error") != std::string::npos);
  }
  EXPECT_TRUE(in_log);
}

TEST(StoreRecovery, IntegrityCheckOffStillCatchesNotADatabase) {
  psa::test::TempDir dir;
  psa::test::writeFile(dir / "queue.db", std::string(8192, 'Z'));
  auto o = optionsIn(dir);
  o.integrity_check = IntegrityCheck::off;
  auto store = openOk(o);
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->openReport().recovered_from_corruption);
}

TEST(StoreRecovery, SalvageRecoversReadableRowsFromDamagedCopy) {
  psa::test::TempDir dir;
  std::map<std::string, std::string> originals;
  std::vector<std::string> dead_ids;
  {
    auto store = openOk(optionsIn(dir));
    for (int i = 0; i < 300; ++i) {
      std::string payload = "record-" + std::to_string(i) + "-" + std::string(900, 'a' + i % 26);
      originals[appendOne(*store, payload)] = payload;
    }
    AppendBatch b;
    b.dead.push_back({makeRecord("rejected payload"), "MSH-9 missing"});
    auto r = store->appendSync(std::move(b));
    ASSERT_TRUE(r.ok());
    originals[r->dead_ids[0]] = "rejected payload";
    dead_ids = r->dead_ids;
  }
  const fs::path db = dir / "queue.db";
  const uint64_t size = fs::file_size(db);
  ASSERT_GT(size, 40u * 4096);
  // Smash two pages in the middle of the file.
  overwrite(db, (size / 4096 / 2) * 4096, 4096, 1);
  overwrite(db, (size / 4096 / 2 + 7) * 4096, 4096, 2);

  auto store = openOk(optionsIn(dir));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->openReport().recovered_from_corruption)
      << "quick_check must notice smashed b-tree pages";
  const fs::path aside = store->openReport().moved_aside;
  const std::string aside_bytes = psa::test::readFile(aside);
  EXPECT_EQ(store->stats()->pending, 0u);

  auto rep = store->salvage(aside);
  ASSERT_TRUE(rep.ok()) << rep.error().describe();
  EXPECT_GT(rep->imported, 250u);
  EXPECT_LE(rep->imported, 301u);
  EXPECT_EQ(rep->already_present, 0u);
  EXPECT_EQ(psa::test::readFile(aside), aside_bytes) << "salvage works on a copy";

  // Everything imported is byte-identical and keeps its msg_id; dead letters stay dead.
  size_t checked = 0;
  for (const auto& [id, payload] : originals) {
    auto revealed = store->reveal(id);
    if (!revealed.ok()) {
      EXPECT_TRUE(revealed.error().is(Errc::not_found));
      continue;
    }
    EXPECT_EQ(revealed->reveal(), payload);
    ++checked;
  }
  EXPECT_EQ(checked, rep->imported);
  auto dead_info = store->show(dead_ids[0]);
  if (dead_info.ok()) {
    EXPECT_EQ(dead_info->state, "dead");
    EXPECT_EQ(dead_info->reason, "MSH-9 missing");
  }
  // Leasing works on salvaged rows.
  size_t leased = 0;
  while (true) {
    auto l = leaseOk(*store, 100);
    if (l.empty()) {
      break;
    }
    for (const auto& x : l) {
      EXPECT_EQ(x.record.payload.reveal(), originals.at(x.record.msg_id));
    }
    leased += l.size();
  }
  EXPECT_EQ(leased + (dead_info.ok() ? 1 : 0), rep->imported);

  auto again = store->salvage(aside);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->imported, 0u);
  EXPECT_EQ(again->already_present, rep->imported);
}

TEST(StoreRecovery, SalvageOfUnreadableFileIsCorrupt) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  psa::test::writeFile(dir / "junk.db", std::string(4096, 'J'));
  auto r = store->salvage(dir / "junk.db");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::corrupt));
  auto missing = store->salvage(dir / "nope.db");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.error().is(Errc::not_found));
  auto live = store->salvage(dir / "queue.db");
  ASSERT_FALSE(live.ok());
  EXPECT_TRUE(live.error().is(Errc::invalid_argument));
}

TEST(StoreRecovery, AuditChainRecordsActionsAndVerifies) {
  psa::test::TempDir dir;
  {
    auto store = openOk(optionsIn(dir));
    for (int i = 0; i < 3; ++i) {
      appendOne(*store, "r");
    }
    auto l = leaseOk(*store, 3);
    ASSERT_TRUE(ackSync(*store, {l[0].seq, l[1].seq}).ok());
    ASSERT_TRUE(testing::deadSync(*store, l[2].seq, "puback 0x99").ok());
    ASSERT_TRUE(store->retryDead(l[2].record.msg_id).ok());
    ASSERT_TRUE(store->rotateKey().ok());
    AuditEntry e;
    e.actor = "uid:1000";
    e.action = "queue.reveal";
    e.detail = "{\"msg_id\":\"X\"}";
    ASSERT_TRUE(testing::statusSync([&](StatusCallback cb) {
                  store->audit(e, std::move(cb));
                }).ok());
    AuditEntry bad;
    EXPECT_TRUE(testing::statusSync([&](StatusCallback cb) { store->audit(bad, std::move(cb)); })
                    .error()
                    .is(Errc::invalid_argument));
    ASSERT_TRUE(store->purgeDead().ok());
  }  // close flushes the aggregated accepted/delivered counts
  auto store = openOk(optionsIn(dir));
  auto entries = store->auditEntries(0, 1000);
  ASSERT_TRUE(entries.ok());
  std::map<std::string, std::string> by_action;
  for (const auto& e : *entries) {
    by_action[e.action] = e.detail;
  }
  EXPECT_NE(by_action["records.accepted"].find("\"source\":\"cerner-adt\",\"count\":3"),
            std::string::npos)
      << by_action["records.accepted"];
  EXPECT_NE(by_action["records.delivered"].find("\"count\":2"), std::string::npos);
  EXPECT_NE(by_action["record.dead_lettered"].find("\"reason\":\"puback 0x99\""),
            std::string::npos);
  EXPECT_TRUE(by_action.count("dead.retried"));
  EXPECT_TRUE(by_action.count("key.rotated"));
  EXPECT_TRUE(by_action.count("dead.purged"));
  EXPECT_EQ(by_action["queue.reveal"], "{\"msg_id\":\"X\"}");
  for (size_t i = 1; i < entries->size(); ++i) {
    EXPECT_EQ((*entries)[i].prev_hash, (*entries)[i - 1].hash);
    EXPECT_EQ((*entries)[i].seq, (*entries)[i - 1].seq + 1);
  }
  auto v = store->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->entries, entries->size());
  store->close();

  // Edit one entry with sqlite3: the chain names it.
  const int64_t victim = (*entries)[2].seq;
  {
    RawDb raw(dir / "queue.db");
    raw.exec("UPDATE audit SET detail='{\"count\":999}' WHERE seq=" + std::to_string(victim));
  }
  store = openOk(optionsIn(dir));
  v = store->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_bad_seq, victim);
  EXPECT_EQ(v->problem, "hash does not match the entry's contents");
}

TEST(StoreRecovery, AuditGapIsReported) {
  psa::test::TempDir dir;
  {
    auto store = openOk(optionsIn(dir));
    for (int i = 0; i < 4; ++i) {
      AuditEntry e;
      e.actor = "agent";
      e.action = "test.entry";
      e.detail = "{\"i\":" + std::to_string(i) + "}";
      ASSERT_TRUE(
          testing::statusSync([&](StatusCallback cb) { store->audit(e, std::move(cb)); }).ok());
    }
  }
  {
    RawDb raw(dir / "queue.db");
    raw.exec("DELETE FROM audit WHERE seq=3");
  }
  auto store = openOk(optionsIn(dir));
  auto v = store->verifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok);
  EXPECT_EQ(v->first_bad_seq, 4);
  EXPECT_EQ(v->problem, "entry 3 is missing");
}

TEST(StoreRecovery, FilesShrinkAfterBacklogDrains) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  const std::string payload(16 * 1024, 'b');
  for (int i = 0; i < 20; ++i) {
    AppendBatch b;
    for (int r = 0; r < 100; ++r) {
      b.records.push_back(makeRecord(payload));
    }
    ASSERT_TRUE(store->appendSync(std::move(b)).ok());
  }
  auto onDisk = [&] {
    std::error_code ec;
    uint64_t total = fs::file_size(dir / "queue.db", ec);
    const uint64_t wal = fs::file_size(dir / "queue.db-wal", ec);
    return total + (ec ? 0 : wal);
  };
  const uint64_t high = onDisk();
  EXPECT_GT(high, 32u << 20);
  while (true) {
    auto l = leaseOk(*store, 500);
    if (l.empty()) {
      break;
    }
    ASSERT_TRUE(ackSync(*store, seqsOf(l)).ok());
  }
  ASSERT_TRUE(psa::test::waitFor([&] { return onDisk() < (4u << 20); }, 30s))
      << "still " << onDisk() << " bytes on disk";
  EXPECT_LT(store->stats()->db_bytes, 4u << 20);
}

}  // namespace
}  // namespace psa::store
