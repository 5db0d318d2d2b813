// The key file's protection on POSIX: a key file group or others may read or write is refused,
// with the chmod that fixes it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "psa/store/sqlite_store.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa::store {
namespace {

using testing::openOk;
using testing::optionsIn;
namespace fs = std::filesystem;

TEST(StoreSecurity, GroupReadableKeyFileIsRefused) {
  psa::test::TempDir dir;
  { auto store = openOk(optionsIn(dir)); }
  const fs::path key = dir / "queue.key";
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto r = SqliteStore::open(optionsIn(dir));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::key_file));
  EXPECT_EQ(r.error().message, "key file " + key.string() +
                                   " is readable by group/others (mode 0644); run: chmod 600 " +
                                   key.string());
  ASSERT_EQ(::chmod(key.c_str(), 0620), 0);
  r = SqliteStore::open(optionsIn(dir));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "key file " + key.string() +
                                   " is writable by group/others (mode 0620); run: chmod 600 " +
                                   key.string());
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  EXPECT_TRUE(SqliteStore::open(optionsIn(dir)).ok());
}

}  // namespace
}  // namespace psa::store
