// Opening the store: the schema (created or migrated: schema_migrations.h), the write connection's
// settings, the integrity check and moving a damaged database aside, loading counters and state,
// reconciling the key file with the keys table, and the read-only (inspection) open.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <future>

#include "audit.h"
#include "crypto.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/sqlite_store.h"
#include "schema_migrations.h"
#include "store_impl.h"

namespace psa::store {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kJournalSizeLimit = 8 << 20;

}  // namespace

Status SqliteStore::Impl::openReadOnly() {
  if (opts.db_path.empty()) {
    return Error(Errc::invalid_argument, "store options need db_path");
  }
  // Nothing may be written: no writer, no lease thread, no key file, no schema changes.
  {
    std::lock_guard lock(mu);
    closing = true;
  }
  {
    std::lock_guard lock(lq_mu);
    lease_stop = true;
  }
  std::error_code ec;
  if (!fs::exists(opts.db_path, ec)) {
    return Error(Errc::not_found, "no queue database at " + opts.db_path.string() +
                                      " (has the agent run with this config yet?)");
  }
  auto opened = Db::open(opts.db_path, /*read_only=*/true);
  if (!opened) {
    return std::move(opened).error();
  }
  Db db = std::move(opened).value();
  sqlite3_busy_timeout(db.get(), 5000);
  // The first read takes the shared lock: a process holding the file exclusively shows here.
  const int probe = db.exec("SELECT count(*) FROM sqlite_master");
  if ((probe & 0xff) == SQLITE_BUSY || (probe & 0xff) == SQLITE_LOCKED) {
    return Error(Errc::unavailable,
                 "the queue database " + opts.db_path.string() + " is locked by another process");
  }
  auto tables =
      db.prepare("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='queue'");
  if (!tables) {
    return std::move(tables).error();
  }
  const int rc = tables->step();
  if (rc != SQLITE_ROW) {
    return db.error(rc, "read schema");
  }
  const bool has_queue = tables->i64(0) > 0;
  tables->reset();
  if (!has_queue) {
    return Error(Errc::not_found, "database " + opts.db_path.string() + " holds no queue yet");
  }
  // Read-only cannot migrate: an older database is read as it is (its tables are a subset).
  auto level = migrations::readLevel(db);
  if (!level) {
    return std::move(level).error();
  }
  PSA_TRY(migrations::checkUsable(*level, opts.db_path));
  schema_level = level->level;
  PSA_TRY(loadState(db));
  auto keys = db.queryInt("SELECT count(*) FROM keys");
  auto max_key = db.queryInt("SELECT coalesce(max(key_id),0) FROM keys");
  if (keys && max_key) {
    ro_key_count = static_cast<size_t>(*keys);
    ro_key_id = static_cast<uint32_t>(*max_key);
  }
  PSA_TRY(db.run("PRAGMA query_only=1; PRAGMA temp_store=MEMORY;", "configure read connection"));
  std::lock_guard lock(read_mu);
  rdb = std::move(db);
  return {};
}

