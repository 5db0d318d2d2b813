// Cloud-link drain benchmark: how fast does a pre-filled queue of N records (default 100,000
// x 1 KiB) drain over mutual TLS to a local mosquitto, with max_inflight 1, 20 and 100; and
// what is the broker's own ceiling (raw libmosquitto QoS 1 publishing with a window of 100, no
// store, no link) on this machine. Each measurement runs in a fresh child process so that its
// peak RSS (VmHWM) is the agent-side memory of that configuration alone.
//
//   build/bin/cloudlink_bench [--records N] [--size BYTES] [--windows 1,20,100]
//                             [--queue store|memory] [--subscriber] [--idle-seconds S]
//                             [--summary]
//
// --queue memory drains an in-memory queue instead of the SQLite store (link cost only; its
// RSS then includes the records themselves).
// --subscriber adds pms-cloud-sim as a consumer, so the broker also fans out every message.
// --summary adds machine-readable lines `figure<TAB>value<TAB>unit` (tests/bench/run-all.sh).
// Prints figures; never fails on them.
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cloud_sim.h"
#include "memory_queue.h"
#include "mosquitto_fixture.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/cloudlink/policy.h"
#include "psa/store/log.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"
#include "tls_material.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Args {
  size_t records = 100000;
  size_t size = 1024;
  std::vector<size_t> windows = {1, 20, 100};
  std::string queue = "store";
  bool subscriber = false;
  bool summary = false;
  size_t idle_seconds = 30;
  // child modes
  std::string mode;  // "", "raw", "drain"
  std::string url, ca, cert, key, db;
  size_t window = 100;
};

long rssKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) {
      return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
    }
  }
  return -1;
}

/// CPU seconds (user + system) of /proc/<pid>/stat or /proc/self/task/<tid>/stat.
double statCpuSeconds(const std::string& stat_path, std::string* comm = nullptr) {
  std::ifstream in(stat_path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t open = text.find('(');
  const size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) {
    return 0;
  }
  if (comm != nullptr) {
    *comm = text.substr(open + 1, close - open - 1);
  }
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double utime = 0;
  double stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) {
      utime = std::stod(field);
    } else if (i == 15) {
      stime = std::stod(field);
    }
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// CPU seconds per thread name of this process ("psa-mqtt", "psa-store-wr", ...).
std::map<std::string, double> threadCpu() {
  std::map<std::string, double> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string comm;
    const double cpu = statCpuSeconds((e.path() / "stat").string(), &comm);
    out[comm] += cpu;
  }
  return out;
}

std::string payloadFor(size_t i, size_t size) {
  std::string p = "MSH|^~\\&|BENCH|" + std::to_string(i) + "|";
  while (p.size() < size) {
    p.push_back(static_cast<char>('A' + (p.size() + i) % 26));
  }
  p.resize(size);
  return p;
}

std::vector<psa::store::Record> makeBatch(size_t from, size_t n, size_t size) {
  std::vector<psa::store::Record> out;
  out.reserve(n);
  for (size_t i = from; i < from + n; ++i) {
    psa::store::Record r;
    r.source = "bench";
    r.vendor = "cerner";
    r.kind = psa::store::Kind::clinical;
    r.format = "hl7v2";
    r.received_at_ms = 1764100000000 + static_cast<int64_t>(i);
    r.payload = psa::Sensitive<std::string>(payloadFor(i, size));
    out.push_back(std::move(r));
  }
  return out;
}

void summary(const Args& a, const std::string& figure, double value, const char* unit) {
  if (a.summary) {
    std::printf("%s\t%.6g\t%s\n", figure.c_str(), value, unit);
  }
}

// ------------------------------------------------------------------------- raw libmosquitto

