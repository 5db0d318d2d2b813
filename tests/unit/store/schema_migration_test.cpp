// Schema versions and migrations (store/src/schema_migrations.h) on real database files: a new
// store is at the latest version, the versions a database records decide whether this code may
// open it, and a store opened beside a newer release's database uses it without rewriting it.
#include <gtest/gtest.h>

#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store::testing {
namespace {

// The level this build writes: one more than the number of migrations after level 1.
int64_t latestOf(const StoreOptions& o) {
  auto s = openOk(o);
  const int64_t level = s->stats()->schema_level;
  s->close();
  RawDb raw(o.db_path);
  EXPECT_EQ(raw.queryInt("SELECT v FROM meta WHERE k='schema_level'"), level);
  return level;
}

TEST(SchemaMigration, NewStoreIsAtTheLatestLevelAndStillSchemaVersionOne) {
  psa::test::TempDir dir;
  const StoreOptions o = optionsIn(dir);
  const int64_t latest = latestOf(o);
  EXPECT_GE(latest, 2);
  RawDb raw(o.db_path);
  // Every migration so far is compatible: the release before migrations (which checks
  // schema_version == 1) still opens the database.
  EXPECT_EQ(raw.queryInt("SELECT v FROM meta WHERE k='schema_version'"), 1);
  // Every migration's object exists in a new database too: both paths end in one schema.
  EXPECT_EQ(raw.queryInt("SELECT count(*) FROM sqlite_master WHERE name='audit_checkpoints'"), 1);
}

TEST(SchemaMigration, NewerDatabaseWhoseMinReaderThisCodeMeetsOpensUnchanged) {
  psa::test::TempDir dir;
  const StoreOptions o = optionsIn(dir);
  const int64_t latest = latestOf(o);
  appendOne(*openOk(o), "before");
  {
    RawDb raw(o.db_path);
    raw.exec("UPDATE meta SET v=" + std::to_string(latest + 1) + " WHERE k='schema_level'");
    raw.exec("CREATE TABLE from_a_newer_release(x)");
  }
  auto s = openOk(o);
  ASSERT_NE(s, nullptr);
  appendOne(*s, "after");
  EXPECT_EQ(s->stats()->pending, 2u);
  s->close();
  RawDb raw(o.db_path);
  EXPECT_EQ(raw.queryInt("SELECT v FROM meta WHERE k='schema_level'"), latest + 1);
}

TEST(SchemaMigration, NewerDatabaseThisCodeCannotReadIsRefusedWithTheVersionItNeeds) {
  psa::test::TempDir dir;
  StoreOptions o = optionsIn(dir);
  const int64_t latest = latestOf(o);
  {
    RawDb raw(o.db_path);
    raw.exec("INSERT OR REPLACE INTO meta(k,v) VALUES('schema_level'," +
             std::to_string(latest + 2) + "),('schema_version'," + std::to_string(latest + 1) +
             ")");
  }
  for (bool read_only : {false, true}) {
    o.read_only = read_only;
    auto s = SqliteStore::open(o);
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.error().is(Errc::invalid_argument)) << s.error().describe();
    EXPECT_NE(s.error().message.find("needs an agent that understands level " +
                                     std::to_string(latest + 1)),
              std::string::npos)
        << s.error().message;
  }
  // Refused, never moved aside as if corrupt: the newer release can still use it.
  EXPECT_TRUE(std::filesystem::exists(o.db_path));
  RawDb raw(o.db_path);
  EXPECT_EQ(raw.queryInt("SELECT v FROM meta WHERE k='schema_level'"), latest + 2);
}

TEST(SchemaMigration, MissingVersionIsRefusedNotMovedAside) {
  psa::test::TempDir dir;
  const StoreOptions o = optionsIn(dir);
  latestOf(o);
  {
    RawDb raw(o.db_path);
    raw.exec("DELETE FROM meta WHERE k='schema_version'");
  }
  auto s = SqliteStore::open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no schema_version"), std::string::npos) << s.error().message;
  EXPECT_TRUE(std::filesystem::exists(o.db_path));
}

}  // namespace
}  // namespace psa::store::testing