Status SqliteStore::Impl::openAll() {
  if (opts.read_only) {
    return openReadOnly();
  }
  if (opts.db_path.empty() || opts.key_file.empty()) {
    return Error(Errc::invalid_argument, "store options need db_path and key_file");
  }
  if (opts.max_batch_records == 0) {
    opts.max_batch_records = 1;
  }
  std::error_code ec;
  const fs::path dir = opts.db_path.has_parent_path() ? opts.db_path.parent_path() : fs::path(".");
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) {
    return Error(Errc::io, "database directory " + dir.string() + " does not exist");
  }

  // The key file is checked first: a world-readable key is refused before anything else.
  const bool key_exists = fs::exists(opts.key_file, ec);
  std::optional<KeyRing> file_ring;
  if (key_exists) {
    PSA_TRY(checkKeyFileMode(opts.key_file));
    auto loaded = loadKeyFile(opts.key_file);
    if (!loaded) {
      return std::move(loaded).error();
    }
    file_ring = std::move(loaded).value();
  }

  bool created = false;
  PSA_TRY(openDatabase(created));
  report.created = created;
  PSA_TRY(loadState(wdb));
  PSA_TRY(reconcileKeys(key_exists, std::move(file_ring)));
  PSA_TRY(prepareWriter());

  // Small page caches: the queue is written at its tail and read at its head, so a few MiB
  // hold the working set, and the OS page cache serves the rest. Larger caches only raised
  // the agent's resident memory (16+8 MiB filled up under load) without measurable gain.
  auto l = openReader(2048);
  if (!l) {
    return std::move(l).error();
  }
  ldb = std::move(l).value();
  auto lr = ldb.prepare(
      "SELECT seq,msg_id,source,vendor,kind,format,received_at,key_id,attempts,sealed FROM queue "
      "WHERE state=1 AND next_attempt_at<=?1 ORDER BY next_attempt_at LIMIT ?2");
  auto lp = ldb.prepare(
      "SELECT seq,msg_id,source,vendor,kind,format,received_at,key_id,attempts,sealed FROM queue "
      "WHERE state=0 AND seq>?1 ORDER BY seq LIMIT ?2");
  if (!lr || !lp) {
    return Error(Errc::internal, "cannot prepare lease statements");
  }
  ls.retry_due = std::move(lr).value();
  ls.pending = std::move(lp).value();

  auto r = openReader(1024);
  if (!r) {
    return std::move(r).error();
  }
  rdb = std::move(r).value();

  for (const Counters& c = counters; int64_t p : c.pending) {
    report.pending += static_cast<uint64_t>(std::max<int64_t>(p, 0));
  }
  if (report.recovered_from_corruption) {
    AuditEntry e;
    e.at_ms = clock->nowMs();
    e.actor = "agent";
    e.action = "store.corruption_recovered";
    e.detail = "{\"moved_aside\":" + audit::jsonString(report.moved_aside.filename().string()) +
               ",\"reason\":" + audit::jsonString(report.corruption_reason.substr(0, 500)) + "}";
    ops.push_back(AuditOp{std::move(e), {}});
  }
  last_maintenance = std::chrono::steady_clock::now();
  writer = std::thread([this] { writerMain(); });
  writer_id_ = writer.get_id();
  leaser = std::thread([this] { leaseMain(); });

  int64_t dead = 0;
  for (int64_t d : counters.dead) {
    dead += d;
  }
  log.info("store.opened", {{"db", opts.db_path.string()},
                            {"created", report.created},
                            {"key_created", report.key_created},
                            {"pending", report.pending},
                            {"dead", dead},
                            {"keys", wring->keys().size()},
                            {"current_key", wring->current().id}});
  return {};
}

Result<Db> SqliteStore::Impl::openReader(int cache_kib) {
  auto db = Db::open(opts.db_path);
  if (!db) {
    return std::move(db).error();
  }
  sqlite3_busy_timeout(db->get(), 5000);
  const std::string pragmas = "PRAGMA query_only=1; PRAGMA cache_size=-" +
                              std::to_string(cache_kib) + "; PRAGMA temp_store=MEMORY;";
  PSA_TRY(db->run(pragmas.c_str(), "configure read connection"));
  return std::move(db).value();
}

Status SqliteStore::Impl::configureWriteConnection(Db& db, bool& is_new) {
  sqlite3_busy_timeout(db.get(), 5000);
  // Reading the header first makes a non-database file fail here (SQLITE_NOTADB).
  auto tables = db.queryInt("SELECT count(*) FROM sqlite_master");
  if (!tables) {
    return std::move(tables).error();
  }
  is_new = *tables == 0;
  if (is_new) {
    // Must precede the first table: lets delivered rows give pages back to the file system.
    PSA_TRY(db.run("PRAGMA auto_vacuum=INCREMENTAL", "set auto_vacuum"));
  }
  auto mode = db.prepare("PRAGMA journal_mode=WAL");
  if (!mode) {
    return std::move(mode).error();
  }
  const int rc = mode->step();
  if (rc != SQLITE_ROW) {
    return db.error(rc, "set journal_mode=WAL");
  }
  if (mode->text(0) != "wal") {
    return Error(Errc::io, "cannot switch " + opts.db_path.string() + " to WAL mode");
  }
  mode->reset();
  const std::string pragmas =
      "PRAGMA synchronous=FULL; PRAGMA journal_size_limit=" + std::to_string(kJournalSizeLimit) +
      "; PRAGMA cache_size=-4096; PRAGMA temp_store=MEMORY;";
  PSA_TRY(db.run(pragmas.c_str(), "configure database"));
  if (opts.sqlite_max_pages > 0) {
    const std::string cap = "PRAGMA max_page_count=" + std::to_string(opts.sqlite_max_pages);
    PSA_TRY(db.run(cap.c_str(), "set max_page_count"));
  }
  return {};
}

