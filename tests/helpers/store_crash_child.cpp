// Crash victim for tests/crash/store_crash_test.cpp: appends from several threads and reports
// every acknowledged record ("A <msg_id> <fnv64 hex> <thread> <counter>") to a report file as
// soon as its completion fires, with one write() per line. A lease/ack thread runs beside the
// producers. The parent SIGKILLs this process at random moments.
//
//   store_crash_child <dir> <producer threads> <report file>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "psa/store/sqlite_store.h"

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h = (h ^ c) * 1099511628211ull;
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: store_crash_child DIR THREADS REPORT\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int threads = std::atoi(argv[2]);
  const int report = ::open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (report < 0) {
    return 3;
  }
  psa::log::setLevel(psa::log::Level::warn);
  psa::store::StoreOptions o;
  o.db_path = dir + "/queue.db";
  o.key_file = dir + "/queue.key";
  o.retain_delivered = std::chrono::hours(1);  // acked records stay checkable after a kill
  auto opened = psa::store::SqliteStore::open(o);
  if (!opened) {
    std::fprintf(stderr, "open failed: %s\n", opened.error().describe().c_str());
    return 4;
  }
  auto store = std::move(opened).value();

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&store, report, t] {
      std::mt19937_64 rng(std::random_device{}());
      // Continue after the last committed counter, so counters grow across kills.
      uint64_t first = 0;
      auto wm = store->watermark("crash", "t" + std::to_string(t));
      if (wm && wm->has_value()) {
        first = std::stoull(**wm) + 1;
      }
      for (uint64_t i = first;; ++i) {
        psa::store::AppendBatch b;
        psa::store::Record r;
        r.source = "crash-" + std::to_string(t);
        r.vendor = "test";
        r.kind = psa::store::Kind::clinical;
        r.format = "binary";
        std::string payload = "t" + std::to_string(t) + "-" + std::to_string(i) + "-";
        const size_t n = 16 + rng() % 4000;
        for (size_t k = 0; k < n; ++k) {
          payload.push_back(static_cast<char>(rng()));
        }
        const uint64_t h = fnv1a(payload);
        r.payload = psa::Sensitive<std::string>(std::move(payload));
        b.records.push_back(std::move(r));
        b.watermarks.push_back({"crash", "t" + std::to_string(t), std::to_string(i)});
        auto res = store->appendSync(std::move(b));
        if (!res) {
          continue;
        }
        char line[160];
        const int len = std::snprintf(line, sizeof line, "A %s %016" PRIx64 " %d %" PRIu64 "\n",
                                      res->records[0].msg_id.c_str(), h, t, i);
        [[maybe_unused]] auto w = ::write(report, line, static_cast<size_t>(len));
      }
    });
  }
  std::thread drainer([&store] {
    while (true) {
      std::promise<psa::Result<std::vector<psa::store::Leased>>> p;
      store->lease(50, [&p](psa::Result<std::vector<psa::store::Leased>> r) {
        p.set_value(std::move(r));
      });
      auto r = p.get_future().get();
      if (!r || r->empty()) {
        std::this_thread::yield();
        continue;
      }
      std::vector<int64_t> seqs;
      for (const auto& l : *r) {
        seqs.push_back(l.seq);
      }
      store->ack(std::move(seqs), {});
    }
  });
  std::fprintf(stdout, "ready\n");
  std::fflush(stdout);
  drainer.join();  // never returns: the parent kills us
  return 0;
}
