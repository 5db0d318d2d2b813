// Salvage of a moved-aside database: every record and dead letter that still decrypts is
// queued again (under its own msg-id) from a copy of the file, which stays untouched.

#include <algorithm>

#include "audit.h"
#include "crypto.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/sqlite_store.h"
#include "store_impl.h"

namespace psa::store {
namespace fs = std::filesystem;

namespace {

constexpr size_t kSalvageChunk = 256;
constexpr int64_t kSalvageProbeWindow = 4096;

struct SalvageRow {
  bool dead = false;
  std::string msg_id, source, vendor, format, origin, reason;
  int64_t kind = 0, received_at = 0, attempts = 0, dead_at = 0;
  Sensitive<std::string> payload;
};

}  // namespace

Result<SalvageReport> SqliteStore::salvage(const fs::path& file) {
  Impl& m = *impl_;
  if (m.opts.read_only) {
    return readOnlyError();
  }
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return Error(Errc::not_found, "no database file at " + file.string());
  }
  if (fs::equivalent(file, m.opts.db_path, ec)) {
    return Error(Errc::invalid_argument, "salvage needs a moved-aside file, not the live database");
  }
  // Work on a copy: opening a WAL database may write to it, and the moved-aside evidence must
  // stay untouched.
  std::string stamp = m.utcStamp();
  uint8_t rnd[4];
  crypto::randomBytes(rnd, sizeof rnd);
  const fs::path copy = m.opts.db_path.string() + ".salvage-" + stamp + "-" + crypto::toHex(rnd, 4);
  auto cleanup = [&copy] {
    std::error_code e;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      fs::path p = copy;
      p += suffix;
      fs::remove(p, e);
    }
  };
  fs::copy_file(file, copy, ec);
  if (!ec) {
    fs::path wal = file;
    wal += "-wal";
    if (fs::exists(wal)) {
      fs::path to = copy;
      to += "-wal";
      fs::copy_file(wal, to, ec);
    }
  }
  if (ec) {
    cleanup();
    return Error(Errc::io, "cannot copy " + file.string() + ": " + ec.message());
  }
  if (Status st = os::restrictToOwner(copy); !st) {
    cleanup();
    return std::move(st).error();
  }

  SalvageReport report;
  const KeyRingPtr keys = m.ring();
  std::vector<SalvageRow> chunk;
  Status failed;

  auto flush = [&]() -> Status {
    if (chunk.empty()) {
      return {};
    }
    uint64_t imported = 0, present = 0;
    Status st = m.runTask([&m, &chunk, &imported, &present](OpCtx& ctx) -> Status {
      imported = present = 0;  // a task may run again if its transaction is retried
      auto exists = m.wdb.prepare(
          "SELECT EXISTS(SELECT 1 FROM queue WHERE msg_id=?1) OR "
          "EXISTS(SELECT 1 FROM dead WHERE msg_id=?1)");
      if (!exists) {
        return std::move(exists).error();
      }
      const DataKey& key = m.wring->current();
      const int64_t now = m.clock->nowMs();
      for (const SalvageRow& row : chunk) {
        {
          StmtScope scope(*exists);
          exists->bindText(1, row.msg_id);
          const int rc = exists->step();
          if (rc != SQLITE_ROW) {
            return m.wdb.error(rc, "salvage");
          }
          if (exists->i64(0) != 0) {
            ++present;
            continue;
          }
        }
        PSA_TRY(m.sealPayload(key, row.msg_id, row.payload.reveal()));
        const auto size = static_cast<int64_t>(row.payload.reveal().size());
        const auto kind = static_cast<size_t>(row.kind);
        int rc;
        if (!row.dead) {
          const int64_t seq = m.next_seq++;
          StmtScope scope(m.ws.ins_queue);
          m.ws.ins_queue.bind(1, seq)
              .bindText(2, row.msg_id)
              .bindText(3, row.source)
              .bindText(4, row.vendor)
              .bind(5, row.kind)
              .bindText(6, row.format)
              .bind(7, row.received_at)
              .bind(8, size)
              .bind(9, key.id)
              .bindBlob(10, m.seal_buf);
          rc = m.ws.ins_queue.step();
          ctx.delta.pending[kind] += 1;
          ctx.delta.bytes[kind] += size;
          ctx.delta.last_seq = std::max(ctx.delta.last_seq, seq);
          ctx.deliverable = true;
        } else {
          StmtScope scope(m.ws.ins_dead);
          m.ws.ins_dead.bindText(1, row.msg_id)
              .bindText(2, row.source)
              .bindText(3, row.vendor)
              .bind(4, row.kind)
              .bindText(5, row.format)
              .bind(6, row.received_at)
              .bind(7, size)
              .bind(8, key.id)
              .bind(9, row.attempts)
              .bindText(10, row.origin)
              .bindText(11, row.reason)
              .bind(12, row.dead_at != 0 ? row.dead_at : now)
              .bindBlob(13, m.seal_buf);
          rc = m.ws.ins_dead.step();
          ctx.delta.dead[kind] += 1;
        }
        if (rc != SQLITE_DONE) {
          return m.wdb.error(rc, "salvage insert");
        }
        ctx.delta.key_rows[key.id] += 1;
        ++imported;
      }
      return {};
    });
    if (!st) {
      return st;
    }
    report.imported += imported;
    report.already_present += present;
    chunk.clear();
    return {};
  };

  {
    auto opened = Db::open(copy);
    if (!opened) {
      cleanup();
      return Error(Errc::corrupt, "cannot read " + file.string() + ": " + opened.error().message);
    }
    Db src = std::move(opened).value();
    auto probe = src.queryInt("SELECT count(*) FROM sqlite_master");
    if (!probe) {
      src.close();
      cleanup();
      return Error(Errc::corrupt, "cannot read " + file.string() + ": " + probe.error().message);
    }
    for (bool dead : {false, true}) {
      const std::string table = dead ? "dead" : "queue";
      const std::string cols =
          dead ? "seq,msg_id,source,vendor,kind,format,received_at,key_id,sealed,attempts,origin,"
                 "reason,dead_at"
               : "seq,msg_id,source,vendor,kind,format,received_at,key_id,sealed,state";
      auto range =
          src.prepare("SELECT " + cols + " FROM " + table + " WHERE seq>?1 ORDER BY seq LIMIT 256");
      auto point = src.prepare("SELECT " + cols + " FROM " + table + " WHERE seq=?1");
      if (!range || !point) {
        m.log.warn("store.salvage_table_unreadable", {{"table", table}});
        continue;
      }
      int64_t hi = 0;
      if (auto mx = src.queryInt(("SELECT coalesce(max(seq),0) FROM " + table).c_str())) {
        hi = *mx;
      } else if (auto ls = src.queryInt("SELECT value FROM counters WHERE name='last_seq'")) {
        hi = *ls;
      }
      auto handle = [&](Stmt& s) -> Status {
        SalvageRow row;
        row.dead = dead;
        row.msg_id = std::string(s.text(1));
        row.source = std::string(s.text(2));
        row.vendor = std::string(s.text(3));
        row.kind = s.i64(4);
        row.format = std::string(s.text(5));
        row.received_at = s.i64(6);
        const auto key_id = static_cast<uint32_t>(s.i64(7));
        if (!dead && s.i64(9) == kStateDelivered) {
          return {};  // already delivered: nothing to salvage
        }
        if (dead) {
          row.attempts = s.i64(9);
          row.origin = std::string(s.text(10));
          row.reason = std::string(s.text(11));
          row.dead_at = s.i64(12);
          if (row.origin.empty()) {
            row.origin = "salvage";
          }
        }
        std::string plain;
        if (!UlidGenerator::valid(row.msg_id) || row.kind < 0 ||
            static_cast<size_t>(row.kind) >= kKindCount ||
            !openRecord(*keys, key_id, row.msg_id, s.blob(8), plain).empty()) {
          ++report.unreadable;
          return {};
        }
        row.payload = Sensitive<std::string>(std::move(plain));
        chunk.push_back(std::move(row));
        if (chunk.size() >= kSalvageChunk) {
          return flush();
        }
        return {};
      };
      int64_t cursor = 0;
      while (failed) {
        StmtScope scope(*range);
        range->bind(1, cursor);
        int rc;
        size_t rows = 0;
        while ((rc = range->step()) == SQLITE_ROW) {
          ++rows;
          cursor = range->i64(0);
          failed = handle(*range);
          if (!failed) {
            break;
          }
        }
        if (!failed) {
          break;
        }
        if (rc == SQLITE_DONE) {
          if (rows < 256) {
            break;
          }
          continue;
        }
        // A damaged region: probe seq by seq until rows read again, counting what errors.
        range->reset();
        bool recovered = false;
        const int64_t stop = cursor + kSalvageProbeWindow;
        while (cursor < stop && (hi == 0 || cursor < hi)) {
          ++cursor;
          StmtScope pscope(*point);
          point->bind(1, cursor);
          const int prc = point->step();
          if (prc == SQLITE_ROW) {
            failed = handle(*point);
            recovered = true;
            break;
          }
          if (prc != SQLITE_DONE) {
            ++report.unreadable;
          }
        }
        if (!failed || (!recovered && (hi == 0 || cursor >= hi))) {
          break;
        }
      }
      if (!failed) {
        break;
      }
    }
    src.close();
  }
  if (failed) {
    failed = flush();
  }
  cleanup();
  if (!failed) {
    return failed.error();
  }
  const std::string name = file.filename().string();
  const SalvageReport rep = report;
  Status audited = m.runTask([&m, rep, name](OpCtx& ctx) -> Status {
    AuditEntry e;
    e.at_ms = m.clock->nowMs();
    e.actor = "agent";
    e.action = "queue.salvaged";
    e.detail = "{\"file\":" + audit::jsonString(name) +
               ",\"imported\":" + std::to_string(rep.imported) +
               ",\"already_present\":" + std::to_string(rep.already_present) +
               ",\"unreadable\":" + std::to_string(rep.unreadable) + "}";
    ctx.audits.push_back(std::move(e));
    return {};
  });
  m.log.info("store.salvaged", {{"file", file.string()},
                                {"imported", report.imported},
                                {"already_present", report.already_present},
                                {"unreadable", report.unreadable}});
  if (!audited) {
    return audited.error();
  }
  return report;
}

}  // namespace psa::store
