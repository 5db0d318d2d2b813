// The outbound (write-back) queue: changes run as tasks in the writer's transaction, inspection
// on the read connection. Layout in schema migration 3 (schema_migrations.cpp).

#include "psa/store/outbound_queue.h"

#include <memory>

#include "audit.h"
#include "crypto.h"
#include "store_impl.h"

namespace psa::store {
namespace {

constexpr std::string_view kQueued = "queued";
constexpr size_t kMaxIdBytes = 64;

using Impl = SqliteStore::Impl;

// Binds each sealed blob to its row and role, so a blob cannot be moved to another request or
// from a request to a result.
std::string blobAad(std::string_view role, std::string_view id, uint32_t key_id) {
  std::string a = "outbound.";
  a.append(role).append(1, '\0').append(id).append(1, '\0').append(std::to_string(key_id));
  return a;
}

std::string macOf(const DataKey& key, std::string_view role, std::string_view a,
                  std::string_view b) {
  std::string data(role);
  data.append(1, '\0').append(a).append(1, '\0').append(b);
  const crypto::Digest d = crypto::hmacSha256(key.dedupe_mac.data(), key.dedupe_mac.size(), data);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

Status sealWith(const DataKey& key, std::string_view role, std::string_view id,
                std::string_view plain, std::string& out) {
  if (!crypto::seal(key.raw, blobAad(role, id, key.id), plain, out)) {
    return Error(Errc::crypto, "encryption failed");
  }
  return {};
}

Result<std::string> openWith(const KeyRing& ring, std::string_view role, std::string_view id,
                             uint32_t key_id, std::string_view sealed) {
  const DataKey* key = ring.find(key_id);
  if (key == nullptr) {
    return Error(Errc::crypto, "key " + std::to_string(key_id) + " of outbound " + std::string(id) +
                                   " is not in the key file");
  }
  std::string plain;
  if (crypto::open(key->raw, blobAad(role, id, key_id), sealed, plain) != crypto::OpenError::ok) {
    return Error(Errc::crypto, "outbound " + std::string(id) + ": " + std::string(role) +
                                   " does not decrypt (key " + std::to_string(key_id) + ")");
  }
  return plain;
}

bool isFinal(std::string_view status) {
  return status == "delivered" || status == "failed" || status == "expired" ||
         status == "cancelled" || status == "rejected";
}

// Queues a result document (sealed) in the caller's transaction.
Status insertResult(Impl& m, OpCtx& ctx, std::string_view id, std::string_view json) {
  const DataKey& key = m.wring->current();
  std::string sealed;
  PSA_TRY(sealWith(key, "result", id, json, sealed));
  auto ins = m.wdb.prepare("INSERT INTO outbound_results(id,key_id,sealed) VALUES(?1,?2,?3)");
  if (!ins) {
    return std::move(ins).error();
  }
  ins->bindText(1, id).bind(2, key.id).bindBlob(3, sealed);
  const int rc = ins->step();
  if (rc != SQLITE_DONE) {
    return m.wdb.error(rc, "queue outbound result");
  }
  ctx.delta.key_rows[key.id] += 1;
  return {};
}

// Runs `fn` in the writer's next transaction; `done` gets its output after COMMIT.
template <class T, class Fn>
void runTaskAsync(Impl& m, Fn fn, OutboundQueue::Callback<T> done) {
  auto out = std::make_shared<T>();
  m.enqueue(TaskOp{[fn = std::move(fn), out](OpCtx& ctx) -> Status { return fn(ctx, *out); },
                   [out, done = std::move(done)](Status st) {
                     if (!done) {
                       return;
                     }
                     if (!st) {
                       done(st.error());
                     } else {
                       done(std::move(*out));
                     }
                   }});
}

constexpr const char* kInfoCols =
    "seq,id,target,op,kind,format,state,issued_at,expires_at,received_at,next_attempt_at,"
    "finished_at,attempts,size,coalesce(last_error,'')";

OutboundInfo infoOf(const Stmt& s) {
  OutboundInfo r;
  r.seq = s.i64(0);
  r.id = std::string(s.text(1));
  r.target = std::string(s.text(2));
  r.op = std::string(s.text(3));
  r.kind = std::string(s.text(4));
  r.format = std::string(s.text(5));
  r.state = std::string(s.text(6));
  r.issued_at_ms = s.i64(7);
  r.expires_at_ms = s.i64(8);
  r.received_at_ms = s.i64(9);
  r.next_attempt_ms = s.i64(10);
  r.finished_at_ms = s.i64(11);
  r.attempts = static_cast<uint32_t>(s.i64(12));
  r.size = static_cast<uint64_t>(s.i64(13));
  r.last_error = std::string(s.text(14));
  return r;
}

Status putRow(Impl& m, const OutboundOptions& opts, OpCtx& ctx, const OutboundPut& req,
              PutOutcome& out) {
  const KeyRing& ring = *m.wring;
  // A known id: the same document is a resend (answer again), another is a replay.
  {
    auto sel =
        m.wdb.prepare("SELECT state,key_id,doc_mac,result_key_id,result FROM outbound WHERE id=?1");
    if (!sel) {
      return std::move(sel).error();
    }
    sel->bindText(1, req.id);
    const int rc = sel->step();
    if (rc == SQLITE_ROW) {
      const std::string state(sel->text(0));
      const DataKey* key = ring.find(static_cast<uint32_t>(sel->i64(1)));
      if (key == nullptr || macOf(*key, "doc", req.id, req.document.reveal()) != sel->blob(2)) {
        out.status = PutStatus::replayed;
        out.state = state;
        return {};
      }
      out.status = PutStatus::known;
      out.state = state;
      if (state == kQueued || sel->isNull(4)) {
        out.result = req.accepted_result;
      } else {
        auto plain =
            openWith(ring, "final", req.id, static_cast<uint32_t>(sel->i64(3)), sel->blob(4));
        if (!plain) {
          return std::move(plain).error();
        }
        out.result = std::move(*plain);
      }
      sel->reset();
      return insertResult(m, ctx, req.id, out.result);
    }
    if (rc != SQLITE_DONE) {
      return m.wdb.error(rc, "look up outbound request");
    }
  }
  const DataKey& key = ring.current();
  std::string sealed;
  PSA_TRY(sealWith(key, "request", req.id, req.document.reveal(), sealed));
  // Budget: requests not yet final.
  {
    auto sum =
        m.wdb.prepare("SELECT count(*), coalesce(sum(size),0) FROM outbound WHERE state='queued'");
    if (!sum) {
      return std::move(sum).error();
    }
    if (sum->step() != SQLITE_ROW) {
      return m.wdb.error(SQLITE_ERROR, "outbound budget");
    }
    const auto rows = static_cast<uint64_t>(sum->i64(0));
    const auto bytes = static_cast<uint64_t>(sum->i64(1));
    sum->reset();
    if (opts.max_rows > 0 && rows + 1 > opts.max_rows) {
      out.status = PutStatus::full;
      out.error = "outbound queue holds " + std::to_string(rows) + " requests (max_rows " +
                  std::to_string(opts.max_rows) + ")";
      return {};
    }
    if (opts.max_bytes > 0 && bytes + sealed.size() > opts.max_bytes) {
      out.status = PutStatus::full;
      out.error = "outbound queue holds " + std::to_string(bytes) + " bytes (max_bytes " +
                  std::to_string(opts.max_bytes) + ")";
      return {};
    }
  }
  // The ordering MAC: reuse the one a queued request of the same key already has under an older
  // key, so a key rotation does not split one patient's sequence.
  std::string order_mac;
  if (!req.ordering_key.reveal().empty()) {
    order_mac = macOf(key, "order", req.target, req.ordering_key.reveal());
    for (const DataKey& k : ring.keys()) {
      if (k.id == key.id) {
        continue;
      }
      std::string older = macOf(k, "order", req.target, req.ordering_key.reveal());
      auto q = m.wdb.prepare(
          "SELECT 1 FROM outbound WHERE state='queued' AND target=?1 AND order_mac=?2 LIMIT 1");
      if (!q) {
        return std::move(q).error();
      }
      q->bindText(1, req.target).bindBlob(2, older);
      if (q->step() == SQLITE_ROW) {
        order_mac = std::move(older);
        q->reset();
        break;
      }
      q->reset();
    }
  }
  const std::string doc_mac = macOf(key, "doc", req.id, req.document.reveal());
  auto ins = m.wdb.prepare(
      "INSERT INTO outbound(id,target,op,kind,format,issued_at,expires_at,received_at,state,"
      "size,key_id,order_mac,doc_mac,sealed) "
      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,'queued',?9,?10,?11,?12,?13)");
  if (!ins) {
    return std::move(ins).error();
  }
  ins->bindText(1, req.id)
      .bindText(2, req.target)
      .bindText(3, req.op)
      .bindText(4, req.kind)
      .bindText(5, req.format)
      .bind(6, req.issued_at_ms)
      .bind(7, req.expires_at_ms)
      .bind(8, m.clock->nowMs())
      .bind(9, static_cast<int64_t>(sealed.size()))
      .bind(10, static_cast<int64_t>(key.id))
      .bindBlob(12, doc_mac)
      .bindBlob(13, sealed);
  if (order_mac.empty()) {
    ins->bindNull(11);
  } else {
    ins->bindBlob(11, order_mac);
  }
  const int rc = ins->step();
  if (rc != SQLITE_DONE) {
    return m.wdb.error(rc, "queue outbound request");
  }
  ctx.delta.key_rows[key.id] += 1;
  out.status = PutStatus::queued;
  out.state = std::string(kQueued);
  out.result = req.accepted_result;
  return insertResult(m, ctx, req.id, out.result);
}

Status nextRow(Impl& m, const std::string& target, NextOutcome& out) {
  const int64_t now = m.clock->nowMs();
  // The first due request of the target whose ordering key has no earlier request still queued.
  auto sel = m.wdb.prepare(
      "SELECT o.id,o.op,o.kind,o.format,o.issued_at,o.expires_at,o.received_at,o.attempts,"
      "o.key_id,o.sealed FROM outbound o WHERE o.state='queued' AND o.target=?1 AND "
      "o.next_attempt_at<=?2 AND NOT EXISTS(SELECT 1 FROM outbound p WHERE p.state='queued' AND "
      "p.target=o.target AND p.order_mac=o.order_mac AND (p.issued_at<o.issued_at OR "
      "(p.issued_at=o.issued_at AND p.seq<o.seq))) ORDER BY o.issued_at, o.seq LIMIT 1");
  if (!sel) {
    return std::move(sel).error();
  }
  sel->bindText(1, target).bind(2, now);
  const int rc = sel->step();
  if (rc == SQLITE_ROW) {
    OutboundItem item;
    item.id = std::string(sel->text(0));
    item.target = target;
    item.op = std::string(sel->text(1));
    item.kind = std::string(sel->text(2));
    item.format = std::string(sel->text(3));
    item.issued_at_ms = sel->i64(4);
    item.expires_at_ms = sel->i64(5);
    item.received_at_ms = sel->i64(6);
    item.attempts = static_cast<uint32_t>(sel->i64(7));
    auto plain =
        openWith(*m.wring, "request", item.id, static_cast<uint32_t>(sel->i64(8)), sel->blob(9));
    sel->reset();
    if (!plain) {
      return std::move(plain).error();
    }
    item.document = Sensitive<std::string>(std::move(*plain));
    out.item = std::move(item);
    return {};
  }
  sel->reset();
  if (rc != SQLITE_DONE) {
    return m.wdb.error(rc, "next outbound request");
  }
  auto wake = m.wdb.prepare(
      "SELECT coalesce(min(next_attempt_at),0) FROM outbound WHERE state='queued' AND "
      "target=?1 AND next_attempt_at>?2");
  if (!wake) {
    return std::move(wake).error();
  }
  wake->bindText(1, target).bind(2, now);
  if (wake->step() == SQLITE_ROW) {
    out.wake_at_ms = wake->i64(0);
  }
  wake->reset();
  return {};
}

Status finishRow(Impl& m, OpCtx& ctx, const std::string& id, const std::string& status,
                 const std::string& result, uint32_t attempts_added) {
  if (!isFinal(status)) {
    return Error(Errc::invalid_argument, "not a final status: " + status);
  }
  auto sel = m.wdb.prepare("SELECT state,target,op,kind,attempts FROM outbound WHERE id=?1");
  if (!sel) {
    return std::move(sel).error();
  }
  sel->bindText(1, id);
  const int rc = sel->step();
  if (rc == SQLITE_DONE) {
    return Error(Errc::not_found, "no outbound request " + id);
  }
  if (rc != SQLITE_ROW) {
    return m.wdb.error(rc, "finish outbound request");
  }
  const std::string state(sel->text(0));
  const std::string target(sel->text(1));
  const std::string op(sel->text(2));
  const std::string kind(sel->text(3));
  const int64_t attempts = sel->i64(4) + attempts_added;
  sel->reset();
  if (state != kQueued) {
    return Error(Errc::exists, "outbound request " + id + " is already " + state);
  }
  const DataKey& key = m.wring->current();
  std::string sealed;
  PSA_TRY(sealWith(key, "final", id, result, sealed));
  auto upd = m.wdb.prepare(
      "UPDATE outbound SET state=?2,attempts=?3,finished_at=?4,result_key_id=?5,result=?6,"
      "next_attempt_at=0 WHERE id=?1");
  if (!upd) {
    return std::move(upd).error();
  }
  upd->bindText(1, id)
      .bindText(2, status)
      .bind(3, attempts)
      .bind(4, m.clock->nowMs())
      .bind(5, static_cast<int64_t>(key.id))
      .bindBlob(6, sealed);
  const int urc = upd->step();
  if (urc != SQLITE_DONE) {
    return m.wdb.error(urc, "finish outbound request");
  }
  ctx.delta.key_rows[key.id] += 1;
  PSA_TRY(insertResult(m, ctx, id, result));
  AuditEntry e;
  e.at_ms = m.clock->nowMs();
  e.actor = "agent";
  e.action = "write." + status;
  e.detail = "{\"id\":" + audit::jsonString(id) + ",\"target\":" + audit::jsonString(target) +
             ",\"op\":" + audit::jsonString(op) + ",\"kind\":" + audit::jsonString(kind) +
             ",\"status\":" + audit::jsonString(status) +
             ",\"attempts\":" + std::to_string(attempts) + "}";
  ctx.audits.push_back(std::move(e));
  return {};
}

Status checkId(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdBytes) {
    return Error(Errc::invalid_argument, "outbound request id must have 1-64 bytes");
  }
  return {};
}

}  // namespace

OutboundQueue::OutboundQueue(SqliteStore& store, OutboundOptions options)
    : store_(store), options_(options) {}

void OutboundQueue::put(OutboundPut request, Callback<PutOutcome> done) {
  Status ok = checkId(request.id);
  if (ok && (request.target.empty() || request.target.size() > kMaxFieldBytes)) {
    ok = Error(Errc::invalid_argument, "outbound request target must have 1-256 bytes");
  }
  if (!ok) {
    done(ok.error());
    return;
  }
  Impl& m = *store_.impl_;
  runTaskAsync<PutOutcome>(
      m,
      [&m, opts = options_, req = std::make_shared<OutboundPut>(std::move(request))](
          OpCtx& ctx, PutOutcome& out) { return putRow(m, opts, ctx, *req, out); },
      std::move(done));
}

void OutboundQueue::next(std::string target, Callback<NextOutcome> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<NextOutcome>(
      m,
      [&m, target = std::move(target)](OpCtx&, NextOutcome& out) {
        return nextRow(m, target, out);
      },
      std::move(done));
}

void OutboundQueue::finish(std::string id, std::string status, std::string result,
                           uint32_t attempts_added, Callback<bool> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<bool>(
      m,
      [&m, id = std::move(id), status = std::move(status), result = std::move(result),
       attempts_added](OpCtx& ctx, bool& out) -> Status {
        PSA_TRY(finishRow(m, ctx, id, status, result, attempts_added));
        out = true;
        return Status{};
      },
      std::move(done));
}

void OutboundQueue::defer(std::string id, int64_t retry_at_ms, uint32_t attempts_added,
                          std::string error, Callback<bool> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<bool>(
      m,
      [&m, id = std::move(id), retry_at_ms, attempts_added, error = std::move(error)](
          OpCtx&, bool& out) -> Status {
        auto upd = m.wdb.prepare(
            "UPDATE outbound SET next_attempt_at=?2, attempts=attempts+?3, last_error=?4 WHERE "
            "id=?1 AND state='queued'");
        if (!upd) {
          return std::move(upd).error();
        }
        upd->bindText(1, id).bind(2, retry_at_ms).bind(3, attempts_added).bindText(4, error);
        const int rc = upd->step();
        if (rc != SQLITE_DONE) {
          return m.wdb.error(rc, "defer outbound request");
        }
        out = m.wdb.changes() > 0;
        return {};
      },
      std::move(done));
}

void OutboundQueue::requeue(std::string id, Callback<bool> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<bool>(
      m,
      [&m, id = std::move(id)](OpCtx& ctx, bool& out) -> Status {
        auto sel = m.wdb.prepare("SELECT state,result_key_id FROM outbound WHERE id=?1");
        if (!sel) {
          return std::move(sel).error();
        }
        sel->bindText(1, id);
        const int rc = sel->step();
        if (rc == SQLITE_DONE) {
          return Error(Errc::not_found, "no outbound request " + id);
        }
        if (rc != SQLITE_ROW) {
          return m.wdb.error(rc, "requeue outbound request");
        }
        const std::string state(sel->text(0));
        const bool had_result = !sel->isNull(1);
        const auto result_key = static_cast<uint32_t>(sel->i64(1));
        sel->reset();
        if (state != "failed" && state != "expired") {
          return Error(Errc::invalid_argument, "outbound request " + id + " is " + state +
                                                   "; only a failed or expired "
                                                   "request can be retried");
        }
        auto upd = m.wdb.prepare(
            "UPDATE outbound SET state='queued',next_attempt_at=0,finished_at=0,result=NULL,"
            "result_key_id=NULL,last_error=NULL WHERE id=?1");
        if (!upd) {
          return std::move(upd).error();
        }
        upd->bindText(1, id);
        const int urc = upd->step();
        if (urc != SQLITE_DONE) {
          return m.wdb.error(urc, "requeue outbound request");
        }
        if (had_result) {
          ctx.delta.key_rows[result_key] -= 1;
        }
        out = true;
        return {};
      },
      std::move(done));
}

void OutboundQueue::queueResult(std::string id, std::string result, Callback<bool> done) {
  Status ok = checkId(id);
  if (!ok) {
    done(ok.error());
    return;
  }
  Impl& m = *store_.impl_;
  runTaskAsync<bool>(
      m,
      [&m, id = std::move(id), result = std::move(result)](OpCtx& ctx, bool& out) -> Status {
        PSA_TRY(insertResult(m, ctx, id, result));
        out = true;
        return Status{};
      },
      std::move(done));
}

void OutboundQueue::pendingResults(int64_t after_seq, size_t limit,
                                   Callback<std::vector<PendingResult>> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<std::vector<PendingResult>>(
      m,
      [&m, after_seq, limit](OpCtx&, std::vector<PendingResult>& out) -> Status {
        auto sel = m.wdb.prepare(
            "SELECT seq,id,key_id,sealed FROM outbound_results WHERE seq>?1 ORDER BY seq "
            "LIMIT ?2");
        if (!sel) {
          return std::move(sel).error();
        }
        sel->bind(1, after_seq).bind(2, static_cast<int64_t>(limit));
        int rc;
        while ((rc = sel->step()) == SQLITE_ROW) {
          PendingResult r;
          r.seq = sel->i64(0);
          r.id = std::string(sel->text(1));
          auto plain =
              openWith(*m.wring, "result", r.id, static_cast<uint32_t>(sel->i64(2)), sel->blob(3));
          if (!plain) {
            sel->reset();
            return std::move(plain).error();
          }
          r.json = std::move(*plain);
          out.push_back(std::move(r));
        }
        sel->reset();
        if (rc != SQLITE_DONE) {
          return m.wdb.error(rc, "read outbound results");
        }
        return {};
      },
      std::move(done));
}

void OutboundQueue::ackResult(int64_t seq, Callback<bool> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<bool>(
      m,
      [&m, seq](OpCtx& ctx, bool& out) -> Status {
        auto del = m.wdb.prepare("DELETE FROM outbound_results WHERE seq=?1 RETURNING key_id");
        if (!del) {
          return std::move(del).error();
        }
        del->bind(1, seq);
        int rc;
        while ((rc = del->step()) == SQLITE_ROW) {
          ctx.delta.key_rows[static_cast<uint32_t>(del->i64(0))] -= 1;
          out = true;
        }
        del->reset();
        return rc == SQLITE_DONE ? Status{} : Status(m.wdb.error(rc, "ack outbound result"));
      },
      std::move(done));
}

void OutboundQueue::prune(Callback<uint64_t> done) {
  Impl& m = *store_.impl_;
  runTaskAsync<uint64_t>(
      m,
      [&m, retain = options_.retain_finished_ms](OpCtx& ctx, uint64_t& out) -> Status {
        auto del = m.wdb.prepare(
            "DELETE FROM outbound WHERE state<>'queued' AND finished_at<?1 RETURNING key_id, "
            "result_key_id");
        if (!del) {
          return std::move(del).error();
        }
        del->bind(1, m.clock->nowMs() - retain);
        int rc;
        while ((rc = del->step()) == SQLITE_ROW) {
          ctx.delta.key_rows[static_cast<uint32_t>(del->i64(0))] -= 1;
          if (!del->isNull(1)) {
            ctx.delta.key_rows[static_cast<uint32_t>(del->i64(1))] -= 1;
          }
          ++out;
        }
        del->reset();
        return rc == SQLITE_DONE ? Status{} : Status(m.wdb.error(rc, "prune outbound requests"));
      },
      std::move(done));
}

Result<std::vector<OutboundInfo>> OutboundQueue::list(int64_t after_seq, size_t limit) {
  Impl& m = *store_.impl_;
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return Error(Errc::closed, "store closed");
  }
  auto sel = m.rdb.prepare(std::string("SELECT ") + kInfoCols +
                           " FROM outbound WHERE seq>?1 ORDER BY seq LIMIT ?2");
  if (!sel) {
    return std::move(sel).error();
  }
  sel->bind(1, after_seq).bind(2, static_cast<int64_t>(limit));
  std::vector<OutboundInfo> out;
  int rc;
  while ((rc = sel->step()) == SQLITE_ROW) {
    out.push_back(infoOf(*sel));
  }
  sel->reset();
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "list outbound requests");
  }
  return out;
}

