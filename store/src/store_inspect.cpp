// Inspection and technician actions: stats, list/show/reveal, dead-letter retry/purge, receipt
// acks, watermarks, key rotation, audit read/verify, salvage of a moved-aside database.

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

constexpr size_t kSalvageChunk = 256;
constexpr size_t kRetryChunk = 500;
constexpr int64_t kSalvageProbeWindow = 4096;

Error closedError() { return Error(Errc::closed, "store closed"); }
Error readOnlyError() {
  return Error(Errc::closed, "the store is open read-only (inspection): no key is loaded");
}

Kind kindFrom(int64_t v) {
  return v >= 0 && static_cast<size_t>(v) < kKindCount ? kAllKinds[static_cast<size_t>(v)]
                                                       : Kind::other;
}

bool decodeWatermark(std::string_view plain, std::string& name, std::string& value) {
  if (plain.size() < 4) {
    return false;
  }
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) {
    n = n << 8 | static_cast<uint8_t>(plain[static_cast<size_t>(i)]);
  }
  if (plain.size() - 4 < n) {
    return false;
  }
  name.assign(plain.substr(4, n));
  value.assign(plain.substr(4 + n));
  return true;
}

constexpr const char* kQueueInfoCols =
    "seq,msg_id,source,vendor,kind,format,received_at,size,attempts,next_attempt_at,state,"
    "coalesce(reason,''),key_id";
constexpr const char* kDeadInfoCols =
    "seq,msg_id,source,vendor,kind,format,received_at,size,attempts,reason,dead_at,key_id";

RecordInfo queueInfo(const Stmt& s, const std::unordered_set<int64_t>& leased) {
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
  r.state = "dead";
  r.reason = std::string(s.text(9));
  r.dead_at_ms = s.i64(10);
  r.key_id = static_cast<uint32_t>(s.i64(11));
  return r;
}

struct SalvageRow {
  bool dead = false;
  std::string msg_id, source, vendor, format, origin, reason;
  int64_t kind = 0, received_at = 0, attempts = 0, dead_at = 0;
  Sensitive<std::string> payload;
};

}  // namespace

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
    const DataKey* dk = keys.find(key_id);
    std::string plain, name, value;
    if (dk == nullptr ||
        crypto::open(dk->raw, watermarkAad(scope, key_id), st->blob(1), plain) !=
            crypto::OpenError::ok ||
        !decodeWatermark(plain, name, value) || name != key) {
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
    const DataKey* dk = keys->find(key_id);
    std::string plain, name, value;
    if (dk == nullptr ||
        crypto::open(dk->raw, watermarkAad(scope, key_id), st->blob(1), plain) !=
            crypto::OpenError::ok ||
        !decodeWatermark(plain, name, value)) {
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
// Technician actions (run in the writer's transaction)

Status SqliteStore::Impl::retryDeadRow(const std::string& msg_id, OpCtx& ctx) {
  auto sel = wdb.prepare("SELECT kind, size FROM dead WHERE msg_id=?1");
  if (!sel) {
    return std::move(sel).error();
  }
  sel->bindText(1, msg_id);
  int rc = sel->step();
  if (rc == SQLITE_DONE) {
    return Error(Errc::not_found, "no dead letter with msg_id " + msg_id);
  }
  if (rc != SQLITE_ROW) {
    return wdb.error(rc, "retry dead letter");
  }
  const auto kind = static_cast<size_t>(sel->i64(0));
  const int64_t size = sel->i64(1);
  sel->reset();
  const int64_t seq = next_seq++;
  // Same msg_id and sealed bytes (the AAD binds msg_id and key id, not the table or seq); a
  // new seq puts it behind the lease cursor's position like any new record.
  auto ins = wdb.prepare(
      "INSERT INTO queue(seq,msg_id,source,vendor,kind,format,received_at,size,key_id,sealed) "
      "SELECT ?1,msg_id,source,vendor,kind,format,received_at,size,key_id,sealed FROM dead "
      "WHERE msg_id=?2");
  if (!ins) {
    return std::move(ins).error();
  }
  ins->bind(1, seq).bindText(2, msg_id);
  rc = ins->step();
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, "retry dead letter");
  }
  auto del = wdb.prepare("DELETE FROM dead WHERE msg_id=?1");
  if (!del) {
    return std::move(del).error();
  }
  del->bindText(1, msg_id);
  rc = del->step();
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, "retry dead letter");
  }
  if (kind < kKindCount) {
    ctx.delta.dead[kind] -= 1;
    ctx.delta.pending[kind] += 1;
    ctx.delta.bytes[kind] += size;
  }
  ctx.delta.last_seq = std::max(ctx.delta.last_seq, seq);
  ctx.deliverable = true;
  return {};
}

