// SqliteStore internals shared by the store_*.cpp files. Private to psa::store.
//
// Threads:
//  - the writer thread owns `wdb` (the only write connection) and runs group commits: every op
//    queued while a commit is in flight goes into the next transaction (one BEGIN IMMEDIATE ...
//    COMMIT, one fsync), each op inside its own SAVEPOINT so one failing op does not fail the
//    others; completions run after COMMIT returned.
//  - the lease thread owns `ldb` and serves lease() from committed data only (a separate
//    connection never sees another connection's open transaction). It runs beside the writer,
//    so draining is not limited to one lease window per fsync.
//  - inspection calls use `rdb` under `read_mu`.
// The leased set and the pending cursor live under `lease_mu`. The writer removes acked /
// nacked / dead-lettered seqs from the leased set only after their COMMIT and under
// `lease_mu`; the lease thread holds `lease_mu` while it queries. So a lease either runs on a
// snapshot that already lacks the row, or finds the row still marked leased: an acked record
// is never handed out again.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <variant>
#include <vector>

#include "key_ring.h"
#include "psa/store/bucket_histogram.h"
#include "psa/store/fatal.h"
#include "psa/store/sqlite_store.h"
#include "sqlite_db.h"
#include "ulid.h"

namespace psa::store {

inline constexpr int kStatePending = 0;
inline constexpr int kStateRetry = 1;
inline constexpr int kStateDelivered = 2;
inline constexpr size_t kKindCount = kAllKinds.size();
/// The longest source, vendor, format, watermark scope, audit actor or action (bytes).
inline constexpr size_t kMaxFieldBytes = 256;
/// The writer repeats a warning about a lasting condition (full, over budget) at most this often.
inline constexpr int64_t kLogEveryMs = 60'000;

/// Queue counters kept in the `counters` table and in memory, so stats() never scans.
struct Counters {
  std::array<int64_t, kKindCount> pending{};  ///< not delivered (pending + leased + retry)
  std::array<int64_t, kKindCount> bytes{};    ///< payload bytes of those
  std::array<int64_t, kKindCount> dead{};
  int64_t retry = 0;
  int64_t retained = 0;  ///< delivered rows kept for retain_delivered
  int64_t last_seq = 0;  ///< highest queue seq ever assigned (seqs are never reused)
  int64_t dedupe = 0;    ///< rows in the dedupe index
  bool dedupe_loaded = false;  ///< the `dedupe` row existed (databases before it get counted once)
  std::map<uint32_t, int64_t> key_rows;  ///< rows sealed (or MACed) with each key id

  void add(const Counters& d);
  int64_t sealedRows() const;
  /// (name, value) of every counter `delta` touched, taking values from *this.
  std::vector<std::pair<std::string, int64_t>> changedEntries(const Counters& delta) const;
  /// Applies one stored counter row; unknown names are ignored.
  void load(std::string_view name, int64_t value);
};

/// Effects of one op, merged into the round only if the op's savepoint was released.
struct OpCtx {
  Counters delta;
  std::vector<AuditEntry> audits;
  std::vector<std::function<void()>> on_commit;
  std::map<std::string, uint64_t> accepted;  ///< per source
  uint64_t appended = 0;
  uint64_t duplicates = 0;
  uint64_t delivered = 0;
  uint64_t budget_bytes = 0;
  bool deliverable = false;
  int64_t retry_at = 0;  ///< earliest next_attempt set by a nack (0 = none)

  void merge(OpCtx&& o);
};

struct AppendOp {
  AppendBatch batch;
  AppendCallback done;
};
struct AckOp {
  std::vector<int64_t> seqs;
  StatusCallback done;
  bool by_msg_id = false;
};
struct NackOp {
  int64_t seq = 0;
  int64_t retry_at = 0;
  std::string reason;
  StatusCallback done;
};
struct DeadOp {
  int64_t seq = 0;
  std::string reason;
  StatusCallback done;
};
struct ReleaseOp {
  StatusCallback done;
};
struct AuditOp {
  AuditEntry entry;
  StatusCallback done;
};
/// A technician action or maintenance step run inside the writer's transaction.
struct TaskOp {
  std::function<Status(OpCtx&)> fn;
  StatusCallback done;
};
using Op = std::variant<AppendOp, AckOp, NackOp, DeadOp, ReleaseOp, AuditOp, TaskOp>;

struct LeaseRequest {
  size_t max = 0;
  LeaseCallback done;
};

/// Cached statements of the writer connection.
struct WriterStmts {
  Stmt begin, commit, rollback, sp_begin, sp_release, sp_rollback;
  Stmt ins_queue, dedupe_get, dedupe_ins, dedupe_upd, ins_dead;
  Stmt wm_del, wm_ins;
  Stmt ack_del, ack_del_range, ack_sel, ack_ret, nack_upd, q_meta, dead_from_queue, q_del;
  Stmt audit_ins, counter_put, page_count, freelist_count, retry_next;
  Stmt meta_put, meta_del;
};

/// Cached statements of the lease connection.
struct LeaseStmts {
  Stmt retry_due, pending;
};

struct SqliteStore::Impl {
  explicit Impl(StoreOptions options);
  ~Impl();

