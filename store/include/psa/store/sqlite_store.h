// SqliteStore: the encrypted durable queue (SQLite WAL + AES-256-GCM), group-committed.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "psa/store/clock.h"
#include "psa/store/log.h"
#include "psa/store/queue_reader.h"
#include "psa/store/record_sink.h"
#include "psa/store/result.h"
#include "psa/store/writer_metrics.h"

namespace psa::store {

enum class IntegrityCheck { off, quick, full };

struct StoreOptions {
  std::filesystem::path db_path;   ///< the SQLite file (WAL and SHM beside it)
  std::filesystem::path key_file;  ///< created with mode 0600 on first start
  uint64_t max_bytes = 10ull << 30;                        ///< disk budget for the database
  std::chrono::seconds retain_delivered{0};                ///< keep delivered rows this long
  std::chrono::seconds dedupe_window{std::chrono::hours(24 * 7)};
  /// Most identities the dedupe index keeps (0 = a tenth of max_bytes at ~160 bytes each).
  /// Past it the oldest go first, so a busy feed gets a shorter window, logged as
  /// `store.dedupe_capped`, rather than an index that eats the disk budget.
  uint64_t dedupe_max_entries = 0;
  IntegrityCheck integrity_check = IntegrityCheck::quick;  ///< run at open
  size_t max_batch_records = 4096;  ///< cap on records per group commit
  ClockPtr clock;                   ///< defaults to Clock::system()
  /// Hard cap on the database size in pages, enforced by SQLite itself (0 = none). Writes
  /// beyond it fail exactly like a full disk (SQLITE_FULL -> Errc::full); tests use it to
  /// exercise the disk-full path, operators may use it as a safety net below max_bytes.
  uint64_t sqlite_max_pages = 0;
  /// Keep audit entries at least this long (0 = forever). Pruning cuts the chain only just
  /// before an `audit.checkpoint` entry (written every quarter of this period), so the kept
  /// part still verifies; each cut is itself recorded as an `audit.pruned` entry.
  std::chrono::seconds audit_retain{0};
  /// When `audit_upload_key` is set, pruning never removes an audit entry the cloud has not
  /// received: only entries with seq <= the decimal value of watermark (audit_upload_scope,
  /// audit_upload_key) may go (whoever uploads the audit trail advances that watermark); with
  /// no such watermark nothing is pruned. Empty key: retention alone decides.
  std::string audit_upload_scope;
  std::string audit_upload_key;
  /// Open for inspection only (the CLI while the agent is down): no writer thread, no key
  /// file read or created, nothing written to the database. Stats, list, show, auditEntries
  /// and verifyAudit work (also beside a running agent: WAL readers never block it); every
  /// other call fails with Errc::closed. A missing database is Errc::not_found.
  bool read_only = false;
};

/// What open() found and did; shown by `status` and logged loudly when not clean.
struct OpenReport {
  bool created = false;               ///< a new database was created
  bool key_created = false;           ///< a new key file was created
  bool recovered_from_corruption = false;
  std::filesystem::path moved_aside;  ///< where the corrupt database went (never deleted)
  std::string corruption_reason;
  uint64_t pending = 0;               ///< deliverable records found
};

/// Metadata of one queued or dead-lettered record; never any payload.
struct RecordInfo {
  int64_t seq = 0;
  std::string msg_id;
  std::string source;
  std::string vendor;
  Kind kind = Kind::other;
  std::string format;
  int64_t received_at_ms = 0;
  uint64_t size = 0;             ///< payload bytes
  uint32_t attempts = 0;
  int64_t next_attempt_ms = 0;   ///< retry time, 0 if none
  std::string state;             ///< "pending", "leased", "retry", "delivered", "dead"
  std::string reason;            ///< last nack or dead-letter reason (PHI-free)
  int64_t dead_at_ms = 0;
  uint32_t key_id = 0;
};

struct KindStats {
  uint64_t pending = 0;  ///< includes leased and waiting-for-retry
  uint64_t bytes = 0;
  uint64_t dead = 0;
};

struct QueueStats {
  uint64_t pending = 0;         ///< not yet delivered (includes leased and retry)
  uint64_t leased = 0;          ///< in flight right now
  uint64_t retry = 0;           ///< waiting for a retry time
  uint64_t dead = 0;
  uint64_t delivered_retained = 0;
  uint64_t pending_bytes = 0;   ///< payload bytes not yet delivered
  uint64_t db_bytes = 0;        ///< bytes the database uses on disk (pages in use + WAL)
  uint64_t max_bytes = 0;
  uint64_t dedupe_entries = 0;      ///< identities in the dedupe index
  uint64_t dedupe_max_entries = 0;  ///< the cap in effect
  int64_t dedupe_window_s = 0;      ///< window the cap left at its last cut (0 = not cut)
  int64_t oldest_pending_ms = 0;  ///< received_at of the oldest pending record, 0 if none
  std::map<Kind, KindStats> by_kind;
  uint64_t appended_total = 0;  ///< since open
  uint64_t delivered_total = 0;
  uint64_t duplicates_total = 0;
  uint64_t commits_total = 0;
  uint32_t current_key_id = 0;
  size_t key_count = 0;
  int64_t schema_level = 0;  ///< the database's schema level (migrations applied)
};

/// Dead letters that share one reason (reasons are PHI-free by contract).
struct DeadReason {
  std::string reason;
  uint64_t count = 0;
  int64_t last_dead_at_ms = 0;
};

/// Which rows list() returns.
enum class ListFilter { queued, dead };

/// An audit entry: an administrative act or a data exchange. No PHI, ever.
struct AuditEntry {
  int64_t seq = 0;           ///< assigned by the store
  int64_t at_ms = 0;         ///< assigned by the store if 0
  std::string actor;         ///< "agent", "uid:1000", "cloud", adapter name
  std::string action;        ///< "records.accepted", "config.applied", "queue.reveal", ...
  std::string detail;        ///< compact JSON object with ids and counts
  std::string prev_hash;     ///< hex SHA-256 of the previous entry (assigned by the store)
  std::string hash;          ///< hex SHA-256 over prev_hash and this entry's fields
};

struct AuditVerifyResult {
  bool ok = true;
  uint64_t entries = 0;
  int64_t first_bad_seq = 0;  ///< the first entry whose hash or link does not verify
  std::string problem;
};

struct SalvageReport {
  uint64_t imported = 0;       ///< rows re-queued with their original msg_id
  uint64_t already_present = 0;
  uint64_t unreadable = 0;     ///< rows that could not be read or decrypted
};

/// The store. Thread-safe: append/lease/ack/... enqueue work for the single writer thread that
/// owns the write connection; inspection calls use a separate read connection and may be made
/// from any thread that may block (never from an I/O thread).
class SqliteStore final : public RecordSink, public QueueReader {
 public:
  /// Opens (creating if needed) the database and key file, checks the key file's permissions,
  /// runs the integrity check, returns leased records to pending and starts the writer thread.
  /// A corrupt database is renamed to `<db>.corrupt-<UTC time>` and a fresh one is created
  /// (see OpenReport). Errors: Errc::key_file (missing while sealed rows exist, unsafe mode,
  /// unreadable, malformed), Errc::io.
  static Result<std::unique_ptr<SqliteStore>> open(StoreOptions options);

