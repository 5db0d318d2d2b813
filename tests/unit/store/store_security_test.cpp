// SqliteStore encryption at rest, key file handling, key rotation, and the PHI-on-disk check.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "psa/store/os/durable_file.h"
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

size_t keyLines(const fs::path& key_file) {
  std::istringstream in(testing::keyFileText(key_file));
  const std::regex key_line("key [0-9]+ [0-9a-f]{64}");
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    n += std::regex_match(line, key_line) ? 1 : 0;
  }
  return n;
}

TEST(StoreSecurity, PayloadIsSealedAtRest) {
  psa::test::TempDir dir;
  std::string id;
  {
    auto store = openOk(optionsIn(dir));
    id = appendOne(*store, "PID|1||12345^^^MRN||DOE^JANE");
  }
  RawDb raw(dir / "queue.db");
  const std::string sealed = raw.queryBlob("SELECT sealed FROM queue");
  EXPECT_EQ(sealed.size(), 1 + 12 + 28 + 16u);
  EXPECT_EQ(sealed.find("DOE^JANE"), std::string::npos);
  EXPECT_EQ(raw.queryInt("SELECT key_id FROM queue"), 1);
}

TEST(StoreSecurity, EveryRecordHasAFreshNonce) {
  psa::test::TempDir dir;
  {
    auto store = openOk(optionsIn(dir));
    AppendBatch b;
    for (int i = 0; i < 2000; ++i) {
      b.records.push_back(makeRecord("same payload"));
    }
    ASSERT_TRUE(store->appendSync(std::move(b)).ok());
  }
  RawDb raw(dir / "queue.db");
  EXPECT_EQ(raw.queryInt("SELECT count(DISTINCT substr(sealed, 2, 12)) FROM queue"), 2000);
  EXPECT_EQ(raw.queryInt("SELECT count(DISTINCT sealed) FROM queue"), 2000);
}

TEST(StoreSecurity, TamperedCiphertextIsDeadLetteredWithReason) {
  psa::test::TempDir dir;
  std::string a, b;
  {
    auto store = openOk(optionsIn(dir));
    a = appendOne(*store, "first payload");
    b = appendOne(*store, "second payload");
  }
  {
    RawDb raw(dir / "queue.db");
    std::string sealed = raw.queryBlob("SELECT sealed FROM queue WHERE msg_id='" + a + "'");
    ASSERT_GT(sealed.size(), 20u);
    sealed[15] = static_cast<char>(sealed[15] ^ 0x01);  // one ciphertext bit
    raw.setBlob("UPDATE queue SET sealed=?1 WHERE msg_id='" + a + "'", sealed);
  }
  auto store = openOk(optionsIn(dir));
  auto l = leaseOk(*store, 10);
  ASSERT_EQ(l.size(), 1u) << "the tampered row is never returned";
  EXPECT_EQ(l[0].record.msg_id, b);
  EXPECT_EQ(l[0].record.payload.reveal(), "second payload");
  ASSERT_TRUE(psa::test::waitFor([&] { return store->stats()->dead == 1; }, 10s));
  auto info = store->show(a);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, "dead");
  EXPECT_EQ(info->reason, "decrypt failed: authentication tag mismatch (key 1)");
  auto revealed = store->reveal(a);
  ASSERT_FALSE(revealed.ok());
  EXPECT_TRUE(revealed.error().is(Errc::crypto));
  EXPECT_EQ(revealed.error().message,
            "msg_id " + a + ": decrypt failed: authentication tag mismatch (key 1)");
  // The writer releases the dead row's lease just after its commit: wait for that too.
  EXPECT_TRUE(psa::test::waitFor([&] { return store->stats()->leased == 1u; }, 10s))
      << store->stats()->leased;
}

TEST(StoreSecurity, SwappedRowsAreDetected) {
  psa::test::TempDir dir;
  std::string a, b;
  {
    auto store = openOk(optionsIn(dir));
    a = appendOne(*store, "alpha");
    b = appendOne(*store, "bravo");
  }
  {
    RawDb raw(dir / "queue.db");
    const std::string sa = raw.queryBlob("SELECT sealed FROM queue WHERE msg_id='" + a + "'");
    const std::string sb = raw.queryBlob("SELECT sealed FROM queue WHERE msg_id='" + b + "'");
    raw.setBlob("UPDATE queue SET sealed=?1 WHERE msg_id='" + a + "'", sb);
    raw.setBlob("UPDATE queue SET sealed=?1 WHERE msg_id='" + b + "'", sa);
  }
  auto store = openOk(optionsIn(dir));
  EXPECT_TRUE(leaseOk(*store, 10).empty());
  EXPECT_TRUE(store->reveal(a).error().is(Errc::crypto));
  EXPECT_TRUE(store->reveal(b).error().is(Errc::crypto));
  ASSERT_TRUE(psa::test::waitFor([&] { return store->stats()->dead == 2; }, 10s));
}

