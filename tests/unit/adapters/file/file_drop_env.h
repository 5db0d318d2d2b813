// Shared by the file-drop unit tests: a real SqliteStore and an inbox in a temp dir, and the
// adapter's config around that inbox.
#pragma once

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <string>

#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace file_drop_test {

namespace fs = std::filesystem;
namespace json = psa::json;

inline const std::string kBase =
    R"("name":"ecw-export","type":"file-drop","vendor":"eclinicalworks")";

struct Env {
  psa::test::TempDir tmp{"psa-fdsrc"};
  fs::path inbox = tmp / "inbox";
  boost::asio::io_context io;
  psa::store::SqliteStorePtr store;
  Env() {
    fs::create_directories(inbox);
    psa::store::StoreOptions o;
    o.db_path = tmp / "queue.db";
    o.key_file = tmp / "queue.key";
    store = std::move(psa::store::SqliteStore::open(std::move(o))).value();
  }
  json::Value config(const std::string& extra = "") const {
    return *json::parse(
        "{" + kBase +
        R"(,"format":"csv","kind":"patient","stable_ms":100,"poll_interval_ms":50,"path":")" +
        inbox.generic_string() + "\"" + extra + "}");
  }
};

}  // namespace file_drop_test
