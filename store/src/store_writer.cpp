// The writer thread: group commit of appends, acks, nacks, dead letters, audit entries and
// technician tasks (the hot path); it calls the periodic maintenance (pruning, incremental
// vacuum, checkpoints, key drops: store_maintenance.cpp) once a tick.

#include <algorithm>
#include <cstdlib>
#include <future>

#include "audit.h"
#include "crypto.h"
#include "psa/store/os/process_info.h"
#include "psa/store/test_fault.h"
#include "store_impl.h"

namespace psa::store {
namespace {

constexpr size_t kMaxPayloadBytes = 64u << 20;
constexpr size_t kMaxFieldBytes = 256;
constexpr size_t kMaxReasonBytes = 1024;
constexpr size_t kMaxWatermarkBytes = 1u << 20;
constexpr size_t kMaxAuditFieldBytes = 8192;
// Budget estimate per row beyond payload and strings: seal overhead, msg_id in row and index,
// integer columns, b-tree cell overhead.
constexpr uint64_t kRowOverheadBytes = 160;
constexpr auto kTick = std::chrono::milliseconds(1000);
// Store-generated "records.accepted"/"records.delivered" entries aggregate counts over this
// window (and are flushed at close): one entry per commit would add hundreds of audit rows per
// second under load and grow the table by gigabytes a day.
constexpr int64_t kAuditAggregateMs = 10'000;
constexpr int64_t kLogEveryMs = 60'000;

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
// Queueing

void SqliteStore::Impl::enqueue(Op op) {
  std::optional<Error> reject;
  {
    std::lock_guard lock(mu);
    if (opts.read_only) {
      reject = Error(Errc::closed,
                     "the store is open read-only (inspection); the running agent "
                     "makes changes");
    } else if (closing) {
      reject = Error(Errc::closed, "store closed");
    } else {
      ops.push_back(std::move(op));
    }
  }
  if (reject) {
    failOp(op, *reject);
    return;
  }
  cv.notify_one();
}

void SqliteStore::Impl::failOp(Op& op, const Error& error) {
  std::visit(
      [&](auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, AppendOp>) {
          complete(o.done, Result<AppendResult>(error));
        } else {
          complete(o.done, Status(error));
        }
      },
      op);
}

Status SqliteStore::Impl::runTask(std::function<Status(OpCtx&)> fn) {
  if (onWriterThread()) {
    return Error(Errc::internal, "blocking store call made on the store's writer thread");
  }
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  enqueue(TaskOp{std::move(fn), [promise](Status st) { promise->set_value(std::move(st)); }});
  return future.get();
}

// ---------------------------------------------------------------------------------------------
// Writer loop

void SqliteStore::Impl::writerMain() {
  os::setCurrentThreadName("psa-store-wr");
  try {
    std::vector<Op> round;
    while (true) {
      round.clear();
      {
        std::unique_lock lock(mu);
        auto wait = kTick;
        if (next_retry_wake_ms != 0) {
          const int64_t delta = next_retry_wake_ms - clock->nowMs();
          wait = std::clamp(std::chrono::milliseconds(delta), std::chrono::milliseconds(1), kTick);
        }
        cv.wait_for(lock, wait, [this] { return !ops.empty() || closing; });
        if (ops.empty() && closing) {
          break;
        }
        size_t records = 0;
        while (!ops.empty()) {
          if (const auto* a = std::get_if<AppendOp>(&ops.front())) {
            const size_t n = a->batch.records.size() + a->batch.dead.size();
            if (records > 0 && records + n > opts.max_batch_records) {
              break;
            }
            records += n;
          }
          round.push_back(std::move(ops.front()));
          ops.pop_front();
        }
      }
      if (!round.empty()) {
        runRound(round);
      }
      checkRetryWake();
      if (std::chrono::steady_clock::now() - last_maintenance >= kTick) {
        last_maintenance = std::chrono::steady_clock::now();
        maintenance();
      }
    }
    // Final commit: audit counts still aggregated in memory.
    if (!agg_accepted.empty() || agg_delivered > 0) {
      std::vector<Op> none;
      OpCtx round;
      Status st = computeUsage();
      if (st && ws.begin.step() == SQLITE_DONE) {
        ws.begin.reset();
        st = finishRound(round, true);
        if (!st && wdb.inTransaction()) {
          wdb.exec("ROLLBACK");
        }
      } else {
        ws.begin.reset();
      }
      if (!st) {
        log.warn("store.final_audit_flush_failed", {{"error", st.error().code}});
      }
    }
  } catch (...) {
    // A broken invariant: the transaction of this round was not committed (SQLite rolls it back
    // when the next process opens the database), so no op in it was acknowledged.
    fatalInvariant("store.writer");
  }
}

Status SqliteStore::Impl::computeUsage() {
  const int rc1 = ws.page_count.step();
  const int64_t pages = ws.page_count.i64(0);
  ws.page_count.reset();
  const int rc2 = ws.freelist_count.step();
  const int64_t free_pages = ws.freelist_count.i64(0);
  ws.freelist_count.reset();
  if (rc1 != SQLITE_ROW || rc2 != SQLITE_ROW) {
    return wdb.error(rc1 != SQLITE_ROW ? rc1 : rc2, "read page counts");
  }
  usage_base =
      static_cast<uint64_t>(std::max<int64_t>(0, pages - free_pages) * page_size) + walBytes();
  round_bytes = 0;
  return {};
}

void SqliteStore::Impl::runRound(std::vector<Op>& round_ops) {
  const size_t n = round_ops.size();
  std::vector<std::optional<Error>> errors(n);
  std::vector<AppendResult> append_results(n);
  std::vector<char> write_op(n, 0);
  bool any_write = false;
  for (size_t i = 0; i < n; ++i) {
    write_op[i] = !std::holds_alternative<ReleaseOp>(round_ops[i]);
    any_write = any_write || write_op[i];
  }

  OpCtx round;
  bool committed = false;
  std::vector<int64_t> unlease;
  int64_t lost_unlease = INT64_MAX;  // lowest seq of a failed ack/nack/dead letter
  if (any_write) {
    std::optional<Error> abort_error;
    const int64_t saved_audit_seq = last_audit_seq;
    const std::string saved_audit_hash = last_audit_hash;
    // When SQLite rolls back the whole transaction because of one op (some SQLITE_FULL cases),
    // that op fails and the round is retried without it, so the other producers' batches keep
    // their savepoint isolation. Bounded: every retry removes one op.
    std::vector<char> active = write_op;
    for (size_t attempt = 0; attempt <= n; ++attempt) {
      round = OpCtx{};
      abort_error.reset();
      last_audit_seq = saved_audit_seq;
      last_audit_hash = saved_audit_hash;
      Status st = computeUsage();
      if (st) {
        const int rc = ws.begin.step();
        ws.begin.reset();
        if (rc != SQLITE_DONE) {
          st = wdb.error(rc, "begin transaction");
        }
      }
      if (!st) {
        abort_error = st.error();
        break;
      }
      bool retry = false;
      for (size_t i = 0; i < n; ++i) {
        if (!active[i]) {
          continue;
        }
        errors[i].reset();
        OpCtx ctx;
        Status r = runOp(round_ops[i], ctx, append_results[i]);
        if (r) {
          round.merge(std::move(ctx));
          continue;
        }
        errors[i] = r.error();
        if (!wdb.inTransaction()) {
          active[i] = 0;
          retry = true;
          break;
        }
      }
      if (retry) {
        continue;
      }
      testFaultPoint("store.writer");
      Status fin = finishRound(round, false);
      if (fin) {
        committed = true;
      } else {
        abort_error = fin.error();
      }
      break;
    }
    if (!committed) {
      if (wdb.inTransaction()) {
        ws.rollback.step();
        ws.rollback.reset();
      }
      last_audit_seq = saved_audit_seq;
      last_audit_hash = saved_audit_hash;
      const Error err = abort_error ? *abort_error : Error(Errc::internal, "commit failed");
      if (err.is(Errc::full)) {
        const int64_t now = clock->nowMs();
        if (now - last_full_log_ms >= kLogEveryMs) {
          last_full_log_ms = now;
          log.error("store.disk_full", {{"db", opts.db_path.string()}});
        }
      } else {
        log.error("store.commit_failed", {{"error", err.code}, {"ops", n}});
      }
      for (size_t i = 0; i < n; ++i) {
        // Ops that "succeeded" inside the lost transaction fail with its error; ops that
        // failed on their own keep their own error.
        if (write_op[i] && !errors[i]) {
          errors[i] = err;
        }
      }
    } else {
      for (size_t i = 0; i < n; ++i) {
        if (errors[i] && errors[i]->is(Errc::full) &&
            errors[i]->message.find("disk budget") == std::string::npos) {
          const int64_t now = clock->nowMs();
          if (now - last_full_log_ms >= kLogEveryMs) {
            last_full_log_ms = now;
            log.error("store.disk_full", {{"db", opts.db_path.string()}});
          }
        }
      }
      // Memory follows the database only after COMMIT returned.
      {
        std::lock_guard lock(counters_mu);
        counters.add(round.delta);
      }
      for (auto& f : round.on_commit) {
        f();
      }
      appended_total += round.appended;
      duplicates_total += round.duplicates;
      delivered_total += round.delivered;
      commits_total += 1;
      if (round.retry_at != 0 && (next_retry_wake_ms == 0 || round.retry_at < next_retry_wake_ms)) {
        next_retry_wake_ms = round.retry_at;
      }
    }
    // Seqs of acks, nacks and dead letters leave the leased set whatever the outcome: after a
    // failed commit the record is still queued and must become deliverable again.
    for (size_t i = 0; i < n; ++i) {
      const size_t before = unlease.size();
      if (const auto* a = std::get_if<AckOp>(&round_ops[i]); a != nullptr && !a->by_msg_id) {
        unlease.insert(unlease.end(), a->seqs.begin(), a->seqs.end());
      } else if (const auto* k = std::get_if<NackOp>(&round_ops[i])) {
        unlease.push_back(k->seq);
      } else if (const auto* d = std::get_if<DeadOp>(&round_ops[i])) {
        unlease.push_back(d->seq);
      }
      if (errors[i] && unlease.size() > before) {
        lost_unlease =
            std::min(lost_unlease, *std::min_element(unlease.begin() + before, unlease.end()));
      }
    }
  }
  {
    std::lock_guard lock(lease_mu);
    for (int64_t s : unlease) {
      leased.erase(s);
    }
    if (committed) {
      last_committed_seq = next_seq - 1;
    }
    if (lost_unlease != INT64_MAX) {
      // Acks, nacks or dead letters that failed (alone, or with the whole transaction): their
      // rows are still pending at or below the cursor. Move the cursor back so the pending scan
      // finds them again; otherwise they would stay pending, never leased, until a restart.
      cursor = std::min(cursor, lost_unlease - 1);
    }
    for (size_t i = 0; i < n; ++i) {
      if (std::holds_alternative<ReleaseOp>(round_ops[i]) && !leased.empty()) {
        // Released rows are state 0 at or below the cursor: move the cursor back so the
        // pending scan finds them again.
        const int64_t lowest = *std::min_element(leased.begin(), leased.end());
        cursor = std::min(cursor, lowest - 1);
        leased.clear();
      }
    }
  }
  bool released = false;
  for (const Op& op : round_ops) {
    released = released || std::holds_alternative<ReleaseOp>(op);
  }
  // Listener first: a reader waiting for work learns of it before producers are told.
  if ((committed && round.deliverable) || released || lost_unlease != INT64_MAX) {
    notifyDeliverable();
  }
  for (size_t i = 0; i < n; ++i) {
    std::visit(
        [&](auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, AppendOp>) {
            auto done = std::move(o.done);
            o.done = nullptr;
            if (errors[i]) {
              complete(done, Result<AppendResult>(*errors[i]));
            } else {
              complete(done, Result<AppendResult>(std::move(append_results[i])));
            }
          } else {
            auto done = std::move(o.done);
            o.done = nullptr;
            complete(done, errors[i] ? Status(*errors[i]) : Status());
          }
        },
        round_ops[i]);
  }
}