/// QoS 1 publishing with at most `window` unacknowledged messages; returns messages/s.
int runRaw(const Args& a) {
  mosquitto_lib_init();
  auto addr = psa::cloudlink::parseBrokerUrl(a.url);
  mosquitto* m = mosquitto_new("bench-raw", true, nullptr);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, static_cast<int>(a.window));
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_tls_set(m, a.ca.c_str(), nullptr, a.cert.c_str(), a.key.c_str(), nullptr);
  mosquitto_tls_opts_set(m, 1, "tlsv1.2", nullptr);
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    size_t acked = 0;
    bool connected = false;
  } st;
  mosquitto_user_data_set(m, &st);
  mosquitto_connect_v5_callback_set(m, [](mosquitto*, void* obj, int rc, int, const mosquitto_property*) {
    auto* s = static_cast<State*>(obj);
    std::lock_guard lock(s->mu);
    s->connected = rc == 0;
    s->cv.notify_all();
  });
  mosquitto_publish_v5_callback_set(m, [](mosquitto*, void* obj, int, int, const mosquitto_property*) {
    auto* s = static_cast<State*>(obj);
    std::lock_guard lock(s->mu);
    ++s->acked;
    s->cv.notify_all();
  });
  if (mosquitto_connect(m, addr->host.c_str(), addr->port, 30) != MOSQ_ERR_SUCCESS) {
    std::cerr << "raw: connect failed\n";
    return 1;
  }
  mosquitto_loop_start(m);
  {
    std::unique_lock lock(st.mu);
    st.cv.wait_for(lock, 10s, [&] { return st.connected; });
  }
  std::vector<std::string> payloads;
  for (size_t i = 0; i < 1000; ++i) {
    payloads.push_back(payloadFor(i, a.size));
  }
  const auto t0 = Clock::now();
  for (size_t i = 0; i < a.records; ++i) {
    {
      std::unique_lock lock(st.mu);
      st.cv.wait(lock, [&] { return i - st.acked < a.window; });
    }
    const std::string& p = payloads[i % payloads.size()];
    mosquitto_publish_v5(m, nullptr, "ps/bench/raw/up/clinical", static_cast<int>(p.size()),
                         p.data(), 1, false, nullptr);
  }
  {
    std::unique_lock lock(st.mu);
    st.cv.wait(lock, [&] { return st.acked >= a.records; });
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  mosquitto_disconnect(m);
  mosquitto_loop_stop(m, false);
  mosquitto_destroy(m);
  std::printf("RESULT rate=%.0f seconds=%.3f hwm_kb=%ld\n", a.records / secs, secs,
              rssKb("VmHWM:"));
  return 0;
}

// ------------------------------------------------------------------------- the link

psa::store::StoreOptions storeOptions(const Args& a) {
  psa::store::StoreOptions so;
  so.db_path = a.db;
  so.key_file = a.db + ".key";
  return so;
}

