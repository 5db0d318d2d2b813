// Inspection: watermarks, stats, list/show/reveal, audit read/verify. (Technician actions:
// store_actions.cpp; salvage of a moved-aside database: store_salvage.cpp.)

#include <algorithm>
#include <future>

#include "audit.h"
#include "crypto.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/sqlite_store.h"
#include "store_impl.h"

namespace psa::store {
namespace fs = std::filesystem;

namespace {

Error closedError() { return Error(Errc::closed, "store closed"); }

Kind kindFrom(int64_t v) {
  return v >= 0 && static_cast<size_t>(v) < kKindCount ? kAllKinds[static_cast<size_t>(v)]
                                                       : Kind::other;
}

constexpr const char* kQueueInfoCols =
    "seq,msg_id,source,vendor,kind,format,received_at,size,attempts,next_attempt_at,state,"
    "coalesce(reason,''),key_id";
constexpr const char* kDeadInfoCols =
    "seq,msg_id,source,vendor,kind,format,received_at,size,attempts,reason,dead_at,key_id";

// Columns 0-8, which kQueueInfoCols and kDeadInfoCols share.
RecordInfo commonInfo(const Stmt& s) {
  RecordInfo r;
  r.seq = s.i64(0);
  r.msg_id = std::string(s.text(1));
  r.source = std::string(s.text(2));
  r.vendor = std::string(s.text(3));
  r.kind = kindFrom(s.i64(4));
  r.format = std::string(s.text(5));
  r.received_at_ms = s.i64(6);
  r.size = static_cast<uint64_t>(s.i64(7));
  r.attempts = static_cast<uint32_t>(s.i64(8));
  return r;
}

RecordInfo queueInfo(const Stmt& s, const std::unordered_set<int64_t>& leased) {
  RecordInfo r = commonInfo(s);
  const int state = static_cast<int>(s.i64(10));
  r.next_attempt_ms = state == kStateRetry ? s.i64(9) : 0;
  if (state == kStateDelivered) {
    r.state = "delivered";
  } else if (leased.count(r.seq) != 0) {
    r.state = "leased";
  } else {
    r.state = state == kStateRetry ? "retry" : "pending";
  }
  r.reason = std::string(s.text(11));
  r.key_id = static_cast<uint32_t>(s.i64(12));
  return r;
}

RecordInfo deadInfo(const Stmt& s) {
  RecordInfo r = commonInfo(s);
  r.state = "dead";
  r.reason = std::string(s.text(9));
  r.dead_at_ms = s.i64(10);
  r.key_id = static_cast<uint32_t>(s.i64(11));
  return r;
}

// The name and value of a sealed watermark row of `scope`; false when its key is gone or it
// does not open.
bool openWatermark(const KeyRing& keys, const std::string& scope, uint32_t key_id,
                   std::string_view sealed, std::string& name, std::string& value) {
  const DataKey* dk = keys.find(key_id);
  std::string plain;
  return dk != nullptr &&
         crypto::open(dk->raw, watermarkAad(scope, key_id), sealed, plain) ==
             crypto::OpenError::ok &&
         decodeWatermark(plain, name, value);
}

}  // namespace

Error readOnlyError() {
  return Error(Errc::closed, "the store is open read-only (inspection): no key is loaded");
}

// ---------------------------------------------------------------------------------------------
// Watermarks

Result<std::optional<std::string>> readWatermark(Db& db, const KeyRing& keys,
                                                 const std::string& scope, const std::string& key) {
  auto st = db.prepare("SELECT key_id, sealed FROM watermarks WHERE scope=?1 AND name_mac=?2");
  if (!st) {
    return std::move(st).error();
  }
  for (const DataKey& k : keys.keys()) {
    const crypto::Digest mac = crypto::hmacSha256(k.name_mac.data(), k.name_mac.size(), key);
    StmtScope scope_guard(*st);
    st->bindText(1, scope).bindBlob(2, mac.data(), mac.size());
    const int rc = st->step();
    if (rc == SQLITE_DONE) {
      continue;
    }
    if (rc != SQLITE_ROW) {
      return db.error(rc, "read watermark");
    }
    const auto key_id = static_cast<uint32_t>(st->i64(0));
    std::string name, value;
    if (!openWatermark(keys, scope, key_id, st->blob(1), name, value) || name != key) {
      return Error(Errc::crypto, "watermark of scope " + scope + " failed to decrypt (key " +
                                     std::to_string(key_id) + ")");
    }
    return std::optional<std::string>(std::move(value));
  }
  return std::optional<std::string>();
}

Result<std::optional<std::string>> SqliteStore::watermark(const std::string& scope,
                                                          const std::string& key) {
  Impl& m = *impl_;
  const KeyRingPtr keys = m.ring();
  if (!keys) {
    return readOnlyError();
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  return readWatermark(m.rdb, *keys, scope, key);
}

Result<std::map<std::string, std::string>> SqliteStore::watermarks(const std::string& scope) {
  Impl& m = *impl_;
  const KeyRingPtr keys = m.ring();
  if (!keys) {
    return readOnlyError();
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  auto st = m.rdb.prepare("SELECT key_id, sealed FROM watermarks WHERE scope=?1");
  if (!st) {
    return std::move(st).error();
  }
  st->bindText(1, scope);
  std::map<std::string, std::string> out;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    const auto key_id = static_cast<uint32_t>(st->i64(0));
    std::string name, value;
    if (!openWatermark(*keys, scope, key_id, st->blob(1), name, value)) {
      return Error(Errc::crypto, "a watermark of scope " + scope + " failed to decrypt (key " +
                                     std::to_string(key_id) + ")");
    }
    out[std::move(name)] = std::move(value);
  }
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "read watermarks");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Stats and listing

WriterMetrics SqliteStore::writerMetrics() const {
  return {impl_->commit_us.snapshot(), impl_->group_records.snapshot()};
}

Result<QueueStats> SqliteStore::stats() {
  Impl& m = *impl_;
  QueueStats s;
  Counters c;
  {
    std::lock_guard lock(m.counters_mu);
    c = m.counters;
  }
  for (size_t i = 0; i < kKindCount; ++i) {
    KindStats k;
    k.pending = static_cast<uint64_t>(std::max<int64_t>(0, c.pending[i]));
    k.bytes = static_cast<uint64_t>(std::max<int64_t>(0, c.bytes[i]));
    k.dead = static_cast<uint64_t>(std::max<int64_t>(0, c.dead[i]));
    s.pending += k.pending;
    s.pending_bytes += k.bytes;
    s.dead += k.dead;
    s.by_kind[kAllKinds[i]] = k;
  }
  s.retry = static_cast<uint64_t>(std::max<int64_t>(0, c.retry));
  s.delivered_retained = static_cast<uint64_t>(std::max<int64_t>(0, c.retained));
  {
    std::lock_guard lock(m.lease_mu);
    s.leased = m.leased.size();
  }
  s.max_bytes = m.opts.max_bytes;
  s.dedupe_entries = static_cast<uint64_t>(std::max<int64_t>(0, c.dedupe));
  s.dedupe_max_entries = m.dedupeCap();
  s.dedupe_window_s = m.dedupe_window_effective_ms.load() / 1000;
  s.appended_total = m.appended_total.load();
  s.delivered_total = m.delivered_total.load();
  s.duplicates_total = m.duplicates_total.load();
  s.commits_total = m.commits_total.load();
  s.schema_level = m.schema_level;
  const KeyRingPtr keys = m.ring();
  if (keys) {
    s.current_key_id = keys->current().id;
    s.key_count = keys->keys().size();
  } else {
    s.current_key_id = m.ro_key_id;
    s.key_count = m.ro_key_count;
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  auto pages = m.rdb.queryInt("PRAGMA page_count");
  auto free_pages = m.rdb.queryInt("PRAGMA freelist_count");
  if (!pages || !free_pages) {
    return !pages ? std::move(pages).error() : std::move(free_pages).error();
  }
  s.db_bytes = static_cast<uint64_t>(std::max<int64_t>(0, *pages - *free_pages) * m.page_size) +
               m.walBytes();
  // O(1) through the primary key while delivered rows are not retained.
  auto oldest = m.rdb.queryInt(
      "SELECT coalesce((SELECT received_at FROM queue WHERE state<2 ORDER BY seq "
      "LIMIT 1),0)");
  if (!oldest) {
    return std::move(oldest).error();
  }
  s.oldest_pending_ms = *oldest;
  return s;
}

Result<std::vector<RecordInfo>> SqliteStore::list(ListFilter filter, int64_t after_seq,
                                                  size_t limit) {
  Impl& m = *impl_;
  std::unordered_set<int64_t> leased;
  if (filter == ListFilter::queued) {
    std::lock_guard lock(m.lease_mu);
    leased = m.leased;
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  const std::string sql = filter == ListFilter::queued
                              ? std::string("SELECT ") + kQueueInfoCols +
                                    " FROM queue WHERE seq>?1 AND state<2 ORDER BY seq LIMIT ?2"
                              : std::string("SELECT ") + kDeadInfoCols +
                                    " FROM dead WHERE seq>?1 ORDER BY seq LIMIT ?2";
  auto st = m.rdb.prepare(sql);
  if (!st) {
    return std::move(st).error();
  }
  st->bind(1, after_seq).bind(2, static_cast<int64_t>(std::min<size_t>(limit, 100'000)));
  std::vector<RecordInfo> out;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    out.push_back(filter == ListFilter::queued ? queueInfo(*st, leased) : deadInfo(*st));
  }
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "list");
  }
  return out;
}

Result<std::vector<DeadReason>> SqliteStore::deadReasons(size_t limit) {
  Impl& m = *impl_;
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  auto st = m.rdb.prepare(
      "SELECT reason,count(*),max(dead_at) FROM dead GROUP BY reason ORDER BY 2 DESC, 1 "
      "LIMIT ?1");
  if (!st) {
    return std::move(st).error();
  }
  st->bind(1, static_cast<int64_t>(std::min<size_t>(limit, 1000)));
  std::vector<DeadReason> out;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    out.push_back({std::string(st->text(0)), static_cast<uint64_t>(st->i64(1)), st->i64(2)});
  }
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "dead reasons");
  }
  return out;
}

Result<RecordInfo> SqliteStore::show(const std::string& msg_id) {
  Impl& m = *impl_;
  std::unordered_set<int64_t> leased;
  {
    std::lock_guard lock(m.lease_mu);
    leased = m.leased;
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  {
    auto st =
        m.rdb.prepare(std::string("SELECT ") + kQueueInfoCols + " FROM queue WHERE msg_id=?1");
    if (!st) {
      return std::move(st).error();
    }
    st->bindText(1, msg_id);
    const int rc = st->step();
    if (rc == SQLITE_ROW) {
      return queueInfo(*st, leased);
    }
    if (rc != SQLITE_DONE) {
      return m.rdb.error(rc, "show");
    }
  }
  auto st = m.rdb.prepare(std::string("SELECT ") + kDeadInfoCols + " FROM dead WHERE msg_id=?1");
  if (!st) {
    return std::move(st).error();
  }
  st->bindText(1, msg_id);
  const int rc = st->step();
  if (rc == SQLITE_ROW) {
    return deadInfo(*st);
  }
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "show");
  }
  return Error(Errc::not_found, "no record with msg_id " + msg_id);
}

