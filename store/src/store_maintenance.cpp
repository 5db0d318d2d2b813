// The writer's periodic maintenance, off the append/ack hot path: pruning of the dedupe index
// (by window and by cap), of delivered records kept for store.retain_delivered and of the audit
// log (with its checkpoints), dropping data keys no row needs any more, incremental vacuum and
// WAL checkpoints. Runs on the writer thread, once a tick (store_writer.cpp).

#include <algorithm>
#include <cstdlib>

#include "audit.h"
#include "crypto.h"
#include "store_impl.h"

namespace psa::store {
namespace {

constexpr int64_t kDedupePruneEveryMs = 60'000;
constexpr int64_t kRetainPruneEveryMs = 10'000;
constexpr int64_t kAuditPruneEveryMs = 60'000;
constexpr int kPruneChunk = 10'000;
// Dedupe index cap when store.dedupe_max_entries is 0: a tenth of the disk budget, at the
// measured ~133 bytes per entry on disk (MAC, msg-id, time, two b-trees) plus slack.
constexpr uint64_t kDedupeEntryBytes = 160;
constexpr uint64_t kMinDedupeEntries = 10'000;
constexpr int64_t kDedupeCapLogEveryMs = 3'600'000;
constexpr int64_t kVacuumMinFreePages = 256;
constexpr int kVacuumChunkPages = 4096;
constexpr uint64_t kCheckpointWalBytes = 4u << 20;

}  // namespace

uint64_t SqliteStore::Impl::dedupeCap() const {
  if (opts.dedupe_max_entries > 0) {
    return opts.dedupe_max_entries;
  }
  return std::max<uint64_t>(kMinDedupeEntries, opts.max_bytes / 10 / kDedupeEntryBytes);
}

// Runs one chunk of a `DELETE ... RETURNING key_id[, more]` bound to (?1 before, ?2 limit):
// each deleted row gives back its key reference; `row` reads any further columns. Returns the
// number of rows deleted.
Result<int> SqliteStore::Impl::deleteChunk(const char* sql, int64_t before, int64_t limit,
                                           const char* what, OpCtx& ctx,
                                           const std::function<void(Stmt&)>& row) {
  auto st = wdb.prepare(sql);
  if (!st) {
    return std::move(st).error();
  }
  st->bind(1, before).bind(2, limit);
  int rc;
  int n = 0;
  while ((rc = st->step()) == SQLITE_ROW) {
    ctx.delta.key_rows[static_cast<uint32_t>(st->i64(0))] -= 1;
    row(*st);
    ++n;
  }
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, what);
  }
  return n;
}

// Deletes one chunk of identities older than the window, then, while the index holds more
// than dedupeCap() entries, one chunk of the oldest: a busy feed shortens the window instead
// of letting the index eat the disk budget. `more` says a chunk was full (run again next tick).
Status SqliteStore::Impl::pruneDedupe(OpCtx& ctx, int64_t now, bool& more) {
  constexpr const char* kSql =
      "DELETE FROM dedupe WHERE mac IN (SELECT mac FROM dedupe WHERE seen_at<?1 ORDER BY seen_at "
      "LIMIT ?2) RETURNING key_id, seen_at";
  const int64_t cutoff =
      now - std::chrono::duration_cast<std::chrono::milliseconds>(opts.dedupe_window).count();
  int64_t newest_seen = 0;
  auto onRow = [&](Stmt& st) {
    ctx.delta.dedupe -= 1;
    newest_seen = std::max(newest_seen, st.i64(1));
  };
  auto aged = deleteChunk(kSql, cutoff, kPruneChunk, "prune dedupe index", ctx, onRow);
  if (!aged) {
    return std::move(aged).error();
  }
  more = *aged >= kPruneChunk;
  const int64_t over = counters.dedupe + ctx.delta.dedupe - static_cast<int64_t>(dedupeCap());
  if (over <= 0) {
    return {};
  }
  newest_seen = 0;
  auto capped = deleteChunk(kSql, INT64_MAX, std::min<int64_t>(over, kPruneChunk),
                            "prune dedupe index", ctx, onRow);
  if (!capped) {
    return std::move(capped).error();
  }
  more = more || over > kPruneChunk;
  dedupe_window_effective_ms = now - newest_seen;
  if (now - last_dedupe_cap_log_ms >= kDedupeCapLogEveryMs) {
    last_dedupe_cap_log_ms = now;
    log.warn("store.dedupe_capped",
             {{"max_entries", dedupeCap()},
              {"window_s", dedupe_window_effective_ms / 1000},
              {"configured_window_s", static_cast<int64_t>(opts.dedupe_window.count())},
              {"hint",
               "duplicates older than window_s are stored again; raise "
               "store.dedupe_max_entries (about 160 bytes each) to keep more"}});
  }
  return {};
}

