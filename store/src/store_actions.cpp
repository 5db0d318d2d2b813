// Technician actions, each run as a task in the writer's transaction: retry of one or every
// dead letter, purge of the dead letters, receipt acks by msg-id, key rotation (re-sealing the
// watermarks under the new key).

#include <algorithm>
#include <future>

#include "audit.h"
#include "crypto.h"
#include "psa/store/sqlite_store.h"
#include "store_impl.h"

namespace psa::store {
namespace {

constexpr size_t kRetryChunk = 500;

}  // namespace

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

}  // namespace psa::store
