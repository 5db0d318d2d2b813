// SqliteStore: the shared internals (counters, sealing helpers, the writer's statements), close,
// and the public API's thin wrappers. Opening (schema, integrity check, move-aside, key
// reconciliation) is in store_open.cpp; the writer, lease, inspection, technician actions and
// salvage paths in store_writer.cpp (+ store_maintenance.cpp), store_lease.cpp,
// store_inspect.cpp, store_actions.cpp and store_salvage.cpp.
#include "psa/store/sqlite_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <future>

#include "audit.h"
#include "crypto.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "psa/store/os/durable_file.h"
#include "store_impl.h"

namespace psa::store {
namespace fs = std::filesystem;

namespace {

std::string kindKey(const char* what, size_t kind) {
  return std::string(what) + "." + std::string(kindName(kAllKinds[kind]));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Counters / OpCtx

void Counters::add(const Counters& d) {
  for (size_t i = 0; i < kKindCount; ++i) {
    pending[i] += d.pending[i];
    bytes[i] += d.bytes[i];
    dead[i] += d.dead[i];
  }
  retry += d.retry;
  retained += d.retained;
  last_seq = std::max(last_seq, d.last_seq);
  dedupe += d.dedupe;
  for (const auto& [id, n] : d.key_rows) {
    key_rows[id] += n;
  }
}

int64_t Counters::sealedRows() const {
  int64_t n = 0;
  for (const auto& [id, rows] : key_rows) {
    n += rows;
  }
  return n;
}

std::vector<std::pair<std::string, int64_t>> Counters::changedEntries(const Counters& d) const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i < kKindCount; ++i) {
    if (d.pending[i] != 0) out.emplace_back(kindKey("pending", i), pending[i]);
    if (d.bytes[i] != 0) out.emplace_back(kindKey("bytes", i), bytes[i]);
    if (d.dead[i] != 0) out.emplace_back(kindKey("dead", i), dead[i]);
  }
  if (d.retry != 0) out.emplace_back("retry", retry);
  if (d.retained != 0) out.emplace_back("retained", retained);
  if (d.last_seq != 0) out.emplace_back("last_seq", last_seq);
  if (d.dedupe != 0) out.emplace_back("dedupe", dedupe);
  for (const auto& [id, n] : d.key_rows) {
    if (n != 0) {
      auto it = key_rows.find(id);
      out.emplace_back("key." + std::to_string(id), it == key_rows.end() ? 0 : it->second);
    }
  }
  return out;
}

void Counters::load(std::string_view name, int64_t value) {
  for (size_t i = 0; i < kKindCount; ++i) {
    if (name == kindKey("pending", i)) pending[i] = value;
    if (name == kindKey("bytes", i)) bytes[i] = value;
    if (name == kindKey("dead", i)) dead[i] = value;
  }
  if (name == "retry") retry = value;
  if (name == "retained") retained = value;
  if (name == "last_seq") last_seq = value;
  if (name == "dedupe") {
    dedupe = value;
    dedupe_loaded = true;
  }
  if (name.rfind("key.", 0) == 0) {
    const std::string id(name.substr(4));
    key_rows[static_cast<uint32_t>(std::strtoul(id.c_str(), nullptr, 10))] = value;
  }
}

void OpCtx::merge(OpCtx&& o) {
  delta.add(o.delta);
  for (auto& a : o.audits) {
    audits.push_back(std::move(a));
  }
  for (auto& f : o.on_commit) {
    on_commit.push_back(std::move(f));
  }
  for (const auto& [src, n] : o.accepted) {
    accepted[src] += n;
  }
  appended += o.appended;
  duplicates += o.duplicates;
  delivered += o.delivered;
  budget_bytes += o.budget_bytes;
  deliverable = deliverable || o.deliverable;
  if (o.retry_at != 0 && (retry_at == 0 || o.retry_at < retry_at)) {
    retry_at = o.retry_at;
  }
}

// ---------------------------------------------------------------------------------------------
// Sealing helpers

std::string recordAad(std::string_view msg_id, uint32_t key_id) {
  std::string aad = "psa.record.v1";
  aad.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    aad.push_back(static_cast<char>((key_id >> shift) & 0xff));
  }
  aad.append(msg_id);
  return aad;
}

std::string watermarkAad(std::string_view scope, uint32_t key_id) {
  std::string aad = "psa.watermark.v1";
  aad.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    aad.push_back(static_cast<char>((key_id >> shift) & 0xff));
  }
  aad.append(scope);
  return aad;
}

