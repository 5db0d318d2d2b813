#include "schema_migrations.h"

#include <algorithm>

#include "psa/store/test_fault.h"

namespace psa::store::migrations {
namespace fs = std::filesystem;

namespace {

// Schema v1. Routing metadata is clear; payloads, dead-letter payloads and watermark values are
// sealed (AES-256-GCM); dedupe identities and watermark names are stored only as keyed HMACs.
// Large blobs come last in each row so the small columns stay on the first page of a row.
constexpr const char* kBaseSql = R"sql(
CREATE TABLE meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE keys(key_id INTEGER PRIMARY KEY, check_value BLOB NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE queue(
  seq INTEGER PRIMARY KEY,
  msg_id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  vendor TEXT NOT NULL,
  kind INTEGER NOT NULL,
  format TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  delivered_at INTEGER NOT NULL DEFAULT 0,
  reason TEXT,
  sealed BLOB NOT NULL);
CREATE INDEX queue_retry ON queue(next_attempt_at) WHERE state = 1;
CREATE INDEX queue_delivered ON queue(delivered_at) WHERE state = 2;
CREATE TABLE dead(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  msg_id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  vendor TEXT NOT NULL,
  kind INTEGER NOT NULL,
  format TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  key_id INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  origin TEXT NOT NULL,
  reason TEXT NOT NULL,
  dead_at INTEGER NOT NULL,
  sealed BLOB NOT NULL);
CREATE TABLE dedupe(mac BLOB PRIMARY KEY, msg_id TEXT NOT NULL, seen_at INTEGER NOT NULL,
                    key_id INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX dedupe_seen ON dedupe(seen_at);
CREATE TABLE watermarks(scope TEXT NOT NULL, name_mac BLOB NOT NULL, key_id INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL, sealed BLOB NOT NULL,
                        PRIMARY KEY(scope, name_mac)) WITHOUT ROWID;
CREATE TABLE audit(seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, actor TEXT NOT NULL,
                   action TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL,
                   hash TEXT NOT NULL);
)sql";

// Append only. Never edit a migration that has shipped: add the next one.
const std::vector<Migration> kMigrations = {
    // Finds the audit retention checkpoints without scanning the audit table. (Until this
    // migration the index was created on every open when missing; databases that have it
    // already are unchanged.)
    {2, "audit_checkpoint_index", true,
     "CREATE INDEX IF NOT EXISTS audit_checkpoints ON audit(seq) WHERE "
     "action='audit.checkpoint'"},
    // Write-back (issue 15): the outbound request queue and the results owed to the cloud
    // (psa/store/outbound_queue.h). Only adds tables, so the release before still opens it.
    {3, "outbound_queue", true,
     "CREATE TABLE outbound(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, target TEXT NOT "
     "NULL, op TEXT NOT NULL, kind TEXT NOT NULL, format TEXT NOT NULL, issued_at INTEGER NOT "
     "NULL, expires_at INTEGER NOT NULL, received_at INTEGER NOT NULL, state TEXT NOT NULL, "
     "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL DEFAULT 0, "
     "finished_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, size INTEGER NOT NULL, key_id "
     "INTEGER NOT NULL, order_mac BLOB, doc_mac BLOB NOT NULL, sealed BLOB NOT NULL, "
     "result_key_id INTEGER, result BLOB);"
     "CREATE INDEX outbound_queued ON outbound(target, issued_at, seq) WHERE state='queued';"
     "CREATE INDEX outbound_finished ON outbound(finished_at) WHERE state<>'queued';"
     "CREATE TABLE outbound_results(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, "
     "key_id INTEGER NOT NULL, sealed BLOB NOT NULL);"},
};

Status rollbackWith(Db& db, Status st) {
  db.exec("ROLLBACK");
  return st;
}

}  // namespace

const std::vector<Migration>& all() { return kMigrations; }

int64_t latestLevel() { return kMigrations.empty() ? 1 : kMigrations.back().level; }

Result<SchemaLevel> readLevel(Db& db) {
  auto min_reader = db.queryInt("SELECT coalesce((SELECT v FROM meta WHERE k='schema_version'),0)");
  if (!min_reader) {
    return std::move(min_reader).error();
  }
  if (*min_reader <= 0) {
    return Error(Errc::invalid_argument, "the database's meta table has no schema_version");
  }
  auto level = db.queryInt("SELECT coalesce((SELECT v FROM meta WHERE k='schema_level'),1)");
  if (!level) {
    return std::move(level).error();
  }
  return SchemaLevel{std::max(*level, *min_reader), *min_reader};
}

Status checkUsable(const SchemaLevel& level, const fs::path& db_path) {
  const int64_t latest = latestLevel();
  if (level.level <= latest || level.min_reader <= latest) {
    return {};
  }
  return Error(Errc::invalid_argument,
               "database " + db_path.string() + " has schema level " + std::to_string(level.level) +
                   " and needs an agent that understands level " +
                   std::to_string(level.min_reader) + " or newer; this agent understands up to " +
                   std::to_string(latest) +
                   " (install the release that wrote it, or restore the database from before it "
                   "was upgraded)");
}

Status createBase(Db& db, int64_t now_ms) {
  PSA_TRY(db.run("BEGIN IMMEDIATE", "begin schema"));
  Status st = db.run(kBaseSql, "create schema");
  if (st) {
    const std::string meta =
        "INSERT INTO meta(k,v) VALUES('schema_version',1),('schema_level',1),('created_at'," +
        std::to_string(now_ms) + ")";
    st = db.run(meta.c_str(), "write meta");
  }
  if (st) {
    st = db.run("COMMIT", "commit schema");
  }
  return st ? st : rollbackWith(db, st);
}

Result<Migrated> migrate(Db& db, const fs::path& db_path, log::Logger& log) {
  auto level = readLevel(db);
  if (!level) {
    return std::move(level).error();
  }
  PSA_TRY(checkUsable(*level, db_path));
  Migrated out{level->level, level->level, {}};
  int64_t min_reader = level->min_reader;
  for (const Migration& m : kMigrations) {
    if (m.level <= out.to) {
      continue;
    }
    PSA_TRY(db.run("BEGIN IMMEDIATE", "begin migration"));
    Status st = db.run(m.sql, m.name);
    testFaultPoint("store.migration.applied");
    if (!m.readable_by_previous) {
      min_reader = m.level;
    }
    if (st) {
      const std::string bump = "INSERT OR REPLACE INTO meta(k,v) VALUES('schema_level'," +
                               std::to_string(m.level) + "),('schema_version'," +
                               std::to_string(min_reader) + ")";
      st = db.run(bump.c_str(), "write schema level");
    }
    testFaultPoint("store.migration.versioned");
    if (st) {
      st = db.run("COMMIT", "commit migration");
    }
    if (!st) {
      db.exec("ROLLBACK");
      return Error(st.error().code, "schema migration " + std::to_string(m.level) + " (" + m.name +
                                        "): " + st.error().message);
    }
    log.info("store.migrated",
             {{"db", db_path.string()}, {"level", m.level}, {"migration", std::string(m.name)}});
    out.to = m.level;
    out.names.emplace_back(m.name);
  }
  return out;
}

}  // namespace psa::store::migrations