Result<OutboundInfo> OutboundQueue::show(const std::string& id) {
  Impl& m = *store_.impl_;
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return Error(Errc::closed, "store closed");
  }
  auto sel = m.rdb.prepare(std::string("SELECT ") + kInfoCols + " FROM outbound WHERE id=?1");
  if (!sel) {
    return std::move(sel).error();
  }
  sel->bindText(1, id);
  const int rc = sel->step();
  if (rc == SQLITE_ROW) {
    OutboundInfo info = infoOf(*sel);
    sel->reset();
    return info;
  }
  sel->reset();
  if (rc == SQLITE_DONE) {
    return Error(Errc::not_found, "no outbound request " + id);
  }
  return m.rdb.error(rc, "show outbound request");
}

Result<Sensitive<std::string>> OutboundQueue::reveal(const std::string& id) {
  Impl& m = *store_.impl_;
  KeyRingPtr ring = m.ring();
  if (!ring || ring->empty()) {
    return readOnlyError();
  }
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return Error(Errc::closed, "store closed");
  }
  auto sel = m.rdb.prepare("SELECT key_id, sealed FROM outbound WHERE id=?1");
  if (!sel) {
    return std::move(sel).error();
  }
  sel->bindText(1, id);
  const int rc = sel->step();
  if (rc != SQLITE_ROW) {
    sel->reset();
    return rc == SQLITE_DONE ? Error(Errc::not_found, "no outbound request " + id)
                             : m.rdb.error(rc, "reveal outbound request");
  }
  auto plain = openWith(*ring, "request", id, static_cast<uint32_t>(sel->i64(0)), sel->blob(1));
  sel->reset();
  if (!plain) {
    return std::move(plain).error();
  }
  return Sensitive<std::string>(std::move(*plain));
}

