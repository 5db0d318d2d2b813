// Thin RAII wrappers over sqlite3 / sqlite3_stmt for the store. Private to psa::store.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "psa/store/result.h"

namespace psa::store {

/// Maps an SQLite result code to our error classes (SQLITE_FULL -> full, CORRUPT/NOTADB ->
/// corrupt, everything else environmental -> io).
Errc errcForSqlite(int rc);

class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    if (this != &o) {
      sqlite3_finalize(s_);
      s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  explicit operator bool() const { return s_ != nullptr; }
  sqlite3_stmt* get() const { return s_; }

  // Binds never copy: the caller keeps the data alive until reset().
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bindText(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bindBlob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s_, i, n == 0 ? "" : p, static_cast<int>(n), SQLITE_STATIC);
    return *this;
  }
  Stmt& bindBlob(int i, std::string_view v) { return bindBlob(i, v.data(), v.size()); }
  Stmt& bindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }

  /// SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_); }
  /// Ends the statement (and its implicit read transaction) and clears bindings.
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool isNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)));
  }
  std::string_view blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p == nullptr ? std::string_view() : std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, col)));
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

/// Resets a statement when leaving scope, so no read transaction outlives its use.
class StmtScope {
 public:
  explicit StmtScope(Stmt& s) : s_(s) {}
  ~StmtScope() { s_.reset(); }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  Stmt& s_;
};

class Db {
 public:
  Db() = default;
  ~Db() { close(); }
  Db(Db&& o) noexcept : db_(std::exchange(o.db_, nullptr)) {}
  Db& operator=(Db&& o) noexcept {
    if (this != &o) {
      close();
      db_ = std::exchange(o.db_, nullptr);
    }
    return *this;
  }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  /// Opens with SQLITE_OPEN_NOMUTEX: each connection is used by one thread at a time.
  static Result<Db> open(const std::filesystem::path& path, bool read_only = false);
  void close();

  sqlite3* get() const { return db_; }
  explicit operator bool() const { return db_ != nullptr; }

  /// Runs one or more statements; returns the SQLite result code.
  int exec(const char* sql);
  /// Runs and converts a failure to an Error naming `what`.
  Status run(const char* sql, std::string_view what);
  /// Prepares a statement meant to be cached (SQLITE_PREPARE_PERSISTENT).
  Result<Stmt> prepare(std::string_view sql);
  /// The Error for result code `rc` from this connection, prefixed with `what`.
  Error error(int rc, std::string_view what) const;
  /// Single integer result of `sql` (e.g. a PRAGMA); nullopt-like via Result.
  Result<int64_t> queryInt(const char* sql);
  bool inTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  int64_t changes() const { return sqlite3_changes64(db_); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

}  // namespace psa::store