TEST(StoreSecurity, WrongKeyFileIsRefused) {
  psa::test::TempDir dir, other;
  {
    auto store = openOk(optionsIn(dir));
    appendOne(*store, "x");
  }
  { auto store = openOk(optionsIn(other)); }
  testing::copyPrivate(other / "queue.key", dir / "queue.key");
  auto r = SqliteStore::open(optionsIn(dir));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::key_file));
  EXPECT_EQ(r.error().message, "key file " + (dir / "queue.key").string() +
                                   " does not match database " + (dir / "queue.db").string() +
                                   ": key 1 differs; restore the matching key file from backup");
}

TEST(StoreSecurity, MissingKeyFileWithSealedRowsIsRefused) {
  psa::test::TempDir dir;
  {
    auto store = openOk(optionsIn(dir));
    for (int i = 0; i < 3; ++i) {
      appendOne(*store, "r");
    }
  }
  fs::remove(dir / "queue.key");
  auto r = SqliteStore::open(optionsIn(dir));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::key_file));
  EXPECT_EQ(r.error().message, "key file " + (dir / "queue.key").string() +
                                   " is missing but database " + (dir / "queue.db").string() +
                                   " has 3 sealed records; restore the key file from backup (a "
                                   "new key cannot decrypt them)");
  EXPECT_FALSE(fs::exists(dir / "queue.key")) << "no new key is invented";
}

TEST(StoreSecurity, MissingKeyFileWithEmptyDatabaseCreatesOne) {
  psa::test::TempDir dir;
  {
    auto store = openOk(optionsIn(dir));
    appendOne(*store, "r");
    auto l = leaseOk(*store, 1);
    ASSERT_TRUE(ackSync(*store, seqsOf(l)).ok());
  }
  fs::remove(dir / "queue.key");
  auto store = openOk(optionsIn(dir));
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->openReport().key_created);
  EXPECT_EQ(store->stats()->current_key_id, 2u) << "key ids are never reused";
  const std::string id = appendOne(*store, "new");
  EXPECT_EQ(store->reveal(id)->reveal(), "new");
}

TEST(StoreSecurity, MalformedKeyFileNamesTheLine) {
  psa::test::TempDir dir;
  const fs::path key = dir / "queue.key";
  // Written as the store writes key files (private to this user), so only the content is wrong.
  auto writeKey = [&](std::string_view text) {
    ASSERT_TRUE(os::writeFileDurably(key, text, os::FileAccess::owner_only).ok());
  };
  writeKey("# comment\nkey 1 abcd\n");
  auto r = SqliteStore::open(optionsIn(dir));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::key_file));
  EXPECT_EQ(r.error().message,
            "key file " + key.string() + " line 2: key must be 64 hex digits (32 bytes)");
  writeKey("secret\n");
  r = SqliteStore::open(optionsIn(dir));
  EXPECT_EQ(r.error().message,
            "key file " + key.string() + " line 1: expected 'key <id> <64 hex digits>'");
  writeKey("# nothing\n");
  r = SqliteStore::open(optionsIn(dir));
  EXPECT_EQ(r.error().message, "key file " + key.string() + " contains no keys");
}

TEST(StoreSecurity, RotationKeepsOldRecordsReadableAndDropsUnusedKey) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  const std::string old_id = appendOne(*store, "sealed with key 1");
  AppendBatch wm;
  wm.watermarks.push_back({"poller", "cursor", "c-1"});
  ASSERT_TRUE(store->appendSync(std::move(wm)).ok());

  auto rotated = store->rotateKey();
  ASSERT_TRUE(rotated.ok()) << rotated.error().describe();
  EXPECT_EQ(*rotated, 2u);
  EXPECT_EQ(keyLines(dir / "queue.key"), 2u);
  EXPECT_TRUE(testing::isPrivateFile(dir / "queue.key"));
  const std::string new_id = appendOne(*store, "sealed with key 2");
  EXPECT_EQ(store->show(old_id)->key_id, 1u);
  EXPECT_EQ(store->show(new_id)->key_id, 2u);
  EXPECT_EQ(store->watermark("poller", "cursor")->value(), "c-1") << "re-sealed under key 2";
  EXPECT_EQ(store->stats()->key_count, 2u);
  EXPECT_EQ(store->stats()->current_key_id, 2u);

  auto l = leaseOk(*store, 10);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].record.payload.reveal(), "sealed with key 1");
  EXPECT_EQ(l[1].record.payload.reveal(), "sealed with key 2");

  // Key 1 is still needed until its last record is delivered.
  store->close();
  store = openOk(optionsIn(dir));
  EXPECT_EQ(store->stats()->key_count, 2u);
  auto again = leaseOk(*store, 10);
  ASSERT_EQ(again.size(), 2u);
  ASSERT_TRUE(ackSync(*store, {again[0].seq}).ok());
  ASSERT_TRUE(psa::test::waitFor([&] { return store->stats()->key_count == 1; }, 10s));
  EXPECT_EQ(keyLines(dir / "queue.key"), 1u);
  EXPECT_NE(testing::keyFileText(dir / "queue.key").find("\nkey 2 "), std::string::npos);
  EXPECT_EQ(store->reveal(new_id)->reveal(), "sealed with key 2");
  store->close();
  store = openOk(optionsIn(dir));
  EXPECT_EQ(store->watermark("poller", "cursor")->value(), "c-1");
  EXPECT_EQ(store->rotateKey().value(), 3u);
}