Result<OutboundStats> OutboundQueue::stats() {
  Impl& m = *store_.impl_;
  std::lock_guard lock(m.read_mu);
  if (m.read_closed) {
    return Error(Errc::closed, "store closed");
  }
  OutboundStats out;
  auto sel = m.rdb.prepare(
      "SELECT target, sum(state='queued'), sum(CASE WHEN state='queued' THEN size ELSE 0 END), "
      "sum(state='failed'), sum(state<>'queued'), "
      "coalesce(min(CASE WHEN state='queued' THEN received_at END),0) FROM outbound "
      "GROUP BY target ORDER BY target");
  if (!sel) {
    return std::move(sel).error();
  }
  int rc;
  while ((rc = sel->step()) == SQLITE_ROW) {
    OutboundTargetStats t;
    t.queued = static_cast<uint64_t>(sel->i64(1));
    t.failed = static_cast<uint64_t>(sel->i64(3));
    t.oldest_queued_ms = sel->i64(5);
    out.queued += t.queued;
    out.queued_bytes += static_cast<uint64_t>(sel->i64(2));
    out.finished += static_cast<uint64_t>(sel->i64(4));
    out.by_target.emplace_back(std::string(sel->text(0)), t);
  }
  sel->reset();
  if (rc != SQLITE_DONE) {
    return m.rdb.error(rc, "outbound stats");
  }
  auto n = m.rdb.queryInt("SELECT count(*) FROM outbound_results");
  if (!n) {
    return std::move(n).error();
  }
  out.results_pending = static_cast<uint64_t>(*n);
  return out;
}

}  // namespace psa::store