Status SqliteStore::Impl::integrityCheck(Db& db) {
  if (opts.integrity_check == IntegrityCheck::off) {
    return {};
  }
  auto st = db.prepare(opts.integrity_check == IntegrityCheck::full ? "PRAGMA integrity_check(8)"
                                                                    : "PRAGMA quick_check(8)");
  if (!st) {
    return std::move(st).error();
  }
  std::string problems;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    const std::string_view line = st->text(0);
    if (line == "ok") {
      continue;
    }
    if (!problems.empty()) {
      problems += "; ";
    }
    problems.append(line.substr(0, 200));
  }
  if (rc != SQLITE_DONE) {
    return db.error(rc, "integrity check");
  }
  if (!problems.empty()) {
    return Error(Errc::corrupt, "integrity check failed: " + problems);
  }
  return {};
}

Status SqliteStore::Impl::moveAside(const std::string& reason) {
  const std::string base = opts.db_path.string() + ".corrupt-" + utcStamp();
  fs::path dest = base;
  for (int i = 1; fs::exists(dest); ++i) {
    dest = base + "-" + std::to_string(i);
  }
  std::error_code ec;
  fs::rename(opts.db_path, dest, ec);
  if (ec) {
    return Error(Errc::io, "cannot move corrupt database " + opts.db_path.string() + " aside to " +
                               dest.string() + ": " + ec.message());
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    fs::path from = opts.db_path;
    from += suffix;
    fs::path to = dest;
    to += suffix;
    if (fs::exists(from, ec)) {
      fs::rename(from, to, ec);
      if (ec) {
        return Error(Errc::io, "cannot move " + from.string() + " aside: " + ec.message());
      }
    }
  }
  const fs::path dir = opts.db_path.has_parent_path() ? opts.db_path.parent_path() : fs::path(".");
  // Best effort: the database was unusable anyway, and a rename lost in a crash only means the
  // corrupt file is found (and moved) again at the next start.
  [[maybe_unused]] Status synced = os::syncDirectory(dir);
  report.recovered_from_corruption = true;
  report.moved_aside = dest;
  report.corruption_reason = reason;
  log.error("store.corruption_recovered",
            {{"db", opts.db_path.string()}, {"moved_aside", dest.string()}, {"reason", reason}});
  return {};
}

Status SqliteStore::Impl::openDatabase(bool& created) {
  std::error_code ec;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool existed = fs::exists(opts.db_path, ec) && fs::file_size(opts.db_path, ec) > 0;
    auto db = Db::open(opts.db_path);
    Status st;
    bool is_new = false;
    if (!db) {
      st = std::move(db).error();
    } else {
      st = configureWriteConnection(*db, is_new);
      if (st) {
        st = integrityCheck(*db);
      }
      if (st) {
        wdb = std::move(db).value();
        st = ensureSchema(created);
        created = created || !existed || is_new;
        if (st) {
          return {};
        }
        wdb.close();
      }
    }
    if (!st.error().is(Errc::corrupt) || attempt > 0) {
      return st;
    }
    if (db) {
      db->close();
    }
    // Never delete: the file may hold records a technician can still salvage.
    PSA_TRY(moveAside(st.error().message));
  }
  return Error(Errc::internal, "unreachable");
}

Status SqliteStore::Impl::ensureSchema(bool& created) {
  auto has_queue =
      wdb.queryInt("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='queue'");
  if (!has_queue) {
    return std::move(has_queue).error();
  }
  if (*has_queue == 0) {
    PSA_TRY(migrations::createBase(wdb, clock->nowMs()));
    created = true;
  }
  auto migrated = migrations::migrate(wdb, opts.db_path, log);
  if (!migrated) {
    return std::move(migrated).error();
  }
  schema_level = migrated->to;
  if (!created && !migrated->names.empty()) {
    std::string names;
    for (const std::string& n : migrated->names) {
      names += (names.empty() ? "" : ",") + audit::jsonString(n);
    }
    AuditEntry e;
    e.at_ms = clock->nowMs();
    e.actor = "agent";
    e.action = "store.migrated";
    e.detail = "{\"from\":" + std::to_string(migrated->from) +
               ",\"to\":" + std::to_string(migrated->to) + ",\"migrations\":[" + names + "]}";
    ops.push_back(AuditOp{std::move(e), {}});
  }
  return {};
}