// Deletes one chunk; `more` says the chunk was full (run again on the next tick).
Status SqliteStore::Impl::pruneDelivered(OpCtx& ctx, int64_t now, bool& more) {
  const int64_t cutoff =
      now - std::chrono::duration_cast<std::chrono::milliseconds>(opts.retain_delivered).count();
  auto n = deleteChunk(
      "DELETE FROM queue WHERE seq IN (SELECT seq FROM queue WHERE state=2 AND delivered_at<?1 "
      "ORDER BY delivered_at LIMIT ?2) RETURNING key_id",
      cutoff, kPruneChunk, "prune delivered records", ctx, [&](Stmt&) { ctx.delta.retained -= 1; });
  if (!n) {
    return std::move(n).error();
  }
  more = *n >= kPruneChunk;
  return {};
}

// Audit retention. The chain may only start at seq 1 or at a checkpoint entry, so entries are
// removed up to (not including) the newest checkpoint that is itself older than the retention
// period; a new checkpoint is written every quarter period while entries keep coming. Each cut
// is recorded ("audit.pruned") in the same transaction, which verifyAudit() requires.
Status SqliteStore::Impl::pruneAudit(OpCtx& ctx, int64_t now) {
  const int64_t retain_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(opts.audit_retain).count();
  const int64_t cutoff = now - retain_ms;
  // Entries not yet uploaded stay: the cut (first kept seq) may be at most uploaded + 1.
  int64_t max_cut = INT64_MAX;
  if (!opts.audit_upload_key.empty()) {
    auto uploaded = readWatermark(wdb, *wring, opts.audit_upload_scope, opts.audit_upload_key);
    if (!uploaded) {
      return std::move(uploaded).error();
    }
    max_cut = 1;
    if (uploaded->has_value()) {
      char* end = nullptr;
      const long long v = std::strtoll((*uploaded)->c_str(), &end, 10);
      if (end != nullptr && *end == '\0' && v > 0) {
        max_cut = v + 1;
      }
    }
  }
  auto cut = wdb.prepare(
      "SELECT seq FROM audit WHERE action='audit.checkpoint' AND at_ms<=?1 AND seq<=?2 AND "
      "seq>(SELECT min(seq) FROM audit) ORDER BY seq DESC LIMIT 1");
  if (!cut) {
    return std::move(cut).error();
  }
  cut->bind(1, cutoff);
  cut->bind(2, max_cut);
  int rc = cut->step();
  if (rc == SQLITE_ROW) {
    const int64_t before_seq = cut->i64(0);
    cut->reset();
    auto del = wdb.prepare("DELETE FROM audit WHERE seq<?1");
    if (!del) {
      return std::move(del).error();
    }
    del->bind(1, before_seq);
    rc = del->step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "prune audit entries");
    }
    AuditEntry e;
    e.at_ms = now;
    e.actor = "agent";
    e.action = std::string(audit::kPrunedAction);
    e.detail = "{\"before_seq\":" + std::to_string(before_seq) +
               ",\"count\":" + std::to_string(wdb.changes()) +
               ",\"cutoff_ms\":" + std::to_string(cutoff) + "}";
    ctx.audits.push_back(std::move(e));
    log.info("store.audit_pruned", {{"before_seq", before_seq}, {"count", wdb.changes()}});
  } else if (rc != SQLITE_DONE) {
    return wdb.error(rc, "find audit checkpoint");
  } else {
    cut->reset();
  }
  auto head = wdb.prepare(
      "SELECT coalesce((SELECT at_ms FROM audit WHERE action='audit.checkpoint' ORDER BY seq DESC "
      "LIMIT 1),0), coalesce((SELECT action FROM audit ORDER BY seq DESC LIMIT 1),'')");
  if (!head) {
    return std::move(head).error();
  }
  rc = head->step();
  if (rc != SQLITE_ROW) {
    return wdb.error(rc, "read audit head");
  }
  const int64_t last_checkpoint_ms = head->i64(0);
  const bool idle = head->text(1) == audit::kCheckpointAction ||
                    head->text(1) == audit::kPrunedAction || head->text(1).empty();
  head->reset();
  if (!idle && ctx.audits.empty() &&
      (last_checkpoint_ms == 0 || now - last_checkpoint_ms >= retain_ms / 4)) {
    AuditEntry e;
    e.at_ms = now;
    e.actor = "agent";
    e.action = std::string(audit::kCheckpointAction);
    e.detail = "{\"retain_s\":" + std::to_string(opts.audit_retain.count()) + "}";
    ctx.audits.push_back(std::move(e));
  }
  return {};
}