Status SqliteStore::Impl::savepoint(const std::function<Status()>& body) {
  int rc = ws.sp_begin.step();
  ws.sp_begin.reset();
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, "savepoint");
  }
  Status st = body();
  if (!st) {
    if (wdb.inTransaction()) {
      ws.sp_rollback.step();
      ws.sp_rollback.reset();
      ws.sp_release.step();
      ws.sp_release.reset();
    }
    return st;
  }
  rc = ws.sp_release.step();
  ws.sp_release.reset();
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, "release savepoint");
  }
  return {};
}

Status SqliteStore::Impl::runOp(Op& op, OpCtx& ctx, AppendResult& append_out) {
  return std::visit(
      [&](auto& o) -> Status {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, AppendOp>) {
          return runAppend(o.batch, ctx, append_out);
        } else if constexpr (std::is_same_v<T, AckOp>) {
          return savepoint([&] { return runAck(o, ctx); });
        } else if constexpr (std::is_same_v<T, NackOp>) {
          return savepoint([&] { return runNack(o, ctx); });
        } else if constexpr (std::is_same_v<T, DeadOp>) {
          return savepoint([&] { return runDead(o, ctx); });
        } else if constexpr (std::is_same_v<T, AuditOp>) {
          AuditEntry& e = o.entry;
          if (e.action.empty() || e.actor.empty()) {
            return Error(Errc::invalid_argument, "audit entry needs an actor and an action");
          }
          if (e.actor.size() > kMaxFieldBytes || e.action.size() > kMaxFieldBytes ||
              e.detail.size() > kMaxAuditFieldBytes) {
            return Error(Errc::invalid_argument, "audit entry field too long");
          }
          if (e.at_ms == 0) {
            e.at_ms = clock->nowMs();
          }
          ctx.audits.push_back(e);
          return {};
        } else if constexpr (std::is_same_v<T, TaskOp>) {
          return savepoint([&] { return o.fn(ctx); });
        } else {
          return {};
        }
      },
      op);
}

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