/// Appends the records to a fresh store (a separate process, so the drain process's peak RSS
/// does not include the fill).
int runFill(const Args& a) {
  psa::log::setLevel(psa::log::Level::warn);
  auto store = psa::store::SqliteStore::open(storeOptions(a));
  if (!store) {
    std::cerr << store.error().describe() << "\n";
    return 1;
  }
  const auto t0 = Clock::now();
  for (size_t i = 0; i < a.records; i += 1000) {
    psa::store::AppendBatch batch;
    batch.records = makeBatch(i, std::min<size_t>(1000, a.records - i), a.size);
    auto r = (*store)->appendSync(std::move(batch));
    if (!r) {
      std::cerr << r.error().describe() << "\n";
      return 1;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  (*store)->close();
  std::printf("RESULT rate=%.0f seconds=%.3f\n", a.records / secs, secs);
  return 0;
}

int runDrain(const Args& a) {
  psa::log::setLevel(psa::log::Level::warn);
  std::unique_ptr<psa::test::MemoryQueue> mem;
  psa::store::SqliteStorePtr sqlite;
  psa::store::QueueReader* queue = nullptr;
  if (a.queue == "memory") {
    mem = std::make_unique<psa::test::MemoryQueue>();
    for (size_t i = 0; i < a.records; i += 10000) {
      mem->append(makeBatch(i, std::min<size_t>(10000, a.records - i), a.size));
    }
    queue = mem.get();
  } else {
    auto s = psa::store::SqliteStore::open(storeOptions(a));
    if (!s) {
      std::cerr << s.error().describe() << "\n";
      return 1;
    }
    sqlite = std::move(s).value();
    queue = sqlite.get();
  }
  const long hwm_before = rssKb("VmHWM:");

  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] { io.run(); });
  }
  psa::cloudlink::CloudLinkOptions o;
  o.url = a.url;
  o.ca_file = a.ca;
  o.cert_file = a.cert;
  o.key_file = a.key;
  o.tenant = "bench";
  o.agent_id = "agent-bench";
  o.max_inflight = a.window;
  auto link = psa::cloudlink::CloudLink::create(io, *queue, o);
  if (!link) {
    std::cerr << link.error().describe() << "\n";
    return 1;
  }
  (*link)->start();
  // Time from the first publish to the last release.
  while ((*link)->status().published == 0) {
    std::this_thread::sleep_for(1ms);
  }
  const auto t0 = Clock::now();
  const auto cpu0 = threadCpu();  // the drain only: not the store open nor the first lease
  long rss_peak = 0;
  long anon_peak = 0;
  long file_peak = 0;
  while ((*link)->status().acked < a.records) {
    std::this_thread::sleep_for(5ms);
    rss_peak = std::max(rss_peak, rssKb("VmRSS:"));
    anon_peak = std::max(anon_peak, rssKb("RssAnon:"));
    file_peak = std::max(file_peak, rssKb("RssFile:"));
    if (Clock::now() - t0 > 600s) {
      std::cerr << "drain: timeout " << (*link)->status().toJson() << "\n";
      return 1;
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto st = (*link)->status();
  std::string threads_cpu;
  for (const auto& [name, cpu] : threadCpu()) {
    char item[96];
    const auto before = cpu0.find(name);
    std::snprintf(item, sizeof item, "%s%s:%.3f", threads_cpu.empty() ? "" : ",", name.c_str(),
                  cpu - (before == cpu0.end() ? 0.0 : before->second));
    threads_cpu += item;
  }
  std::promise<void> stopped;
  (*link)->stop([&] { stopped.set_value(); });
  stopped.get_future().wait_for(10s);
  link->reset();
  guard.reset();
  for (auto& t : threads) {
    t.join();
  }
  if (sqlite) {
    sqlite->close();
  }
  std::printf("RESULT rate=%.0f seconds=%.3f hwm_kb=%ld hwm_before_kb=%ld rss_peak_kb=%ld "
              "anon_peak_kb=%ld file_peak_kb=%ld published=%llu threads_cpu=%s\n",
              a.records / secs, secs, rssKb("VmHWM:"), hwm_before, rss_peak, anon_peak, file_peak,
              static_cast<unsigned long long>(st.published), threads_cpu.c_str());
  return 0;
}

// ------------------------------------------------------------------------- broker down

/// CPU used by a link whose broker is down (connection refused), over `seconds`.
int runIdle(const Args& a) {
  psa::log::setLevel(psa::log::Level::error);
  psa::test::MemoryQueue queue;
  queue.append(makeBatch(0, 1000, a.size));
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] { io.run(); });
  }
  psa::cloudlink::CloudLinkOptions o;
  o.url = "mqtts://127.0.0.1:" + std::to_string(psa::test::freePort());
  o.ca_file = a.ca;
  o.cert_file = a.cert;
  o.key_file = a.key;
  o.tenant = "bench";
  o.agent_id = "agent-bench";
  auto link = psa::cloudlink::CloudLink::create(io, queue, o);
  (*link)->start();
  std::this_thread::sleep_for(2s);  // past the first attempts
  rusage r0{};
  getrusage(RUSAGE_SELF, &r0);
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(a.records));
  rusage r1{};
  getrusage(RUSAGE_SELF, &r1);
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  auto cpu = [](const rusage& r) {
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
  };
  const auto st = (*link)->status();
  std::promise<void> stopped;
  (*link)->stop([&] { stopped.set_value(); });
  stopped.get_future().wait_for(10s);
  link->reset();
  guard.reset();
  for (auto& t : threads) {
    t.join();
  }
  std::printf("RESULT cpu_ms=%.1f wall_s=%.1f attempts=%llu\n", 1000 * (cpu(r1) - cpu(r0)), wall,
              static_cast<unsigned long long>(st.reconnects + 1));
  return 0;
}

