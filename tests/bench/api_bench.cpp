// API adapter benchmark: a large initial FHIR load from the simulator over real HTTPS into the
// real store, in this process (so RSS is the agent side only). Prints figures, asserts nothing.
//
//   api_bench [--resources N] [--mode bulk|search|both] [--page-size N] [--batch N] [--summary]
//
// --summary (last) adds machine-readable lines `figure<TAB>value<TAB>unit` (tests/bench/run-all.sh).
//
// bulk:   Epic profile, Group/$export, streamed NDJSON (files of 20,000 resources), batches
//         of --batch lines per store commit.
// search: Meditech profile, paged _lastUpdated search, --page-size resources per page, one
//         store commit per page.
// For each: wall time, resources/s (records committed / time from start to run complete),
// peak and end RSS of this process, store size.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "pms_sim_fixture.h"
#include "psa/adapters/source.h"
#include "psa/store/schema.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"
#include "tls_material.h"

namespace {

using namespace psa;
using SteadyClock = std::chrono::steady_clock;

long rssKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) {
      return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
    }
  }
  return 0;
}

struct Figures {
  double seconds = 0;
  uint64_t records = 0;
  long peak_rss_kb = 0;
  long end_rss_kb = 0;
  long start_rss_kb = 0;
  uint64_t requests = 0;
  double db_mb = 0;
  double commit_s = 0;
};