TEST(StoreSecurity, DedupeRecognisesIdentitiesAcrossRotation) {
  psa::test::TempDir dir;
  auto store = openOk(optionsIn(dir));
  const std::string first = appendOne(*store, "m", "sender|42");
  ASSERT_TRUE(store->rotateKey().ok());
  EXPECT_EQ(appendOne(*store, "m", "sender|42"), first);
  EXPECT_EQ(store->stats()->pending, 1u);
}

TEST(StoreSecurity, DedupeIndexHoldsNoIdentity) {
  psa::test::TempDir dir;
  {
    auto store = openOk(optionsIn(dir));
    appendOne(*store, "m", "SENDER-IDENTITY-123");
  }
  RawDb raw(dir / "queue.db");
  EXPECT_EQ(raw.queryInt("SELECT length(mac) FROM dedupe"), 32);
  EXPECT_TRUE(psa::test::filesContaining(dir.path(), "SENDER-IDENTITY-123").empty());
}

TEST(StoreSecurity, PhiMarkerNeverReachesDiskOrLogs) {
  psa::test::TempDir dir;
  const std::string marker = psa::test::uniqueMarker();
  auto o = optionsIn(dir);
  auto store = openOk(o);
  for (int i = 0; i < 50; ++i) {
    AppendBatch b;
    Record r = makeRecord("PID|1||" + marker + "^" + std::to_string(i) + "||" + marker);
    r.dedupe_identity = Sensitive<std::string>(marker + std::to_string(i));
    b.records.push_back(std::move(r));
    b.dead.push_back({makeRecord("bad " + marker), "MSH-9 missing"});
    b.watermarks.push_back({"poller", "cursor-" + marker, "after " + marker});
    ASSERT_TRUE(store->appendSync(std::move(b)).ok());
  }
  auto l = leaseOk(*store, 100);
  ASSERT_EQ(l.size(), 50u);
  ASSERT_TRUE(ackSync(*store, {l[0].seq, l[1].seq}).ok());
  ASSERT_TRUE(testing::deadSync(*store, l[2].seq, "puback 0x99").ok());
  ASSERT_TRUE(testing::nackSync(*store, l[3].seq, 1s, "puback 0x97").ok());
  ASSERT_TRUE(store->rotateKey().ok());
  // While running: database, WAL and SHM.
  EXPECT_TRUE(fs::exists(dir / "queue.db-wal"));
  EXPECT_TRUE(psa::test::filesContaining(dir.path(), marker).empty());
  store->close();  // checkpoint into the main file
  EXPECT_TRUE(psa::test::filesContaining(dir.path(), marker).empty());
  for (const std::string& line : log::recentLines(2000)) {
    EXPECT_EQ(line.find(marker), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace psa::store

namespace psa::store {
namespace {

TEST(StoreSecurity, ExportedKeysImportedBesideACopiedQueueDecryptIt) {
  psa::test::TempDir a;
  psa::test::TempDir b;
  std::string id;
  {
    auto store = testing::openOk(testing::optionsIn(a));
    ASSERT_TRUE(store);
    id = testing::appendOne(*store, "moved record");
  }
  auto text = SqliteStore::exportKeys(a / "queue.key");
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_NE(text->reveal().find("\nkey 1 "), std::string::npos);
  testing::copyPrivate(a / "queue.db", b / "queue.db");
  ASSERT_TRUE(SqliteStore::importKeys(b / "queue.key", text->reveal(), "keys.txt").ok());
  EXPECT_TRUE(testing::isPrivateFile(b / "queue.key"));
  auto store = testing::openOk(testing::optionsIn(b));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->reveal(id)->reveal(), "moved record");
  const Status bad = SqliteStore::importKeys(b / "other.key", "key 1 zz\n", "keys.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "keys.txt line 1: key must be 64 hex digits (32 bytes)");
}

}  // namespace
}  // namespace psa::store
