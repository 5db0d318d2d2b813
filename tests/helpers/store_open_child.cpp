// Opens and closes the store in DIR (queue.db + queue.key), as an agent start does: the schema
// migrations run. Tests kill it while it migrates (tests/crash/store_migration_crash_test.cpp).
//
//   store_open_child DIR      exit 0 after a clean open and close, 4 when open fails
#include <cstdio>
#include <string>

#include "psa/store/sqlite_store.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: store_open_child DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  psa::store::StoreOptions o;
  o.db_path = dir + "/queue.db";
  o.key_file = dir + "/queue.key";
  auto opened = psa::store::SqliteStore::open(o);
  if (!opened) {
    std::fprintf(stderr, "open failed: %s\n", opened.error().describe().c_str());
    return 4;
  }
  (*opened)->close();
  return 0;
}