Result<Sensitive<std::string>> SqliteStore::reveal(const std::string& msg_id) {
  Impl& m = *impl_;
  const KeyRingPtr keys = m.ring();
  if (!keys) {
    return readOnlyError();
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  for (const char* sql : {"SELECT key_id, sealed FROM queue WHERE msg_id=?1",
                          "SELECT key_id, sealed FROM dead WHERE msg_id=?1"}) {
    auto st = m.rdb.prepare(sql);
    if (!st) {
      return std::move(st).error();
    }
    st->bindText(1, msg_id);
    const int rc = st->step();
    if (rc == SQLITE_DONE) {
      continue;
    }
    if (rc != SQLITE_ROW) {
      return m.rdb.error(rc, "reveal");
    }
    std::string plain;
    const std::string why =
        openRecord(*keys, static_cast<uint32_t>(st->i64(0)), msg_id, st->blob(1), plain);
    if (!why.empty()) {
      return Error(Errc::crypto, "msg_id " + msg_id + ": " + why);
    }
    return Sensitive<std::string>(std::move(plain));
  }
  return Error(Errc::not_found, "no record with msg_id " + msg_id);
}

// ---------------------------------------------------------------------------------------------
// Audit

Result<std::vector<AuditEntry>> SqliteStore::auditEntries(int64_t after_seq, size_t limit) {
  Impl& m = *impl_;
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  auto st = m.rdb.prepare(
      "SELECT seq,at_ms,actor,action,detail,prev_hash,hash FROM audit WHERE seq>?1 ORDER BY seq "
      "LIMIT ?2");
  if (!st) {
    return std::move(st).error();
  }
  st->bind(1, after_seq).bind(2, static_cast<int64_t>(std::min<size_t>(limit, 100'000)));
  std::vector<AuditEntry> out;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    AuditEntry e;
    e.seq = st->i64(0);
    e.at_ms = st->i64(1);
    e.actor = std::string(st->text(2));
    e.action = std::string(st->text(3));
    e.detail = std::string(st->text(4));
    e.prev_hash = std::string(st->text(5));
    e.hash = std::string(st->text(6));
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "read audit");
  }
  return out;
}

Result<AuditVerifyResult> SqliteStore::verifyAudit() {
  Impl& m = *impl_;
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return closedError();
  }
  auto st =
      m.rdb.prepare("SELECT seq,at_ms,actor,action,detail,prev_hash,hash FROM audit ORDER BY seq");
  if (!st) {
    return std::move(st).error();
  }
  AuditVerifyResult r;
  auto bad = [&r](int64_t seq, std::string problem) {
    if (r.ok) {
      r.ok = false;
      r.first_bad_seq = seq;
      r.problem = std::move(problem);
    }
  };
  bool first = true;
  int64_t prev_seq = 0;
  std::string prev_hash;
  int64_t cut_at = 0;         // the checkpoint a pruned chain starts at
  bool cut_recorded = false;  // an audit.pruned entry names it
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    const int64_t seq = st->i64(0);
    const std::string_view action = st->text(3);
    const std::string_view stored_prev = st->text(5);
    const std::string_view stored_hash = st->text(6);
    ++r.entries;
    if (first) {
      // The chain starts at seq 1 from the genesis hash, or (after pruning) at a checkpoint
      // entry whose prev_hash anchors the cut.
      if (seq == 1) {
        if (stored_prev != audit::genesisHash()) {
          bad(seq, "first entry does not start from the genesis hash");
        }
      } else if (action != audit::kCheckpointAction) {
        bad(seq, "chain starts at seq " + std::to_string(seq) + " without a checkpoint entry");
      } else {
        cut_at = seq;
      }
    } else {
      if (cut_at != 0 && action == audit::kPrunedAction &&
          st->text(4).find("{\"before_seq\":" + std::to_string(cut_at) + ",") == 0) {
        cut_recorded = true;
      }
      if (seq != prev_seq + 1) {
        bad(seq, "entry " + std::to_string(prev_seq + 1) + " is missing");
      } else if (stored_prev != prev_hash) {
        bad(seq, "prev_hash does not match the hash of entry " + std::to_string(prev_seq));
      }
    }
    const std::string computed =
        audit::entryHash(stored_prev, seq, st->i64(1), st->text(2), action, st->text(4));
    if (computed != stored_hash) {
      bad(seq, "hash does not match the entry's contents");
    }
    first = false;
    prev_seq = seq;
    prev_hash = std::string(stored_hash);
  }
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "verify audit");
  }
  if (cut_at != 0 && !cut_recorded && (r.ok || r.first_bad_seq > cut_at)) {
    r.ok = false;
    r.first_bad_seq = cut_at;
    r.problem = "entries before checkpoint " + std::to_string(cut_at) +
                " were removed without a recorded prune (audit.pruned)";
  }
  return r;
}
}  // namespace psa::store