// ------------------------------------------------------------------------- orchestration

std::map<std::string, std::string> runChild(const std::vector<std::string>& argv) {
  auto r = psa::test::runCommand(argv, 900s);
  std::map<std::string, std::string> out;
  const size_t pos = r.output.find("RESULT ");
  if (r.exit_code != 0 || pos == std::string::npos) {
    std::cerr << "child failed (" << r.exit_code << "): " << r.output << "\n";
    return out;
  }
  std::istringstream in(r.output.substr(pos + 7));
  std::string kv;
  while (in >> kv) {
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) {
      out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return out;
}

int orchestrate(const Args& a, const char* self) {
  psa::test::TempDir tmp("psa-bench");
  psa::test::TlsMaterial tls(tmp / "pki");
  auto broker = psa::test::MosquittoBroker::withMaterial(tls, tmp / "broker");
  const auto& agent = tls.client("agent-bench");
  const auto& raw = tls.client("raw");
  std::unique_ptr<psa::test::CloudSim> sim;
  if (a.subscriber) {
    psa::test::CloudSimOptions so = psa::test::cloudSimOptions(broker->url(), tls, tmp / "sim");
    so.payloads = false;
    so.extra_args = {"--filter", "ps/#"};
    sim = std::make_unique<psa::test::CloudSim>(so);
  }
  std::printf("cloudlink_bench: %zu records x %zu bytes, mosquitto %s over TLS 1.2+ (mutual), "
              "queue=%s, subscriber=%s, %u cores\n",
              a.records, a.size, "2.0.11", a.queue.c_str(), a.subscriber ? "yes" : "no",
              std::thread::hardware_concurrency());
  const std::vector<std::string> common = {"--url", broker->url(), "--ca", tls.ca().cert.string(),
                                           "--records", std::to_string(a.records), "--size",
                                           std::to_string(a.size)};
  auto argv = [&](std::vector<std::string> v, const psa::test::CertFiles& c) {
    v.insert(v.begin(), self);
    v.insert(v.end(), common.begin(), common.end());
    v.insert(v.end(), {"--cert", c.cert.string(), "--key", c.key.string()});
    return v;
  };
  std::printf("%-34s %10s %9s %10s\n", "configuration", "records/s", "of raw", "peak RSS");
  std::map<size_t, double> raw_rates;
  for (size_t w : a.windows) {
    const double b0 = statCpuSeconds("/proc/" + std::to_string(broker->pid()) + "/stat");
    auto r = runChild(argv({"--mode", "raw", "--window", std::to_string(w)}, raw));
    const double broker_cpu = statCpuSeconds("/proc/" + std::to_string(broker->pid()) + "/stat") - b0;
    raw_rates[w] = r.count("rate") ? std::stod(r["rate"]) : 0;
    char label[64];
    std::snprintf(label, sizeof label, "raw libmosquitto QoS1, window %zu", w);
    std::printf("%-34s %10.0f %9s %9.1fM  (broker CPU %.2f s = %.0f us/msg)\n", label,
                raw_rates[w], "", r.count("hwm_kb") ? std::stod(r["hwm_kb"]) / 1024 : 0.0,
                broker_cpu, 1e6 * broker_cpu / static_cast<double>(a.records));
    summary(a, "limits.mosquitto_tls_qos1_w" + std::to_string(w), raw_rates[w], "msg/s");
    std::fflush(stdout);
  }
  {
    auto v = argv({"--mode", "idle"}, agent);
    // --records doubles as the idle duration in seconds for this mode.
    for (size_t i = 0; i + 1 < v.size(); ++i) {
      if (v[i] == "--records") {
        v[i + 1] = std::to_string(a.idle_seconds);
      }
    }
    auto r = runChild(v);
    if (!r.empty()) {
      std::printf("broker down (connection refused): %s ms CPU in %s s, %s connection attempts\n",
                  r["cpu_ms"].c_str(), r["wall_s"].c_str(), r["attempts"].c_str());
      summary(a, "cloudlink.cpu_broker_down",
              std::stod(r["cpu_ms"]) / std::stod(r["wall_s"]) / 10.0, "%");
    }
  }
  for (size_t w : a.windows) {
    const double raw_rate = raw_rates[w];
    const std::string db = (tmp / ("queue-" + std::to_string(w) + ".db")).string();
    if (a.queue == "store") {
      auto f = runChild(argv({"--mode", "fill", "--db", db}, agent));
      if (f.empty()) {
        continue;
      }
      if (w == a.windows.front()) {
        std::printf("(store fill: %s records/s)\n", f["rate"].c_str());
      }
    }
    const double b0 = statCpuSeconds("/proc/" + std::to_string(broker->pid()) + "/stat");
    auto r = runChild(argv({"--mode", "drain", "--window", std::to_string(w), "--queue", a.queue,
                            "--db", db},
                           agent));
    const double broker_cpu = statCpuSeconds("/proc/" + std::to_string(broker->pid()) + "/stat") - b0;
    if (r.empty()) {
      continue;
    }
    const double rate = std::stod(r["rate"]);
    char label[64];
    std::snprintf(label, sizeof label, "cloud link, max_inflight %zu", w);
    std::printf("%-34s %10.0f %8.0f%% %9.1fM  (%s s; peak anon %.1fM, file-backed %.1fM; "
                "%.1fM after opening the queue)\n",
                label, rate, raw_rate > 0 ? 100 * rate / raw_rate : 0,
                std::stod(r["hwm_kb"]) / 1024, r["seconds"].c_str(),
                std::stod(r["anon_peak_kb"]) / 1024, std::stod(r["file_peak_kb"]) / 1024,
                std::stod(r["hwm_before_kb"]) / 1024);
    // Where the CPU went (2 cores shared by the broker and the agent): per thread, us/record.
    std::printf("    CPU per record: broker %.1f us", 1e6 * broker_cpu / static_cast<double>(a.records));
    std::istringstream threads(r["threads_cpu"]);
    std::string item;
    while (std::getline(threads, item, ',')) {
      const size_t colon = item.rfind(':');
      if (colon != std::string::npos) {
        std::printf(", %s %.1f us", item.substr(0, colon).c_str(),
                    1e6 * std::stod(item.substr(colon + 1)) / static_cast<double>(a.records));
      }
    }
    std::printf("\n");
    summary(a, "cloudlink.drain_w" + std::to_string(w), rate, "records/s");
    summary(a, "cloudlink.drain_w" + std::to_string(w) + "_rss", std::stod(r["hwm_kb"]) / 1024,
            "MB");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value for " << k << "\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--records") {
      a.records = std::stoul(next());
    } else if (k == "--size") {
      a.size = std::stoul(next());
    } else if (k == "--windows") {
      a.windows.clear();
      std::stringstream ss(next());
      std::string w;
      while (std::getline(ss, w, ',')) {
        a.windows.push_back(std::stoul(w));
      }
    } else if (k == "--queue") {
      a.queue = next();
    } else if (k == "--subscriber") {
      a.subscriber = true;
    } else if (k == "--summary") {
      a.summary = true;
    } else if (k == "--idle-seconds") {
      a.idle_seconds = std::stoul(next());
    } else if (k == "--mode") {
      a.mode = next();
    } else if (k == "--url") {
      a.url = next();
    } else if (k == "--ca") {
      a.ca = next();
    } else if (k == "--cert") {
      a.cert = next();
    } else if (k == "--key") {
      a.key = next();
    } else if (k == "--db") {
      a.db = next();
    } else if (k == "--window") {
      a.window = std::stoul(next());
    } else {
      std::cerr << "usage: cloudlink_bench [--records N] [--size BYTES] [--windows 1,20,100] "
                   "[--queue store|memory] [--subscriber] [--idle-seconds S] [--summary]\n";
      return 2;
    }
  }
  if (a.mode == "raw") {
    return runRaw(a);
  }
  if (a.mode == "drain") {
    return runDrain(a);
  }
  if (a.mode == "idle") {
    return runIdle(a);
  }
  if (a.mode == "fill") {
    return runFill(a);
  }
  return orchestrate(a, argv[0]);
}
