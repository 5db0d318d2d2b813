// The operations a writer round runs, each inside the round's transaction (store_writer.cpp):
// appends (checks, dedupe, sealing, the disk budget, watermarks) and acks, nacks and dead
// letters.

#include <algorithm>

#include "audit.h"
#include "crypto.h"
#include "psa/store/test_fault.h"
#include "store_impl.h"

namespace psa::store {
namespace {

constexpr size_t kMaxPayloadBytes = 64u << 20;
constexpr size_t kMaxReasonBytes = 1024;
constexpr size_t kMaxWatermarkBytes = 1u << 20;
// Budget estimate per row beyond payload and strings: seal overhead, msg_id in row and index,
// integer columns, b-tree cell overhead.
constexpr uint64_t kRowOverheadBytes = 160;

std::string truncated(std::string s, size_t max) {
  if (s.size() > max) {
    s.resize(max);
  }
  return s;
}

Status checkField(const std::string& value, const char* what, size_t index, bool required) {
  if (required && value.empty()) {
    return Error(Errc::invalid_argument,
                 std::string(what) + " of item " + std::to_string(index) + " is empty");
  }
  if (value.size() > kMaxFieldBytes) {
    return Error(Errc::invalid_argument, std::string(what) + " of item " + std::to_string(index) +
                                             " is longer than " + std::to_string(kMaxFieldBytes) +
                                             " bytes");
  }
  return {};
}

Status checkRecord(const Record& r, size_t i, const char* list) {
  const std::string where = std::string(list) + "[" + std::to_string(i) + "]";
  if (!r.msg_id.empty()) {
    return Error(Errc::invalid_argument, where + ".msg_id must be empty: the store assigns it");
  }
  if (static_cast<size_t>(r.kind) >= kKindCount) {
    return Error(Errc::invalid_argument, where + ".kind is not a known kind");
  }
  PSA_TRY(checkField(r.source, "source", i, true));
  PSA_TRY(checkField(r.vendor, "vendor", i, false));
  PSA_TRY(checkField(r.format, "format", i, false));
  if (r.payload.reveal().size() > kMaxPayloadBytes) {
    return Error(Errc::limit, where + ".payload is " + std::to_string(r.payload.reveal().size()) +
                                  " bytes; the limit is " + std::to_string(kMaxPayloadBytes));
  }
  return {};
}

uint64_t rowBytes(const Record& r) {
  return r.payload.reveal().size() + r.source.size() + r.vendor.size() + r.format.size() +
         kRowOverheadBytes;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Appends

Status SqliteStore::Impl::sealPayload(const DataKey& key, std::string_view msg_id,
                                      std::string_view plaintext) {
  if (!crypto::seal(key.raw, recordAad(msg_id, key.id), plaintext, seal_buf)) {
    return Error(Errc::crypto, "encryption failed");
  }
  return {};
}

void SqliteStore::Impl::logBudget(uint64_t used, uint64_t need) {
  ++budget_refusals;
  const int64_t now = clock->nowMs();
  if (now - last_budget_log_ms >= kLogEveryMs) {
    last_budget_log_ms = now;
    log.warn("store.budget_reached", {{"used_bytes", used},
                                      {"batch_bytes", need},
                                      {"max_bytes", opts.max_bytes},
                                      {"refused_batches", budget_refusals}});
  }
}

Status SqliteStore::Impl::runAppend(AppendBatch& batch, OpCtx& ctx, AppendResult& out) {
  uint64_t need = 0;
  for (size_t i = 0; i < batch.records.size(); ++i) {
    PSA_TRY(checkRecord(batch.records[i], i, "records"));
    need += rowBytes(batch.records[i]);
  }
  for (size_t i = 0; i < batch.dead.size(); ++i) {
    PSA_TRY(checkRecord(batch.dead[i].record, i, "dead"));
    need += rowBytes(batch.dead[i].record) + std::min(batch.dead[i].reason.size(), kMaxReasonBytes);
  }
  for (size_t i = 0; i < batch.watermarks.size(); ++i) {
    const WatermarkUpdate& w = batch.watermarks[i];
    if (w.scope.empty() || w.key.empty()) {
      return Error(Errc::invalid_argument,
                   "watermarks[" + std::to_string(i) + "] needs a scope and a key");
    }
    if (w.scope.size() > kMaxFieldBytes || w.key.size() > kMaxWatermarkBytes ||
        (w.value && w.value->size() > kMaxWatermarkBytes)) {
      return Error(Errc::limit, "watermarks[" + std::to_string(i) + "] is larger than " +
                                    std::to_string(kMaxWatermarkBytes) + " bytes");
    }
    need += w.scope.size() + w.key.size() + (w.value ? w.value->size() : 0) + kRowOverheadBytes;
  }
  const uint64_t used = usage_base + round_bytes;
  if (used + need > opts.max_bytes) {
    logBudget(used, need);
    return Error(Errc::full, "store at its disk budget: " + std::to_string(used) + " of " +
                                 std::to_string(opts.max_bytes) + " bytes in use, batch needs " +
                                 std::to_string(need) + "; retry after the queue drains");
  }

  Status st = savepoint([&]() -> Status {
    out = AppendResult{};
    const KeyRing& ring = *wring;
    const DataKey& key = ring.current();
    const int64_t now = clock->nowMs();
    const int64_t window_start =
        now - std::chrono::duration_cast<std::chrono::milliseconds>(opts.dedupe_window).count();
    out.records.reserve(batch.records.size());
    for (const Record& rec : batch.records) {
      Appended a;
      std::optional<crypto::Digest> mac_current;
      bool expired_row = false;
      if (rec.dedupe_identity) {
        const std::string& identity = rec.dedupe_identity->reveal();
        bool dup = false;
        // Newest key first; older keys' MACs cover identities recorded before a rotation.
        for (auto it = ring.keys().rbegin(); it != ring.keys().rend() && !dup; ++it) {
          const crypto::Digest mac =
              crypto::hmacSha256(it->dedupe_mac.data(), it->dedupe_mac.size(), identity);
          const bool is_current = it->id == key.id;
          if (is_current) {
            mac_current = mac;
          }
          StmtScope scope(ws.dedupe_get);
          ws.dedupe_get.bindBlob(1, mac.data(), mac.size());
          const int rc = ws.dedupe_get.step();
          if (rc == SQLITE_ROW) {
            if (ws.dedupe_get.i64(1) >= window_start) {
              a.msg_id = std::string(ws.dedupe_get.text(0));
              a.duplicate = true;
              dup = true;
            } else if (is_current) {
              expired_row = true;
            }
          } else if (rc != SQLITE_DONE) {
            return wdb.error(rc, "dedupe lookup");
          }
        }
        if (dup) {
          ++ctx.duplicates;
          out.records.push_back(std::move(a));
          continue;
        }
      }
      a.msg_id = ulid.next(now);
      const int64_t seq = next_seq++;
      const std::string& payload = rec.payload.reveal();
      PSA_TRY(sealPayload(key, a.msg_id, payload));
      {
        StmtScope scope(ws.ins_queue);
        ws.ins_queue.bind(1, seq)
            .bindText(2, a.msg_id)
            .bindText(3, rec.source)
            .bindText(4, rec.vendor)
            .bind(5, static_cast<int64_t>(rec.kind))
            .bindText(6, rec.format)
            .bind(7, rec.received_at_ms != 0 ? rec.received_at_ms : now)
            .bind(8, static_cast<int64_t>(payload.size()))
            .bind(9, key.id)
            .bindBlob(10, seal_buf);
        const int rc = ws.ins_queue.step();
        if (rc != SQLITE_DONE) {
          return wdb.error(rc, "insert record");
        }
      }
      if (mac_current) {
        Stmt& s = expired_row ? ws.dedupe_upd : ws.dedupe_ins;
        StmtScope scope(s);
        s.bindBlob(1, mac_current->data(), mac_current->size()).bindText(2, a.msg_id).bind(3, now);
        if (!expired_row) {
          s.bind(4, key.id);
        }
        const int rc = s.step();
        if (rc != SQLITE_DONE) {
          return wdb.error(rc, "record dedupe identity");
        }
        if (!expired_row) {
          ctx.delta.key_rows[key.id] += 1;
          ctx.delta.dedupe += 1;
        }
      }
      const size_t k = static_cast<size_t>(rec.kind);
      ctx.delta.pending[k] += 1;
      ctx.delta.bytes[k] += static_cast<int64_t>(payload.size());
      ctx.delta.key_rows[key.id] += 1;
      ctx.delta.last_seq = seq;
      ctx.accepted[rec.source] += 1;
      ++ctx.appended;
      ctx.deliverable = true;
      out.records.push_back(std::move(a));
    }

    for (const DeadLetterInput& d : batch.dead) {
      const Record& rec = d.record;
      std::string msg_id = ulid.next(now);
      const std::string& payload = rec.payload.reveal();
      PSA_TRY(sealPayload(key, msg_id, payload));
      const std::string reason = truncated(d.reason, kMaxReasonBytes);
      StmtScope scope(ws.ins_dead);
      ws.ins_dead.bindText(1, msg_id)
          .bindText(2, rec.source)
          .bindText(3, rec.vendor)
          .bind(4, static_cast<int64_t>(rec.kind))
          .bindText(5, rec.format)
          .bind(6, rec.received_at_ms != 0 ? rec.received_at_ms : now)
          .bind(7, static_cast<int64_t>(payload.size()))
          .bind(8, key.id)
          .bind(9, 0)
          .bindText(10, "ingest")
          .bindText(11, reason)
          .bind(12, now)
          .bindBlob(13, seal_buf);
      const int rc = ws.ins_dead.step();
      if (rc != SQLITE_DONE) {
        return wdb.error(rc, "insert dead letter");
      }
      ctx.delta.dead[static_cast<size_t>(rec.kind)] += 1;
      ctx.delta.key_rows[key.id] += 1;
      AuditEntry e;
      e.at_ms = now;
      e.actor = rec.source;
      e.action = "record.dead_lettered";
      e.detail = "{\"msg_id\":" + audit::jsonString(msg_id) +
                 ",\"origin\":\"ingest\",\"reason\":" + audit::jsonString(reason) + "}";
      ctx.audits.push_back(std::move(e));
      out.dead_ids.push_back(std::move(msg_id));
    }

    for (const WatermarkUpdate& w : batch.watermarks) {
      for (const DataKey& k : ring.keys()) {
        const crypto::Digest mac = crypto::hmacSha256(k.name_mac.data(), k.name_mac.size(), w.key);
        StmtScope scope(ws.wm_del);
        ws.wm_del.bindText(1, w.scope).bindBlob(2, mac.data(), mac.size());
        int rc;
        while ((rc = ws.wm_del.step()) == SQLITE_ROW) {
          ctx.delta.key_rows[static_cast<uint32_t>(ws.wm_del.i64(0))] -= 1;
        }
        if (rc != SQLITE_DONE) {
          return wdb.error(rc, "replace watermark");
        }
      }
      if (!w.value) {
        continue;
      }
      const crypto::Digest mac =
          crypto::hmacSha256(key.name_mac.data(), key.name_mac.size(), w.key);
      if (!crypto::seal(key.raw, watermarkAad(w.scope, key.id), encodeWatermark(w.key, *w.value),
                        seal_buf)) {
        return Error(Errc::crypto, "encryption failed");
      }
      StmtScope scope(ws.wm_ins);
      ws.wm_ins.bindText(1, w.scope)
          .bindBlob(2, mac.data(), mac.size())
          .bind(3, key.id)
          .bind(4, now)
          .bindBlob(5, seal_buf);
      const int rc = ws.wm_ins.step();
      if (rc != SQLITE_DONE) {
        return wdb.error(rc, "write watermark");
      }
      ctx.delta.key_rows[key.id] += 1;
    }
    return {};
  });
  if (st) {
    round_bytes += need;
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// Acks, nacks, dead letters

Status SqliteStore::Impl::ackOne(int64_t seq, int64_t now, OpCtx& ctx, bool& found) {
  found = false;
  if (opts.retain_delivered.count() > 0) {
    int state = 0;
    size_t kind = 0;
    int64_t size = 0;
    {
      StmtScope scope(ws.ack_sel);
      ws.ack_sel.bind(1, seq);
      const int rc = ws.ack_sel.step();
      if (rc == SQLITE_DONE) {
        return {};
      }
      if (rc != SQLITE_ROW) {
        return wdb.error(rc, "ack");
      }
      state = static_cast<int>(ws.ack_sel.i64(0));
      kind = static_cast<size_t>(ws.ack_sel.i64(1));
      size = ws.ack_sel.i64(2);
    }
    StmtScope scope(ws.ack_ret);
    ws.ack_ret.bind(1, seq).bind(2, now);
    const int rc = ws.ack_ret.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "ack");
    }
    if (kind < kKindCount) {
      ctx.delta.pending[kind] -= 1;
      ctx.delta.bytes[kind] -= size;
    }
    ctx.delta.retry -= state == kStateRetry ? 1 : 0;
    ctx.delta.retained += 1;
    found = true;
    return {};
  }
  StmtScope scope(ws.ack_del);
  ws.ack_del.bind(1, seq);
  const int rc = ws.ack_del.step();
  if (rc == SQLITE_DONE) {
    return {};
  }
  if (rc != SQLITE_ROW) {
    return wdb.error(rc, "ack");
  }
  const int state = static_cast<int>(ws.ack_del.i64(0));
  const size_t kind = static_cast<size_t>(ws.ack_del.i64(1));
  if (kind < kKindCount) {
    ctx.delta.pending[kind] -= 1;
    ctx.delta.bytes[kind] -= ws.ack_del.i64(2);
  }
  ctx.delta.retry -= state == kStateRetry ? 1 : 0;
  ctx.delta.key_rows[static_cast<uint32_t>(ws.ack_del.i64(3))] -= 1;
  // Drain the RETURNING statement so the delete completes.
  const int rc2 = ws.ack_del.step();
  if (rc2 != SQLITE_DONE) {
    return wdb.error(rc2, "ack");
  }
  found = true;
  return {};
}

Status SqliteStore::Impl::runAck(const AckOp& op, OpCtx& ctx) {
  const int64_t now = clock->nowMs();
  if (opts.retain_delivered.count() > 0) {
    for (int64_t seq : op.seqs) {
      bool found = false;
      PSA_TRY(ackOne(seq, now, ctx, found));
      ctx.delivered += found ? 1 : 0;
    }
    return {};
  }
  // Acks arrive as runs of consecutive seqs (leases are FIFO): one range DELETE per run instead
  // of one statement per record.
  std::vector<int64_t> seqs = op.seqs;
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  for (size_t i = 0; i < seqs.size();) {
    size_t j = i;
    while (j + 1 < seqs.size() && seqs[j + 1] == seqs[j] + 1) {
      ++j;
    }
    StmtScope scope(ws.ack_del_range);
    ws.ack_del_range.bind(1, seqs[i]).bind(2, seqs[j]);
    int rc;
    while ((rc = ws.ack_del_range.step()) == SQLITE_ROW) {
      const int state = static_cast<int>(ws.ack_del_range.i64(0));
      const auto kind = static_cast<size_t>(ws.ack_del_range.i64(1));
      if (kind < kKindCount) {
        ctx.delta.pending[kind] -= 1;
        ctx.delta.bytes[kind] -= ws.ack_del_range.i64(2);
      }
      ctx.delta.retry -= state == kStateRetry ? 1 : 0;
      ctx.delta.key_rows[static_cast<uint32_t>(ws.ack_del_range.i64(3))] -= 1;
      ctx.delivered += 1;
    }
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "ack");
    }
    i = j + 1;
  }
  return {};
}

Status SqliteStore::Impl::runNack(const NackOp& op, OpCtx& ctx) {
  const std::string reason = truncated(op.reason, kMaxReasonBytes);
  for (int state : {kStatePending, kStateRetry}) {
    StmtScope scope(ws.nack_upd);
    ws.nack_upd.bind(1, op.retry_at).bindText(2, reason).bind(3, op.seq).bind(4, state);
    const int rc = ws.nack_upd.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "nack");
    }
    if (wdb.changes() > 0) {
      ctx.delta.retry += state == kStatePending ? 1 : 0;
      if (op.retry_at <= clock->nowMs()) {
        ctx.deliverable = true;
      } else {
        ctx.retry_at = op.retry_at;
      }
      return {};
    }
  }
  return Error(Errc::not_found, "seq " + std::to_string(op.seq) + " is not queued");
}

