#include "sqlite_db.h"

#include "psa/store/os/utf8_path.h"

namespace psa::store {

Errc errcForSqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
      return Errc::ok;
    case SQLITE_FULL:
      return Errc::full;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Errc::corrupt;
    case SQLITE_NOMEM:
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_INTERNAL:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_ERROR:
      return Errc::internal;
    default:
      return Errc::io;
  }
}

Result<Db> Db::open(const std::filesystem::path& path, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(os::pathToUtf8(path).c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open database " + path.string() + ": " +
                      (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return Error(errcForSqlite(rc) == Errc::internal ? Errc::io : errcForSqlite(rc), msg);
  }
  sqlite3_extended_result_codes(db, 1);
  return Db(db);
}

void Db::close() {
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

int Db::exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

Status Db::run(const char* sql, std::string_view what) {
  const int rc = exec(sql);
  if (rc != SQLITE_OK) {
    return error(rc, what);
  }
  return {};
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    return error(rc, "prepare");
  }
  return Stmt(s);
}

Error Db::error(int rc, std::string_view what) const {
  Errc code = errcForSqlite(rc);
  if (code == Errc::ok) {
    code = Errc::internal;
  }
  std::string msg(what);
  msg += ": ";
  msg += code == Errc::full ? "database or disk is full" : (db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
  msg += " (sqlite " + std::to_string(rc) + ")";
  return Error(code, std::move(msg));
}

Result<int64_t> Db::queryInt(const char* sql) {
  auto st = prepare(sql);
  if (!st) {
    return std::move(st).error();
  }
  const int rc = st->step();
  if (rc == SQLITE_ROW) {
    return st->i64(0);
  }
  if (rc == SQLITE_DONE) {
    return int64_t{0};
  }
  return error(rc, sql);
}

}  // namespace psa::store
