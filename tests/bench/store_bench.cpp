// Store benchmark: prints figures, asserts nothing.
//
//   store_bench [--depth N] [--quick] [--dir DIR] [--summary]
//
// --summary adds machine-readable lines `figure<TAB>value<TAB>unit` (tests/bench/run-all.sh).
//
// 1. this machine's durable-commit latency (one fsync'd WAL commit in raw SQLite), the floor
//    for any append;
// 2. at queue depth 0 and N (default 1,000,000): appends/s and p50/p99 latency of 1 KiB records
//    for 1, 4, 16 and 64 producers that each wait for their completion before the next append
//    (like MLLP connections), then the lease+ack drain rate (lease windows of 100, acks sent
//    asynchronously and batched by the store) and the lease latency.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace {

using Clock = std::chrono::steady_clock;
using psa::store::AppendBatch;
using psa::store::Record;
using psa::store::SqliteStore;

bool g_summary = false;
std::string g_suffix;  // "" at depth 0, ".deep" at depth N

void summary(const std::string& figure, double value, const char* unit) {
  if (g_summary) {
    std::printf("%s%s\t%.6g\t%s\n", figure.c_str(), g_suffix.c_str(), value, unit);
  }
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double pct(std::vector<double>& v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Record record(const std::string& payload) {
  Record r;
  r.source = "bench";
  r.vendor = "bench";
  r.kind = psa::store::Kind::clinical;
  r.format = "hl7v2";
  r.payload = psa::Sensitive<std::string>(payload);
  return r;
}

double durableCommitReference(const std::filesystem::path& dir) {
  sqlite3* db = nullptr;
  sqlite3_open((dir / "ref.db").c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
               "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(zeroblob(1024))", -1, &ins, nullptr);
  std::vector<double> lat;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    sqlite3_step(ins);
    sqlite3_reset(ins);
    lat.push_back(ms(Clock::now() - t0));
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
  std::printf("durable commit (raw SQLite, WAL, synchronous=FULL, 1 row/txn): p50 %.2f ms  p99 %.2f ms"
              "  => %.0f commits/s\n",
              pct(lat, 0.5), pct(lat, 0.99), 1000.0 / pct(lat, 0.5));
  summary("limits.durable_commit", 1000.0 / pct(lat, 0.5), "commits/s");
  return 1000.0 / pct(lat, 0.5);
}

void prefill(SqliteStore& store, size_t n) {
  const auto t0 = Clock::now();
  const std::string payload(256, 'p');
  constexpr size_t kBatch = 4000;
  // Several batches in flight so sealing/insert of one overlaps the fsync of another.
  std::vector<std::future<psa::Result<psa::store::AppendResult>>> inflight;
  for (size_t done = 0; done < n; done += kBatch) {
    AppendBatch b;
    for (size_t i = 0; i < std::min(kBatch, n - done); ++i) {
      b.records.push_back(record(payload));
    }
    auto p = std::make_shared<std::promise<psa::Result<psa::store::AppendResult>>>();
    inflight.push_back(p->get_future());
    store.append(std::move(b), [p](psa::Result<psa::store::AppendResult> r) {
      p->set_value(std::move(r));
    });
    if (inflight.size() >= 4) {
      auto r = inflight.front().get();
      if (!r) {
        std::printf("prefill failed: %s\n", r.error().describe().c_str());
        return;
      }
      inflight.erase(inflight.begin());
    }
  }
  for (auto& f : inflight) {
    (void)f.get();
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("prefill: %zu records (256 B) in %.1f s (%.0f records/s)\n", n, s,
              static_cast<double>(n) / s);
}

double producers(SqliteStore& store, int count, std::chrono::milliseconds duration) {
  const std::string payload(1024, 'x');
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(static_cast<size_t>(count));
  std::vector<std::thread> threads;
  std::atomic<uint64_t> errors{0};
  const auto t0 = Clock::now();
  for (int p = 0; p < count; ++p) {
    threads.emplace_back([&, p] {
      auto& mine = lat[static_cast<size_t>(p)];
      while (!stop.load(std::memory_order_relaxed)) {
        AppendBatch b;
        b.records.push_back(record(payload));
        const auto s = Clock::now();
        auto r = store.appendSync(std::move(b));
        mine.push_back(ms(Clock::now() - s));
        if (!r) {
          ++errors;
        }
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) {
    all.insert(all.end(), v.begin(), v.end());
  }
  std::printf("  producers %2d: %8.0f appends/s  p50 %6.2f ms  p99 %7.2f ms  (%zu appends%s)\n",
              count, static_cast<double>(all.size()) / secs, pct(all, 0.5), pct(all, 0.99),
              all.size(), errors ? ", ERRORS" : "");
  const double rate = static_cast<double>(all.size()) / secs;
  summary("store.append_" + std::to_string(count) + "p", rate, "appends/s");
  summary("store.append_" + std::to_string(count) + "p_p99", pct(all, 0.99), "ms");
  return rate;
}

// Leases windows of 100 and acks them asynchronously. `windows` lease requests are kept in
// flight (1 = strictly one window at a time; a cloud link leases replacements as PUBACKs
// arrive, so it keeps several small windows going).
double drain(SqliteStore& store, size_t n, int windows) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> lease_lat;
  std::atomic<size_t> drained{0};
  std::atomic<size_t> acks_pending{0};
  int outstanding = 0;
  bool empty = false;
  const auto t0 = Clock::now();
  auto leased_at = t0;
  std::function<void()> issue;
  issue = [&] {
    const auto s = Clock::now();
    store.lease(100, [&, s](psa::Result<std::vector<psa::store::Leased>> r) {
      std::vector<int64_t> seqs;
      if (r) {
        for (const auto& l : *r) {
          seqs.push_back(l.seq);
        }
      }
      std::lock_guard lock(mu);
      lease_lat.push_back(ms(Clock::now() - s));
      --outstanding;
      if (seqs.empty()) {
        empty = true;
      } else {
        drained += seqs.size();
        ++acks_pending;
        store.ack(std::move(seqs), [&](psa::Status) {
          --acks_pending;
          cv.notify_all();
        });
      }
      cv.notify_all();
    });
  };
  {
    std::unique_lock lock(mu);
    while (true) {
      while (!empty && outstanding < windows && drained + 100 * static_cast<size_t>(outstanding) < n) {
        ++outstanding;
        lock.unlock();
        issue();
        lock.lock();
      }
      if (outstanding == 0 && (empty || drained >= n)) {
        break;
      }
      cv.wait(lock);
    }
    leased_at = Clock::now();
    cv.wait(lock, [&] { return acks_pending.load() == 0; });
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("  drain (%d lease window%s of 100 in flight): %zu records leased+acked in %.2f s => "
              "%.0f records/s (last lease at %.2f s); lease p50 %.3f ms p99 %.3f ms\n",
              windows, windows == 1 ? "" : "s", drained.load(), secs,
              static_cast<double>(drained.load()) / secs,
              std::chrono::duration<double>(leased_at - t0).count(), pct(lease_lat, 0.5), pct(lease_lat, 0.99));
  return static_cast<double>(drained.load()) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  size_t depth = 1'000'000;
  bool quick = false;
  std::string dir_arg;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--depth") == 0 && i + 1 < argc) {
      depth = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      dir_arg = argv[++i];
    } else if (std::strcmp(argv[i], "--summary") == 0) {
      g_summary = true;
    } else {
      std::fprintf(stderr, "usage: store_bench [--depth N] [--quick] [--dir DIR] [--summary]\n");
      return 2;
    }
  }
  psa::log::setLevel(psa::log::Level::warn);
  const auto duration = quick ? std::chrono::milliseconds(1500) : std::chrono::milliseconds(4000);
  const size_t drain_n = quick ? 20'000 : 100'000;
  psa::test::TempDir tmp("psa-bench");
  const std::filesystem::path root = dir_arg.empty() ? tmp.path() : std::filesystem::path(dir_arg);
  std::printf("store_bench: depth %zu, %s, dir %s\n", depth, quick ? "quick" : "full",
              root.c_str());
  for (size_t d : {size_t{0}, depth}) {
    const auto sub = root / ("depth-" + std::to_string(d));
    std::filesystem::create_directories(sub);
    psa::store::StoreOptions o;
    o.db_path = sub / "queue.db";
    o.key_file = sub / "queue.key";
    o.max_bytes = 200ull << 30;
    auto opened = SqliteStore::open(o);
    if (!opened) {
      std::printf("open failed: %s\n", opened.error().describe().c_str());
      return 1;
    }
    auto store = std::move(opened).value();
    std::printf("queue depth %zu:\n", d);
    g_suffix = d == 0 ? "" : ".deep";
    if (d > 0) {
      prefill(*store, d);
      // Let the store's idle maintenance checkpoint the prefill's WAL before measuring.
      std::this_thread::sleep_for(std::chrono::seconds(3));
    }
    // fsync latency on a shared VM drifts by 10x within minutes: measure it next to the figures
    // it explains.
    durableCommitReference(sub);
    std::map<int, double> rates;
    for (int p : {1, 4, 16, 64}) {
      rates[p] = producers(*store, p, duration);
    }
    summary("store.append_16p_over_1p", rates[1] > 0 ? rates[16] / rates[1] : 0, "x");
    // Drain from the head of the queue: at depth 0 these are fresh records; at depth N the
    // oldest prefilled ones, with N rows behind them.
    if (d == 0) {
      const auto left = store->stats()->pending;
      drain(*store, left, 1);  // the producers' records
      prefill(*store, 2 * drain_n);
    }
    summary("store.drain_1w", drain(*store, drain_n, 1), "records/s");
    summary("store.drain_4w", drain(*store, drain_n, 4), "records/s");
    auto st = store->stats();
    std::printf("  after: pending %llu, db %.1f MB, commits %llu\n",
                static_cast<unsigned long long>(st->pending),
                static_cast<double>(st->db_bytes) / 1e6,
                static_cast<unsigned long long>(st->commits_total));
  }
  return 0;
}
