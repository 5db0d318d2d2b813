// The writer thread: queueing, the loop, and the rounds of group commit (appends, acks, nacks,
// dead letters, audit entries and technician tasks in one transaction; the operations
// themselves are in store_ops.cpp), the end of a round, retry wake-ups. It calls the periodic
// maintenance (pruning, incremental vacuum, checkpoints, key drops: store_maintenance.cpp) once
// a tick.

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

constexpr size_t kMaxAuditFieldBytes = 8192;
constexpr auto kTick = std::chrono::milliseconds(1000);
// Store-generated "records.accepted"/"records.delivered" entries aggregate counts over this
// window (and are flushed at close): one entry per commit would add hundreds of audit rows per
// second under load and grow the table by gigabytes a day.
constexpr int64_t kAuditAggregateMs = 10'000;

// Records an op writes or settles (the group size of writerMetrics()).
uint64_t recordsIn(const Op& op) {
  if (const auto* a = std::get_if<AppendOp>(&op)) {
    return a->batch.records.size() + a->batch.dead.size();
  }
  if (const auto* k = std::get_if<AckOp>(&op)) {
    return k->seqs.size();
  }
  return std::holds_alternative<NackOp>(op) || std::holds_alternative<DeadOp>(op) ? 1 : 0;
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
    const auto began = clock->steady();
    auto committed_at = began;
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
        committed_at = clock->steady();
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
      commit_us.record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(committed_at - began).count()));
      uint64_t group = 0;
      for (size_t i = 0; i < n; ++i) {
        group += errors[i] ? 0 : recordsIn(round_ops[i]);
      }
      group_records.record(group);
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