Status SqliteStore::Impl::loadState(Db& db) {
  {
    auto st = db.prepare("SELECT name, value FROM counters");
    if (!st) {
      return std::move(st).error();
    }
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      counters.load(st->text(0), st->i64(1));
    }
    if (rc != SQLITE_DONE) {
      return db.error(rc, "load counters");
    }
  }
  if (!counters.dedupe_loaded) {  // a database from before the counter: count once
    auto n = db.queryInt("SELECT count(*) FROM dedupe");
    if (!n) {
      return std::move(n).error();
    }
    counters.dedupe = *n;
  }
  // The first prune of the dedupe index comes one period after open, by the store's clock (not
  // at the first tick of the writer's timer, which depends on how busy the machine is).
  last_dedupe_prune_ms = clock->nowMs();
  auto max_seq = db.queryInt("SELECT coalesce(max(seq),0) FROM queue");
  if (!max_seq) {
    return std::move(max_seq).error();
  }
  next_seq = std::max(counters.last_seq, *max_seq) + 1;
  last_committed_seq = next_seq - 1;
  {
    auto st = db.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
    if (!st) {
      return std::move(st).error();
    }
    const int rc = st->step();
    if (rc == SQLITE_ROW) {
      last_audit_seq = st->i64(0);
      last_audit_hash = std::string(st->text(1));
    } else if (rc != SQLITE_DONE) {
      return db.error(rc, "load audit head");
    }
  }
  {
    // Audit counts a previous run aggregated but had not yet written as entries (it was
    // killed): they were saved with the records they count, so they are flushed now.
    auto st = db.prepare("SELECT v FROM meta WHERE k='audit_pending'");
    if (!st) {
      return std::move(st).error();
    }
    const int rc = st->step();
    if (rc == SQLITE_ROW) {
      json::Limits limits;
      limits.max_bytes = 1u << 20;
      limits.max_depth = 4;
      auto doc = json::parse(st->text(0), limits);
      if (doc && doc->isObject()) {
        agg_since_ms = doc->getInt("since_ms");
        agg_delivered = static_cast<uint64_t>(std::max<int64_t>(0, doc->getInt("delivered")));
        if (const json::Value* acc = doc->find("accepted"); acc != nullptr && acc->isObject()) {
          for (const auto& [src, n] : acc->members()) {
            if (n.isInteger() && n.asInt() > 0) {
              agg_accepted[src] += static_cast<uint64_t>(n.asInt());
            }
          }
        }
        agg_persisted = true;
      } else {
        log.warn("store.audit_pending_unreadable");
      }
    } else if (rc != SQLITE_DONE) {
      return db.error(rc, "load pending audit counts");
    }
  }
  auto mk = db.queryInt("SELECT coalesce((SELECT v FROM meta WHERE k='max_key_id'),0)");
  if (!mk) {
    return std::move(mk).error();
  }
  max_key_id = static_cast<uint32_t>(*mk);
  auto ps = db.queryInt("PRAGMA page_size");
  if (ps && *ps > 0) {
    page_size = *ps;
  }
  auto retry = db.queryInt(
      "SELECT coalesce((SELECT next_attempt_at FROM queue WHERE state=1 ORDER BY next_attempt_at "
      "LIMIT 1),0)");
  if (retry) {
    next_retry_wake_ms = *retry;
  }
  return {};
}