  /// `pms-agent keys export`: the keys of `key_file` as portable text ("key <id> <64 hex
  /// digits>" lines, what a Linux key file holds), unsealed (DPAPI on Windows) and checked.
  /// Treat the text like the key itself. Errors: Errc::key_file.
  static Result<Sensitive<std::string>> exportKeys(const std::filesystem::path& key_file);

  /// `pms-agent keys import`: writes the keys in `text` (the portable format, checked first)
  /// as `key_file`, protected as this OS protects key files (mode 0600; ACL and DPAPI).
  /// Whether they open a database is for the caller to check (open the store). Errors:
  /// Errc::key_file (malformed text, `what` naming it), Errc::io.
  static Status importKeys(const std::filesystem::path& key_file, std::string_view text,
                           const std::string& what);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  /// Stops accepting, commits everything already queued, completes all callbacks (later calls
  /// complete with Errc::closed) and joins the writer. Idempotent; the destructor calls it.
  void close();

  const OpenReport& openReport() const;

  // RecordSink
  void append(AppendBatch batch, AppendCallback done) override;
  // QueueReader
  void lease(size_t max, LeaseCallback done) override;
  void ack(std::vector<int64_t> seqs, StatusCallback done) override;
  void nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
            StatusCallback done) override;
  void deadLetter(int64_t seq, std::string reason, StatusCallback done) override;
  void releaseAll(StatusCallback done) override;
  void setDeliverableListener(std::function<void()> notify) override;

  /// Acks by msg_id (receipt mode). Unknown ids are ignored. Returns how many were delivered.
  Result<uint64_t> ackByMsgId(const std::vector<std::string>& msg_ids);

  // Watermarks
  Result<std::optional<std::string>> watermark(const std::string& scope,
                                               const std::string& key) override;
  Result<std::map<std::string, std::string>> watermarks(const std::string& scope) override;

  // Inspection and technician actions (blocking; not from I/O threads)
  Result<QueueStats> stats();
  /// The writer's commit latency and group size histograms since open. Any thread; never
  /// blocks (atomic counters). All counts stay zero for a read-only store.
  WriterMetrics writerMetrics() const;
  /// Rows after `after_seq` in seq order, at most `limit`.
  Result<std::vector<RecordInfo>> list(ListFilter filter, int64_t after_seq, size_t limit);
  /// Dead letters grouped by reason, most frequent first, at most `limit` reasons. Reads every
  /// dead row: for the status page, not for a hot path.
  Result<std::vector<DeadReason>> deadReasons(size_t limit);
  /// Metadata of one record by msg_id (queued or dead). Errc::not_found if absent.
  Result<RecordInfo> show(const std::string& msg_id);
  /// The decrypted payload. The caller audits the act.
  Result<Sensitive<std::string>> reveal(const std::string& msg_id);
  /// Moves one dead letter back to the queue (same msg_id, attempts reset).
  Status retryDead(const std::string& msg_id);
  Result<uint64_t> retryAllDead();
  Result<uint64_t> purgeDead();

  /// Re-imports every readable, decryptable row of a moved-aside database file, keeping msg_ids.
  Result<SalvageReport> salvage(const std::filesystem::path& file);

  /// Adds a new data key; new records use it. Old keys stay until no row needs them.
  Result<uint32_t> rotateKey();

  // Audit trail (hash-chained; committed in the writer's next transaction)
  /// Queues an entry; `done` (optional) runs after it is durable.
  void audit(AuditEntry entry, StatusCallback done = {});
  Result<std::vector<AuditEntry>> auditEntries(int64_t after_seq, size_t limit);
  Result<AuditVerifyResult> verifyAudit();

  /// The internals (store/src/store_impl.h); opaque outside psa::store.
  struct Impl;

 private:
  friend class OutboundQueue;  // runs its tasks on the writer, reads with the read connection
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

using SqliteStorePtr = std::unique_ptr<SqliteStore>;

}  // namespace psa::store