// ---------------------------------------------------------------------------------------------
// End of a round: maintenance pruning, audit, counters, COMMIT

Status SqliteStore::Impl::writeAudit(AuditEntry& e) {
  e.seq = last_audit_seq + 1;
  e.prev_hash = last_audit_hash;
  e.hash = audit::entryHash(e.prev_hash, e.seq, e.at_ms, e.actor, e.action, e.detail);
  StmtScope scope(ws.audit_ins);
  ws.audit_ins.bind(1, e.seq)
      .bind(2, e.at_ms)
      .bindText(3, e.actor)
      .bindText(4, e.action)
      .bindText(5, e.detail)
      .bindText(6, e.prev_hash)
      .bindText(7, e.hash);
  const int rc = ws.audit_ins.step();
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, "write audit entry");
  }
  last_audit_seq = e.seq;
  last_audit_hash = e.hash;
  return {};
}

Status SqliteStore::Impl::finishRound(OpCtx& round, bool final_flush) {
  const int64_t now = clock->nowMs();
  // Aggregated data-exchange entries; committed in the same transaction as the latest records
  // they count.
  std::map<std::string, uint64_t> accepted = agg_accepted;
  for (const auto& [src, n] : round.accepted) {
    accepted[src] += n;
  }
  const uint64_t delivered = agg_delivered + round.delivered;
  if (agg_since_ms == 0) {
    agg_since_ms = now;
  }
  const bool flush = (final_flush || now - agg_since_ms >= kAuditAggregateMs) &&
                     (!accepted.empty() || delivered > 0);
  if (flush) {
    for (const auto& [src, n] : accepted) {
      AuditEntry e;
      e.at_ms = now;
      e.actor = src;
      e.action = "records.accepted";
      e.detail = "{\"source\":" + audit::jsonString(src) + ",\"count\":" + std::to_string(n) +
                 ",\"since_ms\":" + std::to_string(agg_since_ms) + "}";
      round.audits.push_back(std::move(e));
    }
    if (delivered > 0) {
      AuditEntry e;
      e.at_ms = now;
      e.actor = "agent";
      e.action = "records.delivered";
      e.detail = "{\"count\":" + std::to_string(delivered) +
                 ",\"since_ms\":" + std::to_string(agg_since_ms) + "}";
      round.audits.push_back(std::move(e));
    }
  }
  for (AuditEntry& e : round.audits) {
    PSA_TRY(writeAudit(e));
  }
  // Counts not yet written as entries are saved with the records they count, so a crash
  // (SIGKILL, power cut) cannot lose them; the next open flushes them.
  const bool agg_changed = !round.accepted.empty() || round.delivered > 0;
  bool persisted = agg_persisted;
  if (flush && agg_persisted) {
    StmtScope scope(ws.meta_del);
    ws.meta_del.bindText(1, "audit_pending");
    const int rc = ws.meta_del.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "clear pending audit counts");
    }
    persisted = false;
  } else if (!flush && agg_changed) {
    std::string doc = "{\"since_ms\":" + std::to_string(agg_since_ms) +
                      ",\"delivered\":" + std::to_string(delivered) + ",\"accepted\":{";
    bool first = true;
    for (const auto& [src, n] : accepted) {
      doc += (first ? "" : ",") + audit::jsonString(src) + ":" + std::to_string(n);
      first = false;
    }
    doc += "}}";
    StmtScope scope(ws.meta_put);
    ws.meta_put.bindText(1, "audit_pending").bindText(2, doc);
    const int rc = ws.meta_put.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "save pending audit counts");
    }
    persisted = true;
  }
  Counters merged = counters;
  merged.add(round.delta);
  for (const auto& [name, value] : merged.changedEntries(round.delta)) {
    StmtScope scope(ws.counter_put);
    ws.counter_put.bindText(1, name).bind(2, value);
    const int rc = ws.counter_put.step();
    if (rc != SQLITE_DONE) {
      return wdb.error(rc, "update counters");
    }
  }
  const int rc = ws.commit.step();
  ws.commit.reset();
  if (rc != SQLITE_DONE) {
    return wdb.error(rc, "commit");
  }
  agg_persisted = persisted;
  if (flush) {
    agg_accepted.clear();
    agg_delivered = 0;
    agg_since_ms = now;
  } else {
    agg_accepted = std::move(accepted);
    agg_delivered = delivered;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Retry wake-ups and listener

void SqliteStore::Impl::notifyDeliverable() {
  std::function<void()> fn;
  {
    std::lock_guard lock(listener_mu);
    fn = listener;
  }
  if (fn) {
    guardInvariant("store.listener", fn);
  }
}

void SqliteStore::Impl::checkRetryWake() {
  if (next_retry_wake_ms == 0) {
    return;
  }
  const int64_t now = clock->nowMs();
  if (now < next_retry_wake_ms) {
    return;
  }
  notifyDeliverable();
  StmtScope scope(ws.retry_next);
  ws.retry_next.bind(1, now);
  next_retry_wake_ms = ws.retry_next.step() == SQLITE_ROW ? ws.retry_next.i64(0) : 0;
}

}  // namespace psa::store