Status SqliteStore::Impl::reconcileKeys(bool key_exists, std::optional<KeyRing> file_ring) {
  struct DbKey {
    uint32_t id;
    std::string check;
  };
  std::vector<DbKey> db_keys;
  {
    auto st = wdb.prepare("SELECT key_id, check_value FROM keys ORDER BY key_id");
    if (!st) {
      return std::move(st).error();
    }
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      db_keys.push_back({static_cast<uint32_t>(st->i64(0)), std::string(st->blob(1))});
      max_key_id = std::max(max_key_id, static_cast<uint32_t>(st->i64(0)));
    }
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "load keys");
    }
  }
  auto rowsFor = [this](uint32_t id) -> int64_t {
    auto it = counters.key_rows.find(id);
    return it == counters.key_rows.end() ? 0 : it->second;
  };

  PSA_TRY(wdb.run("BEGIN IMMEDIATE", "begin key reconciliation"));
  auto fail = [this](Error e) -> Status {
    wdb.exec("ROLLBACK");
    return e;
  };
  KeyRing ring;
  if (!key_exists) {
    int64_t sealed = counters.sealedRows();
    if (sealed <= 0) {
      // Counters are authoritative, but a missing key is too costly to trust them alone.
      auto n = wdb.queryInt(
          "SELECT (SELECT count(*) FROM queue) + (SELECT count(*) FROM dead) + "
          "(SELECT count(*) FROM watermarks)");
      if (!n) {
        return fail(std::move(n).error());
      }
      sealed = *n;
    }
    if (sealed > 0) {
      return fail(
          Error(Errc::key_file, "key file " + opts.key_file.string() + " is missing but database " +
                                    opts.db_path.string() + " has " + std::to_string(sealed) +
                                    " sealed records; restore the key file from backup (a new key "
                                    "cannot decrypt them)"));
    }
    auto key = DataKey::generate(max_key_id + 1);
    if (!key) {
      return fail(std::move(key).error());
    }
    ring = KeyRing({*key});
    Status w = writeKeyFile(opts.key_file, ring);
    if (!w) {
      return fail(w.error());
    }
    report.key_created = true;
    log.info("store.key_created", {{"key_file", opts.key_file.string()}, {"key_id", key->id}});
    if (wdb.exec("DELETE FROM keys; DELETE FROM counters WHERE name LIKE 'key.%'") != SQLITE_OK) {
      return fail(wdb.error(SQLITE_ERROR, "reset keys"));
    }
    counters.key_rows.clear();
    db_keys.clear();
  } else {
    ring = std::move(*file_ring);
    for (const DbKey& dk : db_keys) {
      const DataKey* fk = ring.find(dk.id);
      const int64_t rows = rowsFor(dk.id);
      if (fk == nullptr) {
        if (rows > 0) {
          return fail(Error(Errc::key_file, "key file " + opts.key_file.string() + " lacks key " +
                                                std::to_string(dk.id) + ", which " +
                                                std::to_string(rows) + " sealed records in " +
                                                opts.db_path.string() +
                                                " need; restore the key file from backup"));
        }
        const std::string del = "DELETE FROM keys WHERE key_id=" + std::to_string(dk.id);
        wdb.exec(del.c_str());
        continue;
      }
      if (dk.check !=
          std::string_view(reinterpret_cast<const char*>(fk->check.data()), fk->check.size())) {
        return fail(Error(Errc::key_file, "key file " + opts.key_file.string() +
                                              " does not match database " + opts.db_path.string() +
                                              ": key " + std::to_string(dk.id) +
                                              " differs; restore the matching key file from "
                                              "backup"));
      }
    }
  }
  // Keys in the file that the database does not know yet (new file, or a rotation whose
  // database commit did not happen) are registered now.
  for (const DataKey& k : ring.keys()) {
    const bool known =
        std::any_of(db_keys.begin(), db_keys.end(), [&](const DbKey& d) { return d.id == k.id; });
    if (known) {
      continue;
    }
    auto ins = wdb.prepare(
        "INSERT OR REPLACE INTO keys(key_id, check_value, created_at) VALUES(?1,?2,?3)");
    if (!ins) {
      return fail(std::move(ins).error());
    }
    ins->bind(1, k.id).bindBlob(2, k.check.data(), k.check.size()).bind(3, clock->nowMs());
    const int rc = ins->step();
    if (rc != SQLITE_DONE) {
      return fail(wdb.error(rc, "register key"));
    }
  }
  max_key_id = std::max(max_key_id, ring.maxId());
  const std::string mk =
      "INSERT OR REPLACE INTO meta(k,v) VALUES('max_key_id'," + std::to_string(max_key_id) + ")";
  if (wdb.exec(mk.c_str()) != SQLITE_OK) {
    return fail(wdb.error(SQLITE_ERROR, "write max_key_id"));
  }
  if (wdb.exec("COMMIT") != SQLITE_OK) {
    return fail(wdb.error(SQLITE_ERROR, "commit key reconciliation"));
  }
  setRing(std::make_shared<const KeyRing>(std::move(ring)));
  return {};
}

}  // namespace psa::store