Figures runOnce(const std::string& vendor, const std::string& mode, int resources, int page_size,
                int batch) {
  test::TempDir tmp("psa-apibench");
  test::TlsMaterial tls(tmp.path() / "tls");
  auto key = test::makeRsaClientKey(tmp.path(), "client");
  std::printf("  starting %s simulator with --resources %d ...\n", vendor.c_str(), resources);
  std::fflush(stdout);
  test::PmsSim sim(tmp.path() / "sim", tls, vendor,
                   {"--resources", std::to_string(resources), "--client-id", "agent",
                    "--client-public-key", key.public_pem.string(), "--bulk-job-seconds", "0.5",
                    "--bulk-file-max", "20000", "--max-page-size", "5000"},
                   std::chrono::seconds(600));
  auto info = sim.adminGet("/info");
  json::Value types = json::Value::array();
  uint64_t total = 0;
  if (const json::Value* counts = info.find("counts"); counts != nullptr) {
    for (const auto& [t, n] : counts->members()) {
      if (n.isNumber() && n.asInt() > 0) {
        types.push(json::Value::string(t));
        total += static_cast<uint64_t>(n.asInt());
      }
    }
  }
  std::printf("  simulator holds %llu resources of %zu types\n",
              static_cast<unsigned long long>(total), types.items().size());

  const auto state = tmp.path() / "state";
  std::filesystem::create_directories(state);
  store::StoreOptions opts;
  opts.db_path = state / "queue.db";
  opts.key_file = state / "queue.key";
  auto store = store::SqliteStore::open(opts);
  if (!store) {
    std::printf("store open failed: %s\n", store.error().describe().c_str());
    std::exit(1);
  }
  boost::asio::io_context io;
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  const auto* factory = registry.find("fhir-poll");
  json::Value a = json::Value::object();
  a.set("name", json::Value::string("bench"));
  a.set("type", json::Value::string("fhir-poll"));
  a.set("vendor", json::Value::string(vendor));
  a.set("base_url", json::Value::string(sim.fhirBase()));
  a.set("ca_file", json::Value::string(tls.ca().cert.string()));
  json::Value auth = json::Value::object();
  auth.set("type", json::Value::string("smart-backend"));
  auth.set("client_id", json::Value::string("agent"));
  auth.set("private_key_file", json::Value::string(key.private_pem.string()));
  auth.set("token_url", json::Value::string(sim.tokenUrl()));
  a.set("auth", std::move(auth));
  a.set("resources", types);
  a.set("sync", json::Value::string(mode));
  a.set("interval_s", json::Value::integer(3600));
  a.set("page_size", json::Value::integer(page_size));
  a.set("batch_records", json::Value::integer(batch));
  if (mode == "bulk") {
    a.set("group_id", json::Value::string(sim.ready().getString("group_id")));
  }
  std::vector<schema::Issue> issues;
  schema::validate(a, *factory->schema, "bench", issues);
  for (const auto& i : issues) {
    std::printf("config: %s\n", i.format().c_str());
  }
  adapters::SourceContext ctx{io, **store, Clock::system(), state};
  auto source = factory->create(schema::withDefaults(a, *factory->schema), ctx);
  if (!source) {
    std::printf("create failed: %s\n", source.error().message.c_str());
    std::exit(1);
  }
  Figures f;
  f.start_rss_kb = rssKb("VmRSS:");
  const auto t0 = SteadyClock::now();
  if (auto st = (*source)->start(); !st) {
    std::printf("start failed: %s\n", st.error().message.c_str());
    std::exit(1);
  }
  for (;;) {
    auto s = (*source)->status();
    f.peak_rss_kb = std::max(f.peak_rss_kb, rssKb("VmRSS:"));
    if (s.counters["runs"] >= 1 || s.counters["failed_runs"] >= 1) {
      f.records = s.counters["records"];
      f.requests = s.counters["http_requests"];
      f.commit_s = static_cast<double>(s.counters["commit_us"]) / 1e6;
      if (s.counters["failed_runs"] >= 1) {
        std::printf("  run FAILED: %s\n", s.last_error.c_str());
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  f.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  f.end_rss_kb = rssKb("VmRSS:");
  bool stopped = false;
  (*source)->stop([&] { stopped = true; });
  while (!stopped) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (auto st = (*store)->stats()) {
    f.db_mb = static_cast<double>(st->db_bytes) / 1e6;
  }
  (*store)->close();
  return f;
}

bool g_summary = false;

void report(const std::string& what, const Figures& f, const char* figure) {
  std::printf("%-34s %8llu records in %7.2f s = %9.0f records/s | %llu HTTP requests | "
              "RSS start %.0f MB, peak %.0f MB, end %.0f MB | store %.0f MB | in store commits %.1f s\n",
              what.c_str(), static_cast<unsigned long long>(f.records), f.seconds,
              static_cast<double>(f.records) / f.seconds,
              static_cast<unsigned long long>(f.requests), f.start_rss_kb / 1024.0,
              f.peak_rss_kb / 1024.0, f.end_rss_kb / 1024.0, f.db_mb, f.commit_s);
  if (g_summary) {
    std::printf("%s\t%.6g\tresources/s\n", figure, static_cast<double>(f.records) / f.seconds);
    std::printf("%s_rss\t%.6g\tMB\n", figure, f.peak_rss_kb / 1024.0);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int resources = 100000;
  std::string mode = "both";
  int page_size = 1000;
  int batch = 1000;
  if (argc > 1 && std::string(argv[argc - 1]) == "--summary") {
    g_summary = true;
    --argc;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--resources") resources = std::atoi(argv[i + 1]);
    else if (k == "--mode") mode = argv[i + 1];
    else if (k == "--page-size") page_size = std::atoi(argv[i + 1]);
    else if (k == "--batch") batch = std::atoi(argv[i + 1]);
  }
  psa::log::setLevel(psa::log::Level::warn);
  std::printf("api_bench: %d resources, mode %s, page size %d, bulk batch %d\n", resources,
              mode.c_str(), page_size, batch);
  if (mode == "bulk" || mode == "both") {
    report("bulk $export (epic, NDJSON)", runOnce("epic", "bulk", resources, page_size, batch), "api.bulk");
  }
  if (mode == "search" || mode == "both") {
    report("paged search (meditech)", runOnce("meditech", "search", resources, page_size, batch), "api.search");
  }
  return 0;
}