Status SqliteStore::Impl::dropKey(uint32_t key_id, OpCtx& ctx) {
  // The counter says no row needs this key. Losing a key loses data, so confirm with the
  // tables themselves (a scan, but only once per retired key).
  const std::string id = std::to_string(key_id);
  const std::string sql = "SELECT EXISTS(SELECT 1 FROM queue WHERE key_id=" + id +
                          ") OR EXISTS(SELECT 1 FROM dead WHERE key_id=" + id +
                          ") OR EXISTS(SELECT 1 FROM dedupe WHERE key_id=" + id +
                          ") OR EXISTS(SELECT 1 FROM watermarks WHERE key_id=" + id +
                          ") OR EXISTS(SELECT 1 FROM outbound WHERE key_id=" + id +
                          " OR result_key_id=" + id +
                          ") OR EXISTS(SELECT 1 FROM outbound_results WHERE key_id=" + id + ")";
  auto used = wdb.queryInt(sql.c_str());
  if (!used) {
    return std::move(used).error();
  }
  if (*used != 0) {
    key_drop_blocked.insert(key_id);
    log.error("store.key_counter_mismatch", {{"key_id", key_id}});
    return {};
  }
  const std::string del =
      "DELETE FROM keys WHERE key_id=" + id + "; DELETE FROM counters WHERE name='key." + id + "'";
  PSA_TRY(wdb.run(del.c_str(), "drop key"));
  AuditEntry e;
  e.at_ms = clock->nowMs();
  e.actor = "agent";
  e.action = "key.dropped";
  e.detail = "{\"key_id\":" + id + "}";
  ctx.audits.push_back(std::move(e));
  ctx.on_commit.push_back([this, key_id] {
    {
      std::lock_guard lock(counters_mu);
      counters.key_rows.erase(key_id);
    }
    // Database first, then the file: a crash in between leaves an extra key in the file,
    // which is harmless; the reverse order could lose a key still needed.
    auto next = std::make_shared<const KeyRing>(wring->without(key_id));
    Status w = writeKeyFile(opts.key_file, *next);
    if (!w) {
      log.error("store.key_file_write_failed", {{"error", w.error().code}});
      return;
    }
    setRing(next);
    log.info("store.key_dropped", {{"key_id", key_id}});
  });
  return {};
}

void SqliteStore::Impl::maintenance() {
  const int64_t now = clock->nowMs();
  bool prune_dedupe = now - last_dedupe_prune_ms >= kDedupePruneEveryMs;
  bool prune_retained =
      opts.retain_delivered.count() > 0 && now - last_retain_prune_ms >= kRetainPruneEveryMs;
  const bool prune_audit =
      opts.audit_retain.count() > 0 && now - last_audit_prune_ms >= kAuditPruneEveryMs;
  std::vector<uint32_t> drop;
  if (check_key_drop) {
    check_key_drop = false;
    for (const DataKey& k : wring->keys()) {
      if (k.id == wring->current().id || key_drop_blocked.count(k.id) != 0) {
        continue;
      }
      auto it = counters.key_rows.find(k.id);
      if (it == counters.key_rows.end() || it->second <= 0) {
        drop.push_back(k.id);
      }
    }
  }
  if (prune_dedupe || prune_retained || prune_audit || !drop.empty()) {
    if (prune_dedupe) {
      last_dedupe_prune_ms = now;
    }
    if (prune_audit) {
      last_audit_prune_ms = now;
    }
    if (prune_retained) {
      last_retain_prune_ms = now;
    }
    std::vector<Op> round;
    round.emplace_back(
        TaskOp{[=, this](OpCtx& ctx) -> Status {
                 bool more = false;
                 if (prune_dedupe) {
                   PSA_TRY(pruneDedupe(ctx, now, more));
                   if (more) {
                     last_dedupe_prune_ms = now - kDedupePruneEveryMs;
                   }
                 }
                 if (prune_retained) {
                   PSA_TRY(pruneDelivered(ctx, now, more));
                   if (more) {
                     last_retain_prune_ms = now - kRetainPruneEveryMs;
                   }
                 }
                 for (uint32_t id : drop) {
                   PSA_TRY(dropKey(id, ctx));
                 }
                 if (prune_audit) {
                   OpCtx audit_ctx;
                   PSA_TRY(pruneAudit(audit_ctx, now));
                   ctx.merge(std::move(audit_ctx));
                 }
                 return {};
               },
               [this](const Status& st) {
                 if (!st) {
                   log.warn("store.maintenance_failed", {{"error", st.error().code}});
                 }
               }});
    runRound(round);
  }
  bool idle;
  {
    std::lock_guard lock(mu);
    idle = ops.empty();
  }
  // Give pages of delivered rows back to the file system, a chunk per tick (a smaller one while
  // producers are waiting), so the files shrink after a backlog drains instead of staying at
  // the high-water mark.
  bool vacuumed = false;
  auto free_pages = wdb.queryInt("PRAGMA freelist_count");
  if (free_pages && *free_pages >= kVacuumMinFreePages) {
    const int chunk = idle ? kVacuumChunkPages : kVacuumChunkPages / 4;
    const std::string sql = "PRAGMA incremental_vacuum(" + std::to_string(chunk) + ")";
    vacuumed = wdb.exec(sql.c_str()) == SQLITE_OK;
  }
  const uint64_t wal = walBytes();
  if (idle && (wal > kCheckpointWalBytes || (vacuumed && wal > 0))) {
    // The database file only shrinks when a checkpoint copies the vacuumed state back;
    // TRUNCATE also resets the WAL to zero bytes when no reader is using it.
    sqlite3_wal_checkpoint_v2(wdb.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  }
}

}  // namespace psa::store