Status SqliteStore::Impl::runDead(const DeadOp& op, OpCtx& ctx) {
  int state = 0;
  size_t kind = 0;
  int64_t size = 0;
  std::string msg_id, source;
  {
    StmtScope scope(ws.q_meta);
    ws.q_meta.bind(1, op.seq);
    const int rc = ws.q_meta.step();
    if (rc == SQLITE_DONE) {
      return Error(Errc::not_found, "seq " + std::to_string(op.seq) + " is not queued");
    }
    if (rc != SQLITE_ROW) {
      return wdb.error(rc, "dead-letter");
    }
    state = static_cast<int>(ws.q_meta.i64(0));
    kind = static_cast<size_t>(ws.q_meta.i64(1));
    size = ws.q_meta.i64(2);
    msg_id = std::string(ws.q_meta.text(3));
    source = std::string(ws.q_meta.text(4));
  }
  const std::string reason = truncated(op.reason, kMaxReasonBytes);
  const int64_t now = clock->nowMs();
  {
    StmtScope scope(ws.dead_from_queue);
    ws.dead_from_queue.bind(1, op.seq).bindText(2, reason).bind(3, now);
    const int rc = ws.dead_from_queue.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "dead-letter");
    }
  }
  {
    StmtScope scope(ws.q_del);
    ws.q_del.bind(1, op.seq);
    const int rc = ws.q_del.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "dead-letter");
    }
  }
  if (kind < kKindCount) {
    ctx.delta.pending[kind] -= 1;
    ctx.delta.bytes[kind] -= size;
    ctx.delta.dead[kind] += 1;
  }
  ctx.delta.retry -= state == kStateRetry ? 1 : 0;
  AuditEntry e;
  e.at_ms = now;
  e.actor = "agent";
  e.action = "record.dead_lettered";
  e.detail = "{\"msg_id\":" + audit::jsonString(msg_id) +
             ",\"source\":" + audit::jsonString(source) +
             ",\"origin\":\"delivery\",\"reason\":" + audit::jsonString(reason) + "}";
  ctx.audits.push_back(std::move(e));
  ctx.on_commit.push_back([this, msg_id, reason] {
    log.warn("store.dead_lettered", {{"msg_id", msg_id}, {"reason", reason}});
  });
  return {};
}

}  // namespace psa::store
