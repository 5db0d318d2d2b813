// Helpers shared by the store unit tests: a manual clock, record builders, blocking wrappers
// around the asynchronous QueueReader calls, and raw SQLite access for tampering with files.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <future>
#include <string>
#include <vector>

#include "psa/store/os/durable_file.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::store::testing {

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'790'000'000'000) : ms_(start_ms) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  std::chrono::steady_clock::time_point steady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<int64_t> ms_;
};

inline StoreOptions optionsIn(const psa::test::TempDir& dir) {
  StoreOptions o;
  o.db_path = dir / "queue.db";
  o.key_file = dir / "queue.key";
  return o;
}

inline Record makeRecord(std::string payload, Kind kind = Kind::patient,
                         std::string source = "cerner-adt") {
  Record r;
  r.source = std::move(source);
  r.vendor = "cerner";
  r.kind = kind;
  r.format = std::string(format::kHl7v2);
  r.payload = Sensitive<std::string>(std::move(payload));
  return r;
}

inline AppendBatch batchOf(std::vector<Record> records) {
  AppendBatch b;
  b.records = std::move(records);
  return b;
}

/// Appends one record and returns its msg_id (fails the test on error).
inline std::string appendOne(SqliteStore& store, std::string payload,
                             std::optional<std::string> identity = std::nullopt,
                             Kind kind = Kind::patient) {
  Record r = makeRecord(std::move(payload), kind);
  if (identity) {
    r.dedupe_identity = Sensitive<std::string>(*identity);
  }
  std::vector<Record> rs;
  rs.push_back(std::move(r));
  auto res = store.appendSync(batchOf(std::move(rs)));
  EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().describe());
  return res.ok() ? res->records.at(0).msg_id : std::string();
}

inline Result<std::vector<Leased>> leaseSync(QueueReader& q, size_t max) {
  std::promise<Result<std::vector<Leased>>> p;
  auto f = p.get_future();
  q.lease(max, [&p](Result<std::vector<Leased>> r) { p.set_value(std::move(r)); });
  return f.get();
}

inline std::vector<Leased> leaseOk(QueueReader& q, size_t max) {
  auto r = leaseSync(q, max);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? std::move(r).value() : std::vector<Leased>{};
}

template <class Fn>
Status statusSync(Fn&& call) {
  std::promise<Status> p;
  auto f = p.get_future();
  call([&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

inline Status ackSync(QueueReader& q, std::vector<int64_t> seqs) {
  return statusSync([&](StatusCallback cb) { q.ack(std::move(seqs), std::move(cb)); });
}
inline Status nackSync(QueueReader& q, int64_t seq, std::chrono::milliseconds after,
                       std::string reason) {
  return statusSync(
      [&](StatusCallback cb) { q.nack(seq, after, std::move(reason), std::move(cb)); });
}
inline Status deadSync(QueueReader& q, int64_t seq, std::string reason) {
  return statusSync(
      [&](StatusCallback cb) { q.deadLetter(seq, std::move(reason), std::move(cb)); });
}
inline Status releaseSync(QueueReader& q) {
  return statusSync([&](StatusCallback cb) { q.releaseAll(std::move(cb)); });
}

inline std::vector<int64_t> seqsOf(const std::vector<Leased>& ls) {
  std::vector<int64_t> out;
  for (const auto& l : ls) {
    out.push_back(l.seq);
  }
  return out;
}

/// True when only the service's account and the administrators may use the file (POSIX mode
/// without group/other bits; Windows: the ACL), as the store requires of its key file.
inline bool isPrivateFile(const std::filesystem::path& p) {
  const os::SecretFileInfo info = os::describeSecretFile(p);
  return info.present && info.problem.empty();
}

/// The key file's text as the store wrote it, unsealed (DPAPI on Windows).
inline std::string keyFileText(const std::filesystem::path& p) {
  auto text = os::unsealSecretText(psa::test::readFile(p));
  EXPECT_TRUE(text.ok()) << (text ? "" : text.error().describe());
  return text ? *text : std::string();
}

/// Copies a store file keeping it private to this user, as the store writes its files (a plain
/// copy gets the folder's default access: on Windows under Wine, everyone's).
inline void copyPrivate(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::remove(to);
  ASSERT_TRUE(os::writeFileDurably(to, psa::test::readFile(from), os::FileAccess::owner_only).ok());
}

/// Opens a store and expects success (the error is printed otherwise).
inline SqliteStorePtr openOk(StoreOptions o) {
  auto s = SqliteStore::open(std::move(o));
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().describe());
  return s.ok() ? std::move(s).value() : nullptr;
}

/// Direct SQLite access to a (closed) store file, as a technician or attacker would have.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open(os::pathToUtf8(path).c_str(), &db_), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  int64_t queryInt(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
  }
  std::string queryBlob(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    std::string v;
    if (sqlite3_step(st) == SQLITE_ROW) {
      const auto* p = static_cast<const char*>(sqlite3_column_blob(st, 0));
      v.assign(p, static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    }
    sqlite3_finalize(st);
    return v;
  }
  void setBlob(const std::string& sql, const std::string& blob) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    sqlite3_bind_blob(st, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace psa::store::testing
