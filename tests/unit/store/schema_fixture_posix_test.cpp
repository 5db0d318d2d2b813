// Every committed store fixture (tests/data/store/v<N>/queue.db, written by an earlier release:
// tests/support/store_fixtures.h) opens with this code, migrates to the latest schema, and
// still holds and delivers everything it held: pending and retrying records byte for byte,
// dead letters, watermarks, dedupe identities, a verifying audit chain. POSIX-only because the
// fixtures are read from the source tree.
#include <gtest/gtest.h>

#include <set>

#include "store_fixtures.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store::testing {
namespace {

namespace fx = psa::test::store_fixture;
namespace fs = std::filesystem;

std::vector<fs::path> fixtures() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(PSA_SOURCE_DIR) / "tests/data/store")) {
    if (fs::exists(e.path() / "queue.db")) {
      out.push_back(e.path() / "queue.db");
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t metaInt(const fs::path& db, const std::string& key) {
  RawDb raw(db);
  return raw.queryInt("SELECT v FROM meta WHERE k='" + key + "'");
}

// A copy of the fixture with the fixture key, in `dir`.
StoreOptions copyFixture(const fs::path& fixture, const psa::test::TempDir& dir) {
  StoreOptions o = optionsIn(dir);
  copyPrivate(fixture, o.db_path);
  EXPECT_TRUE(SqliteStore::importKeys(o.key_file, fx::kKeyFileText, "fixture key").ok());
  return o;
}

TEST(SchemaFixture, EveryFixtureIsCommitted) { EXPECT_FALSE(fixtures().empty()); }

TEST(SchemaFixture, EachOldDatabaseMigratesAndDeliversEverythingItHeld) {
  psa::test::TempDir latest_dir;
  const int64_t latest = [&] {
    auto s = openOk(optionsIn(latest_dir));
    return s->stats()->schema_level;
  }();
  for (const fs::path& fixture : fixtures()) {
    SCOPED_TRACE(fixture.string());
    psa::test::TempDir dir;
    StoreOptions o = copyFixture(fixture, dir);
    const int64_t from = std::max<int64_t>(metaInt(o.db_path, "schema_level"), 1);
    // The fixture's own time plus two hours: its retrying records are due, its dedupe
    // identities still inside the window.
    auto clock = std::make_shared<ManualClock>(metaInt(o.db_path, "created_at") + 2 * 3'600'000);
    o.clock = clock;
    auto s = openOk(o);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->stats()->schema_level, latest);
    EXPECT_EQ(metaInt(o.db_path, "schema_level"), latest);

    auto stats = s->stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->pending, fx::kPending);
    EXPECT_EQ(stats->dead, fx::kDead);

    auto wm = s->watermark(fx::kWatermarkScope, fx::kWatermarkKey);
    ASSERT_TRUE(wm.ok());
    EXPECT_EQ(wm->value_or(""), fx::kWatermarkValue);

    std::vector<Leased> leased = leaseOk(*s, 1000);
    ASSERT_EQ(leased.size(), fx::kPending);
    std::set<std::string> expected;
    for (size_t n = fx::kDelivered; n < fx::kDelivered + fx::kPending; ++n) {
      expected.insert(fx::payload(n));
    }
    std::map<std::string, std::string> msg_id_of;  // payload -> msg_id
    for (const Leased& l : leased) {
      EXPECT_EQ(expected.erase(l.record.payload.reveal()), 1u);
      msg_id_of[l.record.payload.reveal()] = l.record.msg_id;
    }
    EXPECT_TRUE(expected.empty());

    // The dedupe index survived: an identity it holds is answered with the original msg_id.
    Record again = makeRecord("resent");
    again.dedupe_identity = Sensitive<std::string>(fx::identity(fx::kDelivered + 5));
    std::vector<Record> rs;
    rs.push_back(std::move(again));
    auto dup = s->appendSync(batchOf(std::move(rs)));
    ASSERT_TRUE(dup.ok());
    EXPECT_TRUE(dup->records.at(0).duplicate);
    EXPECT_EQ(dup->records.at(0).msg_id, msg_id_of[fx::payload(fx::kDelivered + 5)]);

    ASSERT_TRUE(ackSync(*s, seqsOf(leased)).ok());
    EXPECT_EQ(s->stats()->pending, 0u);

    auto verified = s->verifyAudit();
    ASSERT_TRUE(verified.ok());
    EXPECT_TRUE(verified->ok) << verified->problem;
    if (from < latest) {
      auto entries = s->auditEntries(0, 1000);
      ASSERT_TRUE(entries.ok());
      bool migrated = false;
      for (const AuditEntry& e : *entries) {
        migrated =
            migrated || (e.action == "store.migrated" &&
                         e.detail.find("\"from\":" + std::to_string(from)) != std::string::npos);
      }
      EXPECT_TRUE(migrated);
    }
  }
}

TEST(SchemaFixture, ReadOnlyOpenReadsAnOldDatabaseWithoutMigratingIt) {
  for (const fs::path& fixture : fixtures()) {
    SCOPED_TRACE(fixture.string());
    psa::test::TempDir dir;
    StoreOptions o = copyFixture(fixture, dir);
    const int64_t from = std::max<int64_t>(metaInt(o.db_path, "schema_level"), 1);
    o.read_only = true;
    auto s = openOk(o);
    ASSERT_NE(s, nullptr);
    auto stats = s->stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->pending, fx::kPending);
    EXPECT_EQ(stats->dead, fx::kDead);
    EXPECT_EQ(stats->schema_level, from);
    s->close();
    EXPECT_EQ(std::max<int64_t>(metaInt(o.db_path, "schema_level"), 1), from);
  }
}

}  // namespace
}  // namespace psa::store::testing