std::string encodeWatermark(std::string_view name, std::string_view value) {
  std::string out;
  out.reserve(4 + name.size() + value.size());
  const auto n = static_cast<uint32_t>(name.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out.append(name);
  out.append(value);
  return out;
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

std::string openRecord(const KeyRing& ring, uint32_t key_id, std::string_view msg_id,
                       std::string_view sealed, std::string& out) {
  const DataKey* key = ring.find(key_id);
  if (key == nullptr) {
    return "decrypt failed: key " + std::to_string(key_id) + " is not in the key file";
  }
  switch (crypto::open(key->raw, recordAad(msg_id, key_id), sealed, out)) {
    case crypto::OpenError::ok:
      return {};
    case crypto::OpenError::malformed:
      return "decrypt failed: malformed sealed payload (key " + std::to_string(key_id) + ")";
    case crypto::OpenError::auth_failed:
      return "decrypt failed: authentication tag mismatch (key " + std::to_string(key_id) + ")";
    case crypto::OpenError::internal:
      break;
  }
  return "decrypt failed: cipher error (key " + std::to_string(key_id) + ")";
}

// ---------------------------------------------------------------------------------------------
// Impl

SqliteStore::Impl::Impl(StoreOptions options) : opts(std::move(options)), clock(opts.clock) {
  if (!clock) {
    clock = Clock::system();
    opts.clock = clock;
  }
  last_audit_hash = audit::genesisHash();
}

SqliteStore::Impl::~Impl() { close(); }

KeyRingPtr SqliteStore::Impl::ring() const {
  std::lock_guard lock(ring_mu);
  return shared_ring;
}

void SqliteStore::Impl::setRing(KeyRingPtr r) {
  wring = r;
  std::lock_guard lock(ring_mu);
  shared_ring = std::move(r);
}

uint64_t SqliteStore::Impl::walBytes() const {
  fs::path wal = opts.db_path;
  wal += "-wal";
  std::error_code ec;
  const uintmax_t size = fs::file_size(wal, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

std::string SqliteStore::Impl::utcStamp() const {
  const std::tm tm = utcCalendar(clock->nowMs() / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Status SqliteStore::Impl::prepareWriter() {
  struct Item {
    Stmt* stmt;
    const char* sql;
  };
  const Item items[] = {
      {&ws.begin, "BEGIN IMMEDIATE"},
      {&ws.commit, "COMMIT"},
      {&ws.rollback, "ROLLBACK"},
      {&ws.sp_begin, "SAVEPOINT op"},
      {&ws.sp_release, "RELEASE op"},
      {&ws.sp_rollback, "ROLLBACK TO op"},
      {&ws.ins_queue,
       "INSERT INTO queue(seq,msg_id,source,vendor,kind,format,received_at,size,key_id,sealed) "
       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"},
      {&ws.dedupe_get, "SELECT msg_id, seen_at FROM dedupe WHERE mac=?1"},
      {&ws.dedupe_ins, "INSERT INTO dedupe(mac,msg_id,seen_at,key_id) VALUES(?1,?2,?3,?4)"},
      {&ws.dedupe_upd, "UPDATE dedupe SET msg_id=?2, seen_at=?3 WHERE mac=?1"},
      {&ws.ins_dead,
       "INSERT INTO dead(msg_id,source,vendor,kind,format,received_at,size,key_id,attempts,origin,"
       "reason,dead_at,sealed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"},
      {&ws.wm_del, "DELETE FROM watermarks WHERE scope=?1 AND name_mac=?2 RETURNING key_id"},
      {&ws.wm_ins,
       "INSERT INTO watermarks(scope,name_mac,key_id,updated_at,sealed) VALUES(?1,?2,?3,?4,?5)"},
      {&ws.ack_del, "DELETE FROM queue WHERE seq=?1 AND state<2 RETURNING state,kind,size,key_id"},
      {&ws.ack_del_range,
       "DELETE FROM queue WHERE seq BETWEEN ?1 AND ?2 AND state<2 "
       "RETURNING state,kind,size,key_id"},
      {&ws.ack_sel, "SELECT state,kind,size FROM queue WHERE seq=?1 AND state<2"},
      {&ws.ack_ret, "UPDATE queue SET state=2, delivered_at=?2 WHERE seq=?1"},
      {&ws.nack_upd,
       "UPDATE queue SET state=1, attempts=attempts+1, next_attempt_at=?1, reason=?2 "
       "WHERE seq=?3 AND state=?4"},
      {&ws.q_meta, "SELECT state,kind,size,msg_id,source FROM queue WHERE seq=?1 AND state<2"},
      {&ws.dead_from_queue,
       "INSERT INTO dead(msg_id,source,vendor,kind,format,received_at,size,key_id,attempts,origin,"
       "reason,dead_at,sealed) SELECT msg_id,source,vendor,kind,format,received_at,size,key_id,"
       "attempts,'delivery',?2,?3,sealed FROM queue WHERE seq=?1"},
      {&ws.q_del, "DELETE FROM queue WHERE seq=?1"},
      {&ws.audit_ins,
       "INSERT INTO audit(seq,at_ms,actor,action,detail,prev_hash,hash) "
       "VALUES(?1,?2,?3,?4,?5,?6,?7)"},
      {&ws.counter_put,
       "INSERT INTO counters(name,value) VALUES(?1,?2) "
       "ON CONFLICT(name) DO UPDATE SET value=excluded.value"},
      {&ws.page_count, "PRAGMA page_count"},
      {&ws.freelist_count, "PRAGMA freelist_count"},
      {&ws.meta_put, "INSERT OR REPLACE INTO meta(k,v) VALUES(?1,?2)"},
      {&ws.meta_del, "DELETE FROM meta WHERE k=?1"},
      {&ws.retry_next,
       "SELECT next_attempt_at FROM queue WHERE state=1 AND next_attempt_at>?1 "
       "ORDER BY next_attempt_at LIMIT 1"},
  };
  for (const Item& item : items) {
    auto st = wdb.prepare(item.sql);
    if (!st) {
      return Error(st.error().code,
                   "prepare '" + std::string(item.sql) + "': " + st.error().message);
    }
    *item.stmt = std::move(st).value();
  }
  return {};
}

void SqliteStore::Impl::close() {
  {
    std::lock_guard lock(mu);
    closing = true;
  }
  cv.notify_all();
  if (writer.joinable()) {
    if (onWriterThread()) {
      // close() from a completion: the writer stops after this round; the owner joins later.
      log.error("store.close_from_writer_thread");
      return;
    }
    writer.join();
  }
  {
    std::lock_guard lock(lq_mu);
    lease_stop = true;
  }
  lq_cv.notify_all();
  if (leaser.joinable()) {
    leaser.join();
  }
  if (closed.exchange(true)) {
    return;
  }
  ws = WriterStmts{};
  ls = LeaseStmts{};
  ldb.close();
  {
    std::lock_guard lock(read_mu);
    read_closed = true;
    rdb.close();
  }
  const bool was_open = static_cast<bool>(wdb);
  wdb.close();  // the last connection to close checkpoints and removes the WAL
  if (was_open) {
    log.info("store.closed", {{"db", opts.db_path.string()}});
  }
}

// ---------------------------------------------------------------------------------------------
// Public API

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteStore::~SqliteStore() { close(); }

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(StoreOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  Status st = impl->openAll();
  if (!st) {
    impl->close();
    return st.error();
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

Result<Sensitive<std::string>> SqliteStore::exportKeys(const fs::path& key_file) {
  PSA_TRY(checkKeyFileMode(key_file));
  auto text = readKeyText(key_file);
  if (!text) {
    return std::move(text).error();
  }
  PSA_TRY(parseKeyText(*text, "key file " + key_file.string()));
  return Sensitive<std::string>(std::move(*text));
}

Status SqliteStore::importKeys(const fs::path& key_file, std::string_view text,
                               const std::string& what) {
  auto ring = parseKeyText(text, what);
  if (!ring) {
    return std::move(ring).error();
  }
  return writeKeyFile(key_file, *ring);
}

void SqliteStore::close() {
  if (impl_) {
    impl_->close();
  }
}

const OpenReport& SqliteStore::openReport() const { return impl_->report; }

void SqliteStore::append(AppendBatch batch, AppendCallback done) {
  impl_->enqueue(AppendOp{std::move(batch), std::move(done)});
}

void SqliteStore::lease(size_t max, LeaseCallback done) {
  {
    std::lock_guard lock(impl_->lq_mu);
    if (!impl_->lease_stop) {
      impl_->lease_reqs.push_back({max, std::move(done)});
      impl_->lq_cv.notify_one();
      return;
    }
  }
  impl_->complete(done, Result<std::vector<Leased>>(Errc::closed, "store closed"));
}

void SqliteStore::ack(std::vector<int64_t> seqs, StatusCallback done) {
  impl_->enqueue(AckOp{std::move(seqs), std::move(done)});
}

void SqliteStore::nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
                       StatusCallback done) {
  const int64_t at = impl_->clock->nowMs() + std::max<int64_t>(0, retry_after.count());
  impl_->enqueue(NackOp{seq, at, std::move(reason), std::move(done)});
}

void SqliteStore::deadLetter(int64_t seq, std::string reason, StatusCallback done) {
  impl_->enqueue(DeadOp{seq, std::move(reason), std::move(done)});
}

void SqliteStore::releaseAll(StatusCallback done) { impl_->enqueue(ReleaseOp{std::move(done)}); }

void SqliteStore::setDeliverableListener(std::function<void()> notify) {
  std::lock_guard lock(impl_->listener_mu);
  impl_->listener = std::move(notify);
}

void SqliteStore::audit(AuditEntry entry, StatusCallback done) {
  impl_->enqueue(AuditOp{std::move(entry), std::move(done)});
}

}  // namespace psa::store
