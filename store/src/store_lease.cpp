// The lease thread: hands out committed records, retry-due first, then FIFO by seq from an
// in-memory cursor, so the cost of a lease does not depend on the queue depth.

#include "psa/store/os/process_info.h"
#include "store_impl.h"

namespace psa::store {
namespace {
constexpr size_t kMaxLease = 10'000;
}

void SqliteStore::Impl::leaseMain() {
  os::setCurrentThreadName("psa-store-lease");
  try {
    while (true) {
      std::deque<LeaseRequest> reqs;
      {
        std::unique_lock lock(lq_mu);
        lq_cv.wait(lock, [this] { return !lease_reqs.empty() || lease_stop; });
        if (lease_reqs.empty() && lease_stop) {
          break;
        }
        reqs.swap(lease_reqs);
      }
      for (LeaseRequest& r : reqs) {
        auto result = serveLease(r.max);
        complete(r.done, std::move(result));
      }
    }
  } catch (...) {
    fatalInvariant("store.lease");
  }
}

Result<std::vector<Leased>> SqliteStore::Impl::serveLease(size_t max) {
  std::vector<Leased> out;
  max = std::min(max, kMaxLease);
  if (max == 0) {
    return out;
  }
  const KeyRingPtr keys = ring();
  std::vector<std::pair<int64_t, std::string>> bad;
  std::string plain;
  {
    std::lock_guard lock(lease_mu);
    const int64_t now = clock->nowMs();
    auto take = [&](Stmt& s) {
      const int64_t seq = s.i64(0);
      const std::string_view msg_id = s.text(1);
      const auto key_id = static_cast<uint32_t>(s.i64(7));
      std::string why = openRecord(*keys, key_id, msg_id, s.blob(9), plain);
      leased.insert(seq);
      if (!why.empty()) {
        // Never hand out what does not authenticate; dead-letter it with the reason.
        bad.emplace_back(seq, std::move(why));
        return;
      }
      const auto kind = s.i64(4);
      Leased l;
      l.seq = seq;
      l.attempts = static_cast<uint32_t>(s.i64(8));
      l.record.msg_id = std::string(msg_id);
      l.record.source = std::string(s.text(2));
      l.record.vendor = std::string(s.text(3));
      l.record.kind = kind >= 0 && static_cast<size_t>(kind) < kKindCount
                          ? kAllKinds[static_cast<size_t>(kind)]
                          : Kind::other;
      l.record.format = std::string(s.text(5));
      l.record.received_at_ms = s.i64(6);
      l.record.payload = Sensitive<std::string>(std::move(plain));
      plain = std::string();
      out.push_back(std::move(l));
    };

    // Retry-due rows first (partial index on next_attempt_at). Rows still leased are skipped;
    // there are at most as many as are in flight.
    {
      Stmt& s = ls.retry_due;
      StmtScope scope(s);
      s.bind(1, now).bind(2, static_cast<int64_t>(max + leased.size()));
      int rc = SQLITE_DONE;
      while (out.size() + bad.size() < max && (rc = s.step()) == SQLITE_ROW) {
        if (leased.count(s.i64(0)) == 0) {
          take(s);
        }
      }
      if (out.size() + bad.size() < max && rc != SQLITE_DONE) {
        return ldb.error(rc, "lease");
      }
    }
    // Pending rows after the cursor, straight off the INTEGER PRIMARY KEY.
    if (out.size() + bad.size() < max) {
      const size_t limit = max - out.size() - bad.size();
      Stmt& s = ls.pending;
      StmtScope scope(s);
      s.bind(1, cursor).bind(2, static_cast<int64_t>(limit));
      size_t rows = 0;
      int rc = SQLITE_DONE;
      while ((rc = s.step()) == SQLITE_ROW) {
        ++rows;
        cursor = s.i64(0);
        if (leased.count(cursor) == 0) {
          take(s);
        }
      }
      if (rc != SQLITE_DONE) {
        return ldb.error(rc, "lease");
      }
      if (rows < limit) {
        // Everything committed up to last_committed_seq was visible to this scan (the writer
        // publishes it after COMMIT, under lease_mu), so skip non-pending rows for good.
        cursor = std::max(cursor, last_committed_seq);
      }
    }
  }
  for (auto& [seq, why] : bad) {
    log.error("store.decrypt_failed", {{"seq", seq}, {"reason", why}});
    enqueue(DeadOp{seq, std::move(why), {}});
  }
  return out;
}

}  // namespace psa::store
