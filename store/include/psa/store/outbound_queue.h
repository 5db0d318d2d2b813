// OutboundQueue: the durable queue of write-back requests (cloud -> PMS) and of the results the
// agent owes the cloud (design.md "Write-back"). It lives in the store's database (tables
// `outbound` and `outbound_results`, schema migration 3) and shares its writer thread, keys and
// fsync discipline: every call that changes something runs in the writer's next transaction and
// completes only after COMMIT.
//
// At rest: the request id, target, op, kind, format, times, status and attempts are clear (they
// carry no patient data); the request document (resource id, If-Match, body...) and every
// result document are sealed with the store's data key (AES-256-GCM, AAD = request id + key id),
// and the ordering key (a patient or resource id) and the document's digest exist only as keyed
// HMACs.
//
// Ordering: requests of one target with the same ordering key are handed out in issue order
// (issued_at, then arrival); one waiting or failing key never holds back another key.
//
// Results: put() and finish() queue the result they produce in the same transaction, so a result
// is durable before anything publishes it; the publisher reads pendingResults() and removes each
// with ackResult() once the broker acknowledged it.
//
// Threads: the asynchronous calls complete on the store's writer thread (post onwards; do not
// block there); the blocking inspection calls (list, show, stats) use the store's read
// connection and may be made from any thread that may block, never from an I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "psa/store/log.h"
#include "psa/store/result.h"

namespace psa::store {

class SqliteStore;

/// Own budget of the outbound queue: requests not yet final (0 = unlimited).
struct OutboundOptions {
  uint64_t max_rows = 10000;
  uint64_t max_bytes = 64ull << 20;  ///< sealed request bytes
  /// Finished requests stay this long, so a resend of their id gets the same final result.
  int64_t retain_finished_ms = 7ll * 24 * 3600 * 1000;
};

/// What the agent queues: the verified request.
struct OutboundPut {
  std::string id;      ///< ULID, the idempotency key
  std::string target;  ///< adapter name
  std::string op;      ///< contract spelling ("create", ...)
  std::string kind;
  std::string format;
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  /// Patient or resource id that orders requests of one target; empty = no ordering. Stored as
  /// a keyed HMAC only.
  Sensitive<std::string> ordering_key;
  /// The signed payload JSON as received; sealed at rest; its HMAC tells a resend of the same
  /// document from another document reusing the id.
  Sensitive<std::string> document;
  /// The `accepted` result document to queue for publishing when this id is new.
  std::string accepted_result;
};

enum class PutStatus {
  queued,    ///< new: committed, accepted_result queued
  known,     ///< the id exists with the same document: its current result queued again
  replayed,  ///< the id exists with a different document: nothing queued or changed
  full,      ///< over the outbound budget: nothing queued (back-pressure)
};

struct PutOutcome {
  PutStatus status = PutStatus::queued;
  std::string state;   ///< known: "queued" or the final status
  std::string result;  ///< queued/known: the result document queued for publishing
  std::string error;   ///< full: which budget
};

/// A request handed to a target's dispatcher.
struct OutboundItem {
  std::string id;
  std::string target;
  std::string op;
  std::string kind;
  std::string format;
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  int64_t received_at_ms = 0;
  uint32_t attempts = 0;
  Sensitive<std::string> document;
};

struct NextOutcome {
  std::optional<OutboundItem> item;
  /// No item: the earliest time a deferred request of the target becomes due (0 = none).
  int64_t wake_at_ms = 0;
};

/// Metadata of one request (never the document or the result's text).
struct OutboundInfo {
  int64_t seq = 0;
  std::string id;
  std::string target;
  std::string op;
  std::string kind;
  std::string format;
  std::string state;  ///< "queued" or the final status
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  int64_t received_at_ms = 0;
  int64_t next_attempt_ms = 0;
  int64_t finished_at_ms = 0;
  uint32_t attempts = 0;
  uint64_t size = 0;
  std::string last_error;  ///< PHI-free (deferral reason)
};

/// Per target: requests not yet final.
struct OutboundTargetStats {
  uint64_t queued = 0;
  uint64_t failed = 0;  ///< finished as failed (within the retention)
  int64_t oldest_queued_ms = 0;
};

struct OutboundStats {
  uint64_t queued = 0;
  uint64_t queued_bytes = 0;
  uint64_t finished = 0;
  uint64_t results_pending = 0;
  std::vector<std::pair<std::string, OutboundTargetStats>> by_target;
};

struct PendingResult {
  int64_t seq = 0;
  std::string id;
  std::string json;  ///< the result document (PHI-free by contract, sealed at rest anyway)
};

class OutboundQueue {
 public:
  template <class T>
  using Callback = std::function<void(Result<T>)>;

  /// `store` must outlive the queue.
  OutboundQueue(SqliteStore& store, OutboundOptions options);

  /// Queues a request (see PutStatus). Errors: Errc::invalid_argument (empty id/target),
  /// Errc::closed, store errors.
  void put(OutboundPut request, Callback<PutOutcome> done);
  /// The next deliverable request of `target` (ordering above; due now). One caller per target
  /// at a time: a request stays queued until finish()/defer().
  void next(std::string target, Callback<NextOutcome> done);
  /// Final status ("delivered", "failed", "expired", "cancelled", "rejected") with the result
  /// document, queued for publishing in the same transaction. `attempts_added` counts sends.
  /// Errc::not_found for an unknown id; a request already final is left as it is (Errc::exists).
  void finish(std::string id, std::string status, std::string result, uint32_t attempts_added,
              Callback<bool> done);
  /// Not delivered yet (PMS unreachable): due again at `retry_at_ms`; `error` PHI-free.
  void defer(std::string id, int64_t retry_at_ms, uint32_t attempts_added, std::string error,
             Callback<bool> done);
  /// A technician's retry: a failed or expired request queued again, due now (Errc::not_found,
  /// Errc::invalid_argument when it is queued or delivered).
  void requeue(std::string id, Callback<bool> done);
  /// Queues a result with no request row (a rejection before queueing).
  void queueResult(std::string id, std::string result, Callback<bool> done);
  /// Results not yet acknowledged by the broker, oldest first, after `after_seq`.
  void pendingResults(int64_t after_seq, size_t limit, Callback<std::vector<PendingResult>> done);
  /// Removes a result once published (unknown seqs are ignored).
  void ackResult(int64_t seq, Callback<bool> done);
  /// Drops finished requests older than the retention (the store's maintenance does not).
  void prune(Callback<uint64_t> done);

  // Blocking inspection (read connection).
  Result<std::vector<OutboundInfo>> list(int64_t after_seq, size_t limit);
  Result<OutboundInfo> show(const std::string& id);
  Result<OutboundStats> stats();
  /// The decrypted request document. The caller audits the act.
  Result<Sensitive<std::string>> reveal(const std::string& id);

 private:
  SqliteStore& store_;
  OutboundOptions options_;
};

}  // namespace psa::store