Status SqliteStore::retryDead(const std::string& msg_id) {
  Impl& m = *impl_;
  return m.runTask([&m, msg_id](OpCtx& ctx) -> Status {
    PSA_TRY(m.retryDeadRow(msg_id, ctx));
    AuditEntry e;
    e.at_ms = m.clock->nowMs();
    e.actor = "agent";
    e.action = "dead.retried";
    e.detail = "{\"msg_id\":" + audit::jsonString(msg_id) + "}";
    ctx.audits.push_back(std::move(e));
    return {};
  });
}

Result<uint64_t> SqliteStore::retryAllDead() {
  Impl& m = *impl_;
  uint64_t total = 0;
  while (true) {
    uint64_t chunk = 0;
    Status st = m.runTask([&m, &chunk](OpCtx& ctx) -> Status {
      auto sel = m.wdb.prepare("SELECT msg_id FROM dead ORDER BY seq LIMIT ?1");
      if (!sel) {
        return std::move(sel).error();
      }
      sel->bind(1, static_cast<int64_t>(kRetryChunk));
      std::vector<std::string> ids;
      int rc;
      while ((rc = sel->step()) == SQLITE_ROW) {
        ids.emplace_back(sel->text(0));
      }
      if (rc != SQLITE_DONE) {
        return m.wdb.error(rc, "retry dead letters");
      }
      sel->reset();
      for (const std::string& id : ids) {
        PSA_TRY(m.retryDeadRow(id, ctx));
      }
      chunk = ids.size();
      if (chunk > 0) {
        AuditEntry e;
        e.at_ms = m.clock->nowMs();
        e.actor = "agent";
        e.action = "dead.retried";
        e.detail = "{\"count\":" + std::to_string(chunk) + "}";
        ctx.audits.push_back(std::move(e));
      }
      return {};
    });
    if (!st) {
      return st.error();
    }
    total += chunk;
    if (chunk < kRetryChunk) {
      return total;
    }
  }
}

Result<uint64_t> SqliteStore::purgeDead() {
  Impl& m = *impl_;
  uint64_t purged = 0;
  Status st = m.runTask([&m, &purged](OpCtx& ctx) -> Status {
    auto del = m.wdb.prepare("DELETE FROM dead RETURNING kind, key_id");
    if (!del) {
      return std::move(del).error();
    }
    int rc;
    uint64_t n = 0;
    while ((rc = del->step()) == SQLITE_ROW) {
      const auto kind = static_cast<size_t>(del->i64(0));
      if (kind < kKindCount) {
        ctx.delta.dead[kind] -= 1;
      }
      ctx.delta.key_rows[static_cast<uint32_t>(del->i64(1))] -= 1;
      ++n;
    }
    if (rc != SQLITE_DONE) {
      return m.wdb.error(rc, "purge dead letters");
    }
    AuditEntry e;
    e.at_ms = m.clock->nowMs();
    e.actor = "agent";
    e.action = "dead.purged";
    e.detail = "{\"count\":" + std::to_string(n) + "}";
    ctx.audits.push_back(std::move(e));
    ctx.on_commit.push_back([&m] { m.check_key_drop = true; });
    purged = n;
    return {};
  });
  if (!st) {
    return st.error();
  }
  return purged;
}

