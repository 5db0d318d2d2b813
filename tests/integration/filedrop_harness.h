// Shared pieces of the file-drop integration tests: a temp layout (state dir + drop folder),
// the agent config with one `file-drop` adapter, and a reader that opens the agent's store
// after the agent stopped and returns every queued record (payload decrypted), every dead
// letter and the adapter's watermarks.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "agent_fixture.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::test {

namespace fs = std::filesystem;

/// A state dir and a drop folder (outside the state dir, so PHI scans of the state dir do
/// not see the dropped files themselves).
struct DropEnv {
  explicit DropEnv(std::string_view prefix = "psa-filedrop") : tmp(prefix) {
    fs::create_directories(inbox);
  }
  TempDir tmp;
  fs::path state = tmp / "state";
  fs::path inbox = tmp / "inbox";

  /// One file-drop adapter named "drop" on `inbox`, quick completeness timing; `overrides`
  /// (a JSON object text) replaces or adds keys.
  json::Value adapter(std::string_view overrides = "{}") const {
    auto a = *json::parse(R"({"name":"drop","type":"file-drop","vendor":"generic",)"
                          R"("stable_ms":150,"poll_interval_ms":50})");
    a.set("path", json::Value::string(inbox.string()));
    auto o = json::parse(overrides);
    EXPECT_TRUE(o.ok()) << overrides;
    if (o) {
      for (auto& [k, v] : o->members()) {
        a.set(k, v);
      }
    }
    return a;
  }

  /// The whole agent config with `adapters`.
  json::Value config(std::vector<json::Value> adapters) const {
    auto doc = *json::parse(
        R"({"agent":{"id":"practice-0001","tenant":"test-tenant","log_level":"debug"}})");
    json::Value list = json::Value::array();
    for (auto& a : adapters) {
      list.push(std::move(a));
    }
    doc.set("adapters", std::move(list));
    return doc;
  }

  fs::path archive() const { return inbox / "archive"; }
  fs::path error() const { return inbox / "error"; }
};

/// Every regular file under `root` named `name` (recursive).
inline std::vector<fs::path> findNamed(const fs::path& root, const std::string& name) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    return out;
  }
  for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
    if (e.is_regular_file(ec) && e.path().filename() == name) {
      out.push_back(e.path());
    }
  }
  return out;
}

/// Waits until `name` is in the archive tree (and gone from the inbox).
inline bool waitArchived(const DropEnv& env, const std::string& name,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return waitFor(
      [&] { return !fs::exists(env.inbox / name) && !findNamed(env.archive(), name).empty(); },
      timeout);
}

/// Waits until `name` and `name.error.txt` are in the error dir (and `name` left the inbox).
inline bool waitInError(const DropEnv& env, const std::string& name,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  return waitFor(
      [&] {
        return !fs::exists(env.inbox / name) && fs::exists(env.error() / name) &&
               fs::exists(env.error() / (name + ".error.txt"));
      },
      timeout);
}

/// Counts occurrences of `needle` in the agent's log.
inline size_t countInLog(const AgentProcess& agent, std::string_view needle) {
  const std::string log = agent.log();
  size_t n = 0;
  for (size_t pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

/// What the agent stored, read with the real store after the agent stopped.
struct Stored {
  struct Dead {
    store::RecordInfo info;
    std::string payload;
  };
  std::vector<store::Record> records;  ///< queued records in msg_id (ingest) order
  std::vector<Dead> dead;
  std::map<std::string, std::string> watermarks;  ///< of scope "drop"

  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const auto& r : records) {
      out.push_back(r.payload.reveal());
    }
    return out;
  }
};

inline Stored readStore(const fs::path& state_dir, const std::string& scope = "drop") {
  Stored out;
  store::StoreOptions o;
  o.db_path = state_dir / "queue.db";
  o.key_file = state_dir / "queue.key";
  auto opened = store::SqliteStore::open(std::move(o));
  EXPECT_TRUE(opened.ok()) << (opened ? "" : opened.error().describe());
  if (!opened) {
    return out;
  }
  auto& s = **opened;
  for (;;) {
    std::promise<Result<std::vector<store::Leased>>> p;
    auto f = p.get_future();
    s.lease(2000, [&p](Result<std::vector<store::Leased>> r) { p.set_value(std::move(r)); });
    auto batch = f.get();
    EXPECT_TRUE(batch.ok());
    if (!batch || batch->empty()) {
      break;
    }
    for (auto& l : *batch) {
      out.records.push_back(std::move(l.record));
    }
  }
  int64_t after = 0;
  for (;;) {
    auto page = s.list(store::ListFilter::dead, after, 500);
    EXPECT_TRUE(page.ok());
    if (!page || page->empty()) {
      break;
    }
    for (auto& info : *page) {
      after = info.seq;
      auto payload = s.reveal(info.msg_id);
      out.dead.push_back(Stored::Dead{info, payload ? payload->reveal() : std::string()});
    }
  }
  if (auto w = s.watermarks(scope)) {
    out.watermarks = std::move(w).value();
  }
  s.close();
  return out;
}

}  // namespace psa::test