  // ---- open (store_open.cpp); prepareWriter, close (sqlite_store.cpp)
  Status openAll();
  Status openReadOnly();
  Status openDatabase(bool& created);
  Status configureWriteConnection(Db& db, bool& is_new);
  Status integrityCheck(Db& db);
  Status moveAside(const std::string& reason);
  Status ensureSchema(bool& created);
  Status loadState(Db& db);
  Status reconcileKeys(bool key_exists, std::optional<KeyRing> file_ring);
  Status prepareWriter();
  Result<Db> openReader(int cache_kib);
  void close();

  // ---- writer (store_writer.cpp; the operations of a round: store_ops.cpp; maintenance:
  // store_maintenance.cpp; retryDeadRow: store_actions.cpp)
  void enqueue(Op op);
  void failOp(Op& op, const Error& error);
  void writerMain();
  void runRound(std::vector<Op>& ops);
  Status runOp(Op& op, OpCtx& ctx, AppendResult& append_out);
  Status runAppend(AppendBatch& batch, OpCtx& ctx, AppendResult& out);
  Status runAck(const AckOp& op, OpCtx& ctx);
  Status ackOne(int64_t seq, int64_t now, OpCtx& ctx, bool& found);
  Status runNack(const NackOp& op, OpCtx& ctx);
  Status runDead(const DeadOp& op, OpCtx& ctx);
  Status finishRound(OpCtx& round, bool final_flush);
  Status writeAudit(AuditEntry& e);
  Status savepoint(const std::function<Status()>& body);
  Status computeUsage();
  Status sealPayload(const DataKey& key, std::string_view msg_id, std::string_view plaintext);
  void maintenance();
  uint64_t dedupeCap() const;
  Result<int> deleteChunk(const char* sql, int64_t before, int64_t limit, const char* what,
                          OpCtx& ctx, const std::function<void(Stmt&)>& row);
  Status pruneDedupe(OpCtx& ctx, int64_t now, bool& more);
  Status pruneDelivered(OpCtx& ctx, int64_t now, bool& more);
  Status pruneAudit(OpCtx& ctx, int64_t now);
  Status dropKey(uint32_t key_id, OpCtx& ctx);
  void checkRetryWake();
  void notifyDeliverable();
  void logBudget(uint64_t used, uint64_t need);
  /// Runs `fn` in the writer's next transaction and waits. Errc::internal on the writer thread.
  Status runTask(std::function<Status(OpCtx&)> fn);
  Status retryDeadRow(const std::string& msg_id, OpCtx& ctx);

  // ---- leases (store_lease.cpp)
  void leaseMain();
  Result<std::vector<Leased>> serveLease(size_t max);

  // ---- helpers
  KeyRingPtr ring() const;
  void setRing(KeyRingPtr r);
  template <class Fn, class Arg>
  void complete(Fn& fn, Arg&& arg) noexcept;
  bool onWriterThread() const { return std::this_thread::get_id() == writer_id_; }
  uint64_t walBytes() const;
  std::string utcStamp() const;

  // ---- configuration
  StoreOptions opts;
  ClockPtr clock;
  log::Logger log{"store"};
  int64_t schema_level = 0;  ///< set at open (after migrations)
  OpenReport report;
  int64_t page_size = 4096;

  // ---- keys: writer reads/writes `wring`; other threads take ring() snapshots.
  mutable std::mutex ring_mu;
  KeyRingPtr shared_ring;
  KeyRingPtr wring;
  uint32_t max_key_id = 0;  // writer: highest key id ever used (ids are never reused)
  std::unordered_set<uint32_t> key_drop_blocked;  // writer: counter said 0 but rows exist

  // ---- connections
  Db wdb;
  WriterStmts ws;
  Db ldb;
  LeaseStmts ls;
  std::mutex read_mu;
  Db rdb;
  bool read_closed = false;  // under read_mu