Result<uint64_t> SqliteStore::ackByMsgId(const std::vector<std::string>& msg_ids) {
  Impl& m = *impl_;
  uint64_t acked = 0;
  Status st = m.runTask([&m, &msg_ids, &acked](OpCtx& ctx) -> Status {
    auto sel = m.wdb.prepare("SELECT seq FROM queue WHERE msg_id=?1 AND state<2");
    if (!sel) {
      return std::move(sel).error();
    }
    const int64_t now = m.clock->nowMs();
    std::vector<int64_t> seqs;
    for (const std::string& id : msg_ids) {
      StmtScope scope(*sel);
      sel->bindText(1, id);
      const int rc = sel->step();
      if (rc == SQLITE_DONE) {
        continue;
      }
      if (rc != SQLITE_ROW) {
        return m.wdb.error(rc, "ack by msg_id");
      }
      seqs.push_back(sel->i64(0));
    }
    uint64_t n = 0;
    for (int64_t seq : seqs) {
      bool found = false;
      PSA_TRY(m.ackOne(seq, now, ctx, found));
      n += found ? 1 : 0;
    }
    ctx.delivered += n;
    acked = n;
    ctx.on_commit.push_back([&m, seqs] {
      std::lock_guard lock(m.lease_mu);
      for (int64_t s : seqs) {
        m.leased.erase(s);
      }
    });
    return {};
  });
  if (!st) {
    return st.error();
  }
  return acked;
}

