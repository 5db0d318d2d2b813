// Schema migrations survive a crash: a store opening the v1 fixture (tests/data/store/v1) dies
// inside a migration's transaction (an injected fault after its SQL, or after the version bump)
// or is SIGKILLed at random moments of its open; each time the next open finishes the
// migration, and the records, dead letters and version are all there.
#include <gtest/gtest.h>
#include <signal.h>

#include <random>

#include "psa/store/sqlite_store.h"
#include "store_fixtures.h"
#include "test_support.h"

namespace psa::store {
namespace {

using namespace std::chrono_literals;
namespace fx = psa::test::store_fixture;
namespace fs = std::filesystem;

const fs::path kFixture = fs::path(PSA_SOURCE_DIR) / "tests/data/store/v1/queue.db";

void freshCopy(const psa::test::TempDir& dir) {
  fs::remove(dir / "queue.db-wal");
  fs::remove(dir / "queue.db-shm");
  fs::copy_file(kFixture, dir / "queue.db", fs::copy_options::overwrite_existing);
  fs::remove(dir / "queue.key");
  ASSERT_TRUE(SqliteStore::importKeys(dir / "queue.key", fx::kKeyFileText, "fixture key").ok());
}

// Runs store_open_child on `dir`; its exit status (nullopt: still running after `timeout`).
std::optional<int> openChild(const psa::test::TempDir& dir, const std::string& fault,
                             std::chrono::milliseconds timeout = 30s) {
  psa::test::Process::Options po;
  po.argv = {psa::test::binary("store_open_child").string(), dir.path().string()};
  if (!fault.empty()) {
    po.env["PSA_TEST_FAULT"] = fault;
  }
  po.stdout_file = dir / "child.log";
  psa::test::Process child(std::move(po));
  return child.wait(timeout);
}

struct Seen {
  int64_t version = 0;
  uint64_t pending = 0;
  uint64_t dead = 0;
};

Seen inspect(const psa::test::TempDir& dir) {
  StoreOptions o;
  o.db_path = dir / "queue.db";
  o.key_file = dir / "queue.key";
  o.read_only = true;
  auto s = SqliteStore::open(o);
  EXPECT_TRUE(s.ok()) << (s ? "" : s.error().describe());
  if (!s) {
    return {};
  }
  auto stats = (*s)->stats();
  (*s)->close();
  EXPECT_TRUE(stats.ok());
  Seen seen;
  if (stats) {
    seen.version = stats->schema_level;
    seen.pending = stats->pending;
    seen.dead = stats->dead;
  }
  return seen;
}

int64_t latestVersion() {
  psa::test::TempDir dir("psa-migrate");
  EXPECT_EQ(openChild(dir, ""), 0);  // creates a new store at the latest version
  return inspect(dir).version;
}

TEST(StoreMigrationCrash, DeathInsideTheMigrationKeepsTheOldVersionAndTheNextOpenFinishes) {
  const int64_t latest = latestVersion();
  ASSERT_GT(latest, 1);
  for (const char* point : {"store.migration.applied", "store.migration.versioned"}) {
    SCOPED_TRACE(point);
    psa::test::TempDir dir("psa-migrate");
    freshCopy(dir);
    const auto died = openChild(dir, point);
    ASSERT_TRUE(died.has_value());
    EXPECT_NE(*died, 0) << psa::test::readFile(dir / "child.log");
    Seen seen = inspect(dir);
    EXPECT_EQ(seen.version, 1);  // the migration's transaction never committed
    EXPECT_EQ(seen.pending, fx::kPending);

    EXPECT_EQ(openChild(dir, ""), 0) << psa::test::readFile(dir / "child.log");
    seen = inspect(dir);
    EXPECT_EQ(seen.version, latest);
    EXPECT_EQ(seen.pending, fx::kPending);
    EXPECT_EQ(seen.dead, fx::kDead);
  }
}

TEST(StoreMigrationCrash, SigkillAtRandomMomentsOfTheOpenNeverLosesARecord) {
  const int64_t latest = latestVersion();
  std::mt19937 rng(std::random_device{}());
  psa::test::TempDir dir("psa-migrate");
  for (int round = 0; round < 16; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    freshCopy(dir);
    {
      psa::test::Process::Options po;
      po.argv = {psa::test::binary("store_open_child").string(), dir.path().string()};
      po.stdout_file = dir / "child.log";
      psa::test::Process child(std::move(po));
      // A random moment of the open: before, during or after the migration.
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 30'000));
      child.signal(SIGKILL);
      child.wait(10s);
    }
    ASSERT_EQ(openChild(dir, ""), 0) << psa::test::readFile(dir / "child.log");
    const Seen seen = inspect(dir);
    EXPECT_EQ(seen.version, latest);
    EXPECT_EQ(seen.pending, fx::kPending);
    EXPECT_EQ(seen.dead, fx::kDead);
  }
}

}  // namespace
}  // namespace psa::store