  // ---- writer state (writer thread only)
  int64_t next_seq = 1;
  UlidGenerator ulid;
  std::string seal_buf;
  uint64_t usage_base = 0;   // bytes on disk at round start
  uint64_t round_bytes = 0;  // budget bytes added by this round's ops
  int64_t last_audit_seq = 0;
  std::string last_audit_hash;
  std::map<std::string, uint64_t> agg_accepted;
  uint64_t agg_delivered = 0;
  int64_t agg_since_ms = 0;
  int64_t next_retry_wake_ms = 0;
  int64_t last_dedupe_prune_ms = 0;
  int64_t last_dedupe_cap_log_ms = INT64_MIN / 2;
  std::atomic<int64_t> dedupe_window_effective_ms{0};  ///< 0 = the cap has not cut the window
  int64_t last_retain_prune_ms = 0;
  int64_t last_audit_prune_ms = 0;
  bool agg_persisted = false;  // the aggregate is saved in meta('audit_pending')
  std::chrono::steady_clock::time_point last_maintenance{};
  int64_t last_budget_log_ms = INT64_MIN / 2;
  uint64_t budget_refusals = 0;
  int64_t last_full_log_ms = INT64_MIN / 2;
  bool check_key_drop = true;

  // ---- op queue
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Op> ops;
  bool closing = false;
  std::thread writer;
  std::thread::id writer_id_;

  // ---- leases
  std::mutex lease_mu;
  std::unordered_set<int64_t> leased;
  int64_t cursor = 0;
  int64_t last_committed_seq = 0;
  std::mutex lq_mu;
  std::condition_variable lq_cv;
  std::deque<LeaseRequest> lease_reqs;
  bool lease_stop = false;
  std::thread leaser;

  std::mutex listener_mu;
  std::function<void()> listener;

  // ---- counters (written by the writer under counters_mu; read by stats())
  mutable std::mutex counters_mu;
  Counters counters;
  std::atomic<uint64_t> appended_total{0};
  std::atomic<uint64_t> delivered_total{0};
  std::atomic<uint64_t> duplicates_total{0};
  std::atomic<uint64_t> commits_total{0};
  // Committed rounds only (writerMetrics()); bounds in µs (250 µs .. 10 s, around a typical fsync)
  // and in records (up to max_batch_records' default and beyond).
  BucketHistogram commit_us{250,    500,    1000,    2500,    5000,    10000,   25000,   50000,
                            100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
  BucketHistogram group_records{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
  std::atomic<bool> closed{false};

  // ---- read-only (inspection) mode: key facts read from the `keys` table
  uint32_t ro_key_id = 0;
  size_t ro_key_count = 0;
};

template <class Fn, class Arg>
void SqliteStore::Impl::complete(Fn& fn, Arg&& arg) noexcept {
  if (!fn) {
    return;
  }
  // A completion that throws broke its caller's invariant (it posts to a strand and returns):
  // the caller's state is unknown, so the process ends rather than run on without it.
  guardInvariant("store.completion", [&] { fn(std::forward<Arg>(arg)); });
}

/// AAD of a sealed payload: binds the ciphertext to its msg_id and key id, so a row's
/// ciphertext cannot be swapped into another row or relabelled with another key.
std::string recordAad(std::string_view msg_id, uint32_t key_id);
/// AAD of a sealed watermark (scope, key id); the name is inside the sealed value.
std::string watermarkAad(std::string_view scope, uint32_t key_id);
/// The plaintext of a sealed watermark: the name's length (4 bytes, big-endian), the name, the
/// value.
std::string encodeWatermark(std::string_view name, std::string_view value);
/// encodeWatermark()'s inverse; false if `plain` is shorter than the name length it gives.
bool decodeWatermark(std::string_view plain, std::string& name, std::string& value);
/// Errc::closed for what a read-only (inspection) store cannot do: no key is loaded.
Error readOnlyError();
/// The value of watermark (scope, key) read through `db` (the caller's connection, so the
/// writer sees its own transaction), or nullopt if absent. Errc::crypto if it fails to open.
Result<std::optional<std::string>> readWatermark(Db& db, const KeyRing& keys, const std::string& scope,
                                                 const std::string& key);
/// "decrypt failed: authentication tag mismatch (key 2)" etc., or empty on success.
std::string openRecord(const KeyRing& ring, uint32_t key_id, std::string_view msg_id,
                       std::string_view sealed, std::string& out);

}  // namespace psa::store