Result<uint32_t> SqliteStore::rotateKey() {
  Impl& m = *impl_;
  uint32_t new_id = 0;
  Status st = m.runTask([&m, &new_id](OpCtx& ctx) -> Status {
    const uint32_t id = std::max(m.max_key_id, m.wring->maxId()) + 1;
    auto key = DataKey::generate(id);
    if (!key) {
      return std::move(key).error();
    }
    auto next = std::make_shared<const KeyRing>(m.wring->with(*key));
    // The file first: a database that names a key the file lacks would be unreadable.
    PSA_TRY(writeKeyFile(m.opts.key_file, *next));
    auto ins = m.wdb.prepare("INSERT INTO keys(key_id, check_value, created_at) VALUES(?1,?2,?3)");
    if (!ins) {
      return std::move(ins).error();
    }
    ins->bind(1, id).bindBlob(2, key->check.data(), key->check.size()).bind(3, m.clock->nowMs());
    int rc = ins->step();
    if (rc != SQLITE_DONE) {
      return m.wdb.error(rc, "register key");
    }
    const std::string mk =
        "INSERT OR REPLACE INTO meta(k,v) VALUES('max_key_id'," + std::to_string(id) + ")";
    PSA_TRY(m.wdb.run(mk.c_str(), "record key id"));

    // Re-seal watermarks under the new key so they never pin an old one.
    struct Wm {
      std::string scope, mac, sealed;
      uint32_t key_id;
    };
    std::vector<Wm> wms;
    {
      auto sel = m.wdb.prepare("SELECT scope, name_mac, key_id, sealed FROM watermarks");
      if (!sel) {
        return std::move(sel).error();
      }
      while ((rc = sel->step()) == SQLITE_ROW) {
        wms.push_back({std::string(sel->text(0)), std::string(sel->blob(1)),
                       std::string(sel->blob(3)), static_cast<uint32_t>(sel->i64(2))});
      }
      if (rc != SQLITE_DONE) {
        return m.wdb.error(rc, "read watermarks");
      }
    }
    auto del = m.wdb.prepare("DELETE FROM watermarks WHERE scope=?1 AND name_mac=?2");
    auto put = m.wdb.prepare(
        "INSERT OR REPLACE INTO watermarks(scope,name_mac,key_id,updated_at,sealed) "
        "VALUES(?1,?2,?3,?4,?5)");
    if (!del || !put) {
      return Error(Errc::internal, "prepare watermark re-seal");
    }
    std::string plain, sealed;
    for (const Wm& w : wms) {
      const DataKey* old = m.wring->find(w.key_id);
      if (old == nullptr || w.key_id == id ||
          crypto::open(old->raw, watermarkAad(w.scope, w.key_id), w.sealed, plain) !=
              crypto::OpenError::ok) {
        continue;  // unreadable rows stay as they are (and keep their key)
      }
      std::string name, value;
      if (!decodeWatermark(plain, name, value)) {
        continue;
      }
      const crypto::Digest mac =
          crypto::hmacSha256(key->name_mac.data(), key->name_mac.size(), name);
      if (!crypto::seal(key->raw, watermarkAad(w.scope, id), plain, sealed)) {
        return Error(Errc::crypto, "encryption failed");
      }
      {
        StmtScope scope(*del);
        del->bindText(1, w.scope).bindBlob(2, w.mac);
        rc = del->step();
        if (rc != SQLITE_DONE) {
          return m.wdb.error(rc, "re-seal watermark");
        }
      }
      {
        StmtScope scope(*put);
        put->bindText(1, w.scope)
            .bindBlob(2, mac.data(), mac.size())
            .bind(3, id)
            .bind(4, m.clock->nowMs())
            .bindBlob(5, sealed);
        rc = put->step();
        if (rc != SQLITE_DONE) {
          return m.wdb.error(rc, "re-seal watermark");
        }
      }
      ctx.delta.key_rows[w.key_id] -= 1;
      ctx.delta.key_rows[id] += 1;
    }
    crypto::cleanse(plain.data(), plain.size());

    AuditEntry e;
    e.at_ms = m.clock->nowMs();
    e.actor = "agent";
    e.action = "key.rotated";
    e.detail = "{\"key_id\":" + std::to_string(id) + "}";
    ctx.audits.push_back(std::move(e));
    ctx.on_commit.push_back([&m, next, id] {
      m.max_key_id = id;
      m.setRing(next);
      m.check_key_drop = true;
      m.log.info("store.key_rotated", {{"key_id", id}, {"keys", next->keys().size()}});
    });
    new_id = id;
    return {};
  });
  if (!st) {
    return st.error();
  }
  return new_id;
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

// ---------------------------------------------------------------------------------------------
// Salvage

Result<SalvageReport> SqliteStore::salvage(const fs::path& file) {
  Impl& m = *impl_;
  if (m.opts.read_only) {
    return readOnlyError();
  }
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return Error(Errc::not_found, "no database file at " + file.string());
  }
  if (fs::equivalent(file, m.opts.db_path, ec)) {
    return Error(Errc::invalid_argument, "salvage needs a moved-aside file, not the live database");
  }
  // Work on a copy: opening a WAL database may write to it, and the moved-aside evidence must
  // stay untouched.
  std::string stamp = m.utcStamp();
  uint8_t rnd[4];
  crypto::randomBytes(rnd, sizeof rnd);
  const fs::path copy = m.opts.db_path.string() + ".salvage-" + stamp + "-" + crypto::toHex(rnd, 4);
  auto cleanup = [&copy] {
    std::error_code e;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      fs::path p = copy;
      p += suffix;
      fs::remove(p, e);
    }
  };
  fs::copy_file(file, copy, ec);
  if (!ec) {
    fs::path wal = file;
    wal += "-wal";
    if (fs::exists(wal)) {
      fs::path to = copy;
      to += "-wal";
      fs::copy_file(wal, to, ec);
    }
  }
  if (ec) {
    cleanup();
    return Error(Errc::io, "cannot copy " + file.string() + ": " + ec.message());
  }
  if (Status st = os::restrictToOwner(copy); !st) {
    cleanup();
    return std::move(st).error();
  }

  SalvageReport report;
  const KeyRingPtr keys = m.ring();
  std::vector<SalvageRow> chunk;
  Status failed;

  auto flush = [&]() -> Status {
    if (chunk.empty()) {
      return {};
    }
    uint64_t imported = 0, present = 0;
    Status st = m.runTask([&m, &chunk, &imported, &present](OpCtx& ctx) -> Status {
      imported = present = 0;  // a task may run again if its transaction is retried
      auto exists = m.wdb.prepare(
          "SELECT EXISTS(SELECT 1 FROM queue WHERE msg_id=?1) OR "
          "EXISTS(SELECT 1 FROM dead WHERE msg_id=?1)");
      if (!exists) {
        return std::move(exists).error();
      }
      const DataKey& key = m.wring->current();
      const int64_t now = m.clock->nowMs();
      for (const SalvageRow& row : chunk) {
        {
          StmtScope scope(*exists);
          exists->bindText(1, row.msg_id);
          const int rc = exists->step();
          if (rc != SQLITE_ROW) {
            return m.wdb.error(rc, "salvage");
          }
          if (exists->i64(0) != 0) {
            ++present;
            continue;
          }
        }
        PSA_TRY(m.sealPayload(key, row.msg_id, row.payload.reveal()));
        const auto size = static_cast<int64_t>(row.payload.reveal().size());
        const auto kind = static_cast<size_t>(row.kind);
        int rc;
        if (!row.dead) {
          const int64_t seq = m.next_seq++;
          StmtScope scope(m.ws.ins_queue);
          m.ws.ins_queue.bind(1, seq)
              .bindText(2, row.msg_id)
              .bindText(3, row.source)
              .bindText(4, row.vendor)
              .bind(5, row.kind)
              .bindText(6, row.format)
              .bind(7, row.received_at)
              .bind(8, size)
              .bind(9, key.id)
              .bindBlob(10, m.seal_buf);
          rc = m.ws.ins_queue.step();
          ctx.delta.pending[kind] += 1;
          ctx.delta.bytes[kind] += size;
          ctx.delta.last_seq = std::max(ctx.delta.last_seq, seq);
          ctx.deliverable = true;
        } else {
          StmtScope scope(m.ws.ins_dead);
          m.ws.ins_dead.bindText(1, row.msg_id)
              .bindText(2, row.source)
              .bindText(3, row.vendor)
              .bind(4, row.kind)
              .bindText(5, row.format)
              .bind(6, row.received_at)
              .bind(7, size)
              .bind(8, key.id)
              .bind(9, row.attempts)
              .bindText(10, row.origin)
              .bindText(11, row.reason)
              .bind(12, row.dead_at != 0 ? row.dead_at : now)
              .bindBlob(13, m.seal_buf);
          rc = m.ws.ins_dead.step();
          ctx.delta.dead[kind] += 1;
        }
        if (rc != SQLITE_DONE) {
          return m.wdb.error(rc, "salvage insert");
        }
        ctx.delta.key_rows[key.id] += 1;
        ++imported;
      }
      return {};
    });
    if (!st) {
      return st;
    }
    report.imported += imported;
    report.already_present += present;
    chunk.clear();
    return {};
  };

  {
    auto opened = Db::open(copy);
    if (!opened) {
      cleanup();
      return Error(Errc::corrupt, "cannot read " + file.string() + ": " + opened.error().message);
    }
    Db src = std::move(opened).value();
    auto probe = src.queryInt("SELECT count(*) FROM sqlite_master");
    if (!probe) {
      src.close();
      cleanup();
      return Error(Errc::corrupt, "cannot read " + file.string() + ": " + probe.error().message);
    }
    for (bool dead : {false, true}) {
      const std::string table = dead ? "dead" : "queue";
      const std::string cols =
          dead ? "seq,msg_id,source,vendor,kind,format,received_at,key_id,sealed,attempts,origin,"
                 "reason,dead_at"
               : "seq,msg_id,source,vendor,kind,format,received_at,key_id,sealed,state";
      auto range =
          src.prepare("SELECT " + cols + " FROM " + table + " WHERE seq>?1 ORDER BY seq LIMIT 256");
      auto point = src.prepare("SELECT " + cols + " FROM " + table + " WHERE seq=?1");
      if (!range || !point) {
        m.log.warn("store.salvage_table_unreadable", {{"table", table}});
        continue;
      }
      int64_t hi = 0;
      if (auto mx = src.queryInt(("SELECT coalesce(max(seq),0) FROM " + table).c_str())) {
        hi = *mx;
      } else if (auto ls = src.queryInt("SELECT value FROM counters WHERE name='last_seq'")) {
        hi = *ls;
      }
      auto handle = [&](Stmt& s) -> Status {
        SalvageRow row;
        row.dead = dead;
        row.msg_id = std::string(s.text(1));
        row.source = std::string(s.text(2));
        row.vendor = std::string(s.text(3));
        row.kind = s.i64(4);
        row.format = std::string(s.text(5));
        row.received_at = s.i64(6);
        const auto key_id = static_cast<uint32_t>(s.i64(7));
        if (!dead && s.i64(9) == kStateDelivered) {
          return {};  // already delivered: nothing to salvage
        }
        if (dead) {
          row.attempts = s.i64(9);
          row.origin = std::string(s.text(10));
          row.reason = std::string(s.text(11));
          row.dead_at = s.i64(12);
          if (row.origin.empty()) {
            row.origin = "salvage";
          }
        }
        std::string plain;
        if (!UlidGenerator::valid(row.msg_id) || row.kind < 0 ||
            static_cast<size_t>(row.kind) >= kKindCount ||
            !openRecord(*keys, key_id, row.msg_id, s.blob(8), plain).empty()) {
          ++report.unreadable;
          return {};
        }
        row.payload = Sensitive<std::string>(std::move(plain));
        chunk.push_back(std::move(row));
        if (chunk.size() >= kSalvageChunk) {
          return flush();
        }
        return {};
      };
      int64_t cursor = 0;
      while (failed) {
        StmtScope scope(*range);
        range->bind(1, cursor);
        int rc;
        size_t rows = 0;
        while ((rc = range->step()) == SQLITE_ROW) {
          ++rows;
          cursor = range->i64(0);
          failed = handle(*range);
          if (!failed) {
            break;
          }
        }
        if (!failed) {
          break;
        }
        if (rc == SQLITE_DONE) {
          if (rows < 256) {
            break;
          }
          continue;
        }
        // A damaged region: probe seq by seq until rows read again, counting what errors.
        range->reset();
        bool recovered = false;
        const int64_t stop = cursor + kSalvageProbeWindow;
        while (cursor < stop && (hi == 0 || cursor < hi)) {
          ++cursor;
          StmtScope pscope(*point);
          point->bind(1, cursor);
          const int prc = point->step();
          if (prc == SQLITE_ROW) {
            failed = handle(*point);
            recovered = true;
            break;
          }
          if (prc != SQLITE_DONE) {
            ++report.unreadable;
          }
        }
        if (!failed || (!recovered && (hi == 0 || cursor >= hi))) {
          break;
        }
      }
      if (!failed) {
        break;
      }
    }
    src.close();
  }
  if (failed) {
    failed = flush();
  }
  cleanup();
  if (!failed) {
    return failed.error();
  }
  const std::string name = file.filename().string();
  const SalvageReport rep = report;
  Status audited = m.runTask([&m, rep, name](OpCtx& ctx) -> Status {
    AuditEntry e;
    e.at_ms = m.clock->nowMs();
    e.actor = "agent";
    e.action = "queue.salvaged";
    e.detail = "{\"file\":" + audit::jsonString(name) +
               ",\"imported\":" + std::to_string(rep.imported) +
               ",\"already_present\":" + std::to_string(rep.already_present) +
               ",\"unreadable\":" + std::to_string(rep.unreadable) + "}";
    ctx.audits.push_back(std::move(e));
    return {};
  });
  m.log.info("store.salvaged", {{"file", file.string()},
                                {"imported", report.imported},
                                {"already_present", report.already_present},
                                {"unreadable", report.unreadable}});
  if (!audited) {
    return audited.error();
  }
  return report;
}

}  // namespace psa::store
