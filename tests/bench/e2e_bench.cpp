// End-to-end benchmark: HL7 over MLLP -> the real `pms-agent run` process (commit before ACK,
// encrypted SQLite queue) -> mosquitto over mutual TLS (QoS 1) -> the real pms-cloud-sim.
// Prints figures; asserts nothing about time.
//
//   build/bin/e2e_bench [--seconds S] [--connections C] [--window W] [--max-inflight N]
//                       [--summary]
//
// Phases, one agent process throughout:
//  1. idle: agent connected to the broker, no traffic: RSS and CPU over a few seconds;
//  2. sustained load: C MLLP connections, each keeping up to W messages (1 KiB ADT) unacked,
//     for S seconds. Figures: ingest rate (AA ACKs/s), delivery rate at the simulator over the
//     steady part of the run, end-to-end rate (messages / time until the last one arrived),
//     agent peak RSS;
//  3. broker down: the broker is stopped, the same load runs S seconds (the queue grows), then
//     the agent's CPU is measured over 10 s with no traffic and the broker still down;
//  4. broker back: time until the backlog has drained to the simulator, and RSS at queue depth
//     (peak during the outage and drain) against the RSS at depth 0.
// At the end every message ACKed AA must have arrived exactly once by msg-id (printed).
// --summary adds machine-readable lines `figure<TAB>value<TAB>unit` for tests/bench/run-all.sh.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent_fixture.h"
#include "cloud_sim.h"
#include "hl7_samples.h"
#include "mosquitto_fixture.h"
#include "psa/store/json.h"
#include "test_support.h"
#include "tls_material.h"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

bool g_summary = false;

void summary(const char* figure, double value, const char* unit) {
  if (g_summary) {
    std::printf("%s\t%.6g\t%s\n", figure, value, unit);
  }
}

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- the agent process from outside --------------------------------------------------------

long statusKb(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
    }
  }
  return -1;
}

/// utime + stime of the process in seconds (all threads).
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return 0;
  }
  // Fields after the command: state(3) ... utime(14) stime(15).
  std::vector<std::string> f;
  size_t pos = close + 2;
  while (pos < text.size() && f.size() < 13) {
    const size_t sp = text.find(' ', pos);
    f.push_back(text.substr(pos, sp - pos));
    pos = sp == std::string::npos ? text.size() : sp + 1;
  }
  if (f.size() < 13) {
    return 0;
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(f[11]) + std::stod(f[12])) / tick;
}

/// CPU seconds per thread name of a process ("psa-mqtt", "psa-store-wr", "pms-agent", ...).
std::map<std::string, double> threadCpu(pid_t pid) {
  std::map<std::string, double> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(e.path() / "comm");
    std::string comm;
    std::getline(in, comm);
    std::ifstream st(e.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    if (close == std::string::npos) {
      continue;
    }
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    double cpu = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14 || i == 15) {
        cpu += std::stod(field);
      }
    }
    out[comm] += cpu / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return out;
}

// ---- what the simulator received: complete lines of its --out file -------------------------

class SimCounter {
 public:
  explicit SimCounter(std::filesystem::path file) : file_(std::move(file)) {}
  /// Lines (messages, duplicates included) written so far.
  size_t count() {
    std::ifstream in(file_, std::ios::binary);
    if (!in) {
      return lines_;
    }
    in.seekg(static_cast<std::streamoff>(offset_));
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      const auto n = static_cast<size_t>(in.gcount());
      lines_ += static_cast<size_t>(std::count(buf, buf + n, '\n'));
      offset_ += n;
    }
    return lines_;
  }

 private:
  std::filesystem::path file_;
  size_t offset_ = 0;
  size_t lines_ = 0;
};

// ---- load generator: C connections, W messages in flight each ------------------------------

struct Load {
  uint64_t acked = 0;  ///< AA
  uint64_t other = 0;  ///< not AA
  uint64_t errors = 0;
  double seconds = 0;
};

class Sender : public std::enable_shared_from_this<Sender> {
 public:
  Sender(asio::io_context& io, std::string prefix, size_t window, Load& load)
      : socket_(io), prefix_(std::move(prefix)), window_(window), load_(load) {
    buf_.resize(64 << 10);
  }
  void connect(uint16_t port, std::atomic<int>& connected) {
    auto self = shared_from_this();
    socket_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [self, &connected](const boost::system::error_code& ec) {
                            if (ec) {
                              ++self->load_.errors;
                              return;
                            }
                            self->socket_.set_option(tcp::no_delay(true));
                            ++connected;
                          });
  }
  void go(Clock::time_point end) {
    end_ = end;
    fill();
    read();
  }

 private:
  void fill() {
    if (writing_ || Clock::now() >= end_) {
      return;
    }
    out_.clear();
    while (sent_ - answered_ < window_) {
      const std::string id = prefix_ + std::to_string(sent_++);
      out_ += '\x0b';
      out_ += psa::test::adtMessage(id, "DOE", 1024);
      out_ += "\x1c\r";
    }
    if (out_.empty()) {
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [self](const boost::system::error_code& ec, size_t) {
      self->writing_ = false;
      if (ec) {
        ++self->load_.errors;
        return;
      }
      self->fill();
    });
  }
  void read() {
    if (answered_ == sent_ && Clock::now() >= end_) {
      boost::system::error_code ec;
      socket_.close(ec);
      return;
    }
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_.data() + have_, buf_.size() - have_),
                            [self](const boost::system::error_code& ec, size_t n) {
                              if (ec) {
                                ++self->load_.errors;
                                return;
                              }
                              self->onData(n);
                            });
  }
  void onData(size_t n) {
    have_ += n;
    size_t start = 0;
    while (true) {
      const std::string_view got(buf_.data() + start, have_ - start);
      const size_t end = got.find("\x1c\r");
      if (end == std::string_view::npos) {
        break;
      }
      const std::string_view ack = got.substr(0, end);
      if (ack.find("\rMSA|AA|") != std::string_view::npos) {
        ++load_.acked;
      } else {
        ++load_.other;
      }
      ++answered_;
      start += end + 2;
    }
    std::memmove(buf_.data(), buf_.data() + start, have_ - start);
    have_ -= start;
    fill();
    read();
  }

  tcp::socket socket_;
  std::string prefix_;
  size_t window_;
  Load& load_;
  Clock::time_point end_;
  std::string out_;
  bool writing_ = false;
  uint64_t sent_ = 0;
  uint64_t answered_ = 0;
  std::vector<char> buf_;
  size_t have_ = 0;
};

/// Runs the load on this thread for `seconds`; `tick` is called about every 100 ms.
Load drive(uint16_t port, int connections, size_t window, double seconds, const std::string& tag,
           const std::function<void()>& tick) {
  Load load;
  asio::io_context io(1);
  std::atomic<int> connected{0};
  std::vector<std::shared_ptr<Sender>> senders;
  for (int i = 0; i < connections; ++i) {
    senders.push_back(std::make_shared<Sender>(io, tag + "C" + std::to_string(i) + "N", window, load));
    senders.back()->connect(port, connected);
  }
  while (connected.load() + static_cast<int>(load.errors) < connections) {
    io.run_one();
  }
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (auto& s : senders) {
    s->go(end);
  }
  senders.clear();
  io.restart();
  auto next_tick = Clock::now() + 100ms;
  while (io.run_one_for(std::chrono::milliseconds(20)) > 0 || !io.stopped()) {
    if (Clock::now() >= next_tick) {
      tick();
      next_tick += 100ms;
    }
  }
  load.seconds = secondsSince(t0);
  return load;
}

struct Args {
  double seconds = 10;
  int connections = 16;
  size_t window = 8;
  int max_inflight = 100;
};

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const bool has = i + 1 < argc;
    if (k == "--seconds" && has) {
      a.seconds = std::stod(argv[++i]);
    } else if (k == "--connections" && has) {
      a.connections = std::stoi(argv[++i]);
    } else if (k == "--window" && has) {
      a.window = std::stoul(argv[++i]);
    } else if (k == "--max-inflight" && has) {
      a.max_inflight = std::stoi(argv[++i]);
    } else if (k == "--summary") {
      g_summary = true;
    } else {
      std::fprintf(stderr,
                   "usage: e2e_bench [--seconds S] [--connections C] [--window W] "
                   "[--max-inflight N] [--summary]\n");
      return 2;
    }
  }

  psa::test::TempDir tmp("psa-e2e-bench");
  psa::test::TlsMaterial tls(tmp / "pki");
  psa::test::MosquittoOptions mo;
  mo.persistence = false;
  auto broker = psa::test::MosquittoBroker::withMaterial(tls, tmp / "broker", mo);
  psa::test::CloudSimOptions so = psa::test::cloudSimOptions(broker->url(), tls, tmp / "sim");
  so.payloads = false;
  psa::test::CloudSim sim(so);
  SimCounter delivered(sim.outFile());

  const std::string agent_id = "practice-0042";
  const auto& cert = tls.client(agent_id);
  const int port = psa::test::freePort();
  auto cfg = psa::json::parse(
                 R"({"agent":{"id":"practice-0042","tenant":"bench","log_level":"info"},
                     "store":{"integrity_check":"off"},
                     "adapters":[{"name":"bench","type":"hl7-mllp","vendor":"cerner",
                                  "ack_mode":"original","listen":"127.0.0.1:)" +
                 std::to_string(port) + "\"}]}")
                 .value();
  psa::json::Value cloud = psa::json::Value::object();
  cloud.set("url", psa::json::Value::string(broker->url()));
  cloud.set("ca_file", psa::json::Value::string(tls.ca().cert.string()));
  cloud.set("cert_file", psa::json::Value::string(cert.cert.string()));
  cloud.set("key_file", psa::json::Value::string(cert.key.string()));
  cloud.set("max_inflight", psa::json::Value::integer(a.max_inflight));
  cfg.set("cloud", std::move(cloud));
  psa::test::AgentProcess agent(tmp / "state", cfg);
  if (!agent.start()) {
    std::printf("agent did not start:\n%s\n", agent.log().c_str());
    return 1;
  }
  const pid_t pid = agent.process()->pid();
  std::printf("e2e_bench: MLLP (%d connections x window %zu, 1 KiB ADT) -> pms-agent -> mosquitto "
              "(mutual TLS, QoS 1, max_inflight %d) -> pms-cloud-sim; %u cores\n",
              a.connections, a.window, a.max_inflight, std::thread::hardware_concurrency());
  // Connected: the link publishes its retained status as soon as it is up.
  if (!psa::test::waitFor([&] { return agent.log().find("link.connected") != std::string::npos; }, 30s)) {
    std::printf("agent did not connect to the broker:\n%s\n", agent.log().c_str());
    return 1;
  }

  // 1. idle
  std::this_thread::sleep_for(2s);
  {
    const double c0 = cpuSeconds(pid);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(5s);
    const double cpu_ms = 1000 * (cpuSeconds(pid) - c0);
    const double wall = secondsSince(t0);
    const long rss = statusKb(pid, "VmRSS:");
    std::printf("idle, connected:      RSS %.1f MB (anon %.1f, file %.1f); CPU %.0f ms in %.1f s\n",
                rss / 1024.0, statusKb(pid, "RssAnon:") / 1024.0, statusKb(pid, "RssFile:") / 1024.0,
                cpu_ms, wall);
    summary("e2e.rss_idle", rss / 1024.0, "MB");
    summary("e2e.rss_idle_anon", statusKb(pid, "RssAnon:") / 1024.0, "MB");
    summary("e2e.cpu_idle_connected", cpu_ms / wall / 10.0, "%");
  }
  const long rss_depth0 = statusKb(pid, "VmRSS:");
  const long anon_idle = statusKb(pid, "RssAnon:");

  // 2. sustained load
  uint64_t total_acked = 0;
  {
    long rss_peak = 0;
    std::vector<std::pair<double, size_t>> samples;  // (seconds since start, delivered)
    const size_t base = delivered.count();
    const auto t0 = Clock::now();
    const double c0 = cpuSeconds(pid);
    const auto threads0 = threadCpu(pid);
    const double broker0 = cpuSeconds(broker->pid());
    Load l = drive(static_cast<uint16_t>(port), a.connections, a.window, a.seconds, "E", [&] {
      rss_peak = std::max(rss_peak, statusKb(pid, "VmRSS:"));
      samples.emplace_back(secondsSince(t0), delivered.count() - base);
    });
    total_acked += l.acked;
    const double cpu_load = cpuSeconds(pid) - c0;
    const double broker_cpu = cpuSeconds(broker->pid()) - broker0;
    const auto threads1 = threadCpu(pid);
    // Wait for the tail to arrive.
    size_t got = 0;
    psa::test::waitFor([&] {
      rss_peak = std::max(rss_peak, statusKb(pid, "VmRSS:"));
      got = delivered.count() - base;
      return got >= l.acked;
    }, 120s);
    const double until_last = secondsSince(t0);
    // Steady part: from 1 s in to the end of the load.
    double steady = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (samples[i].first >= 1.0) {
        const auto& last = samples.back();
        if (last.first > samples[i].first) {
          steady = static_cast<double>(last.second - samples[i].second) / (last.first - samples[i].first);
        }
        break;
      }
    }
    const double ingest = static_cast<double>(l.acked) / l.seconds;
    const double e2e = static_cast<double>(got) / until_last;
    std::printf("sustained load %.0f s: ingest %.0f msg/s (%llu AA, %llu other, %llu errors); "
                "delivered while loading %.0f msg/s; end to end %.0f msg/s (%zu in %.2f s, last one "
                "%.2f s after the load stopped)\n",
                l.seconds, ingest, static_cast<unsigned long long>(l.acked),
                static_cast<unsigned long long>(l.other), static_cast<unsigned long long>(l.errors),
                steady, e2e, got, until_last, until_last - l.seconds);
    std::printf("    agent: peak RSS %.1f MB; CPU %.0f%% of one core while loading\n", rss_peak / 1024.0,
                100 * cpu_load / l.seconds);
    const double per = 1e6 / static_cast<double>(std::max<uint64_t>(1, l.acked));
    std::printf("    CPU per message while loading: broker %.1f us; agent threads:", broker_cpu * per);
    for (const auto& [name, cpu] : threads1) {
      const auto before = threads0.find(name);
      std::printf(" %s %.1f us", name.c_str(), (cpu - (before == threads0.end() ? 0 : before->second)) * per);
    }
    std::printf("\n");
    summary("e2e.ingest", ingest, "msg/s");
    summary("e2e.delivered_steady", steady, "msg/s");
    summary("e2e.throughput", e2e, "msg/s");
    summary("e2e.rss_load", rss_peak / 1024.0, "MB");
  }

  // 3. broker down
  long rss_depth_peak = 0;
  long anon_depth_peak = 0;
  uint64_t outage_acked = 0;
  {
    broker->stop();
    const size_t base = delivered.count();
    Load l = drive(static_cast<uint16_t>(port), a.connections, a.window, a.seconds, "D",
                   [&] {
                     rss_depth_peak = std::max(rss_depth_peak, statusKb(pid, "VmRSS:"));
                     anon_depth_peak = std::max(anon_depth_peak, statusKb(pid, "RssAnon:"));
                   });
    outage_acked = l.acked;
    total_acked += l.acked;
    std::printf("broker down, load %.0f s: ingest %.0f msg/s; queue depth now ~%llu; agent RSS %.1f "
                "MB (peak %.1f)\n",
                l.seconds, static_cast<double>(l.acked) / l.seconds,
                static_cast<unsigned long long>(l.acked - (delivered.count() - base)),
                statusKb(pid, "VmRSS:") / 1024.0, rss_depth_peak / 1024.0);
    std::this_thread::sleep_for(1s);
    const double c0 = cpuSeconds(pid);
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(10s);
    const double cpu_ms = 1000 * (cpuSeconds(pid) - c0);
    const double wall = secondsSince(t0);
    std::printf("broker down, no traffic: agent CPU %.0f ms in %.1f s (%.2f%% of one core)\n", cpu_ms,
                wall, cpu_ms / wall / 10.0);
    summary("e2e.cpu_broker_down", cpu_ms / wall / 10.0, "%");
  }

  // 4. broker back: the backlog drains.
  {
    const size_t base = delivered.count();
    const auto t_restart = Clock::now();
    broker->start();
    Clock::time_point first{};
    psa::test::waitFor([&] {
      rss_depth_peak = std::max(rss_depth_peak, statusKb(pid, "VmRSS:"));
      anon_depth_peak = std::max(anon_depth_peak, statusKb(pid, "RssAnon:"));
      const size_t n = delivered.count() - base;
      if (n > 0 && first == Clock::time_point{}) {
        first = Clock::now();
      }
      return n >= outage_acked;
    }, 600s);
    const size_t n = delivered.count() - base;
    const double drain_s = first == Clock::time_point{} ? 0 : secondsSince(first);
    std::printf("broker back: reconnect after %.1f s; backlog of %zu drained at %.0f msg/s; agent RSS "
                "peak %.1f MB at depth ~%llu vs %.1f MB at depth 0\n",
                first == Clock::time_point{} ? 0.0 : std::chrono::duration<double>(first - t_restart).count(),
                n, drain_s > 0 ? static_cast<double>(n) / drain_s : 0.0, rss_depth_peak / 1024.0,
                static_cast<unsigned long long>(outage_acked), rss_depth0 / 1024.0);
    summary("e2e.backlog_drain", drain_s > 0 ? static_cast<double>(n) / drain_s : 0.0, "msg/s");
    summary("e2e.rss_at_depth", rss_depth_peak / 1024.0, "MB");
    summary("e2e.rss_at_depth_anon", anon_depth_peak / 1024.0, "MB");
    std::printf("    of which anonymous (heap, stacks): %.1f MB at depth vs %.1f MB idle; the rest is "
                "file-backed (shared libraries, SQLite WAL index)\n",
                anon_depth_peak / 1024.0, anon_idle / 1024.0);
    summary("e2e.queue_depth", static_cast<double>(outage_acked), "records");
  }

  // Exactly once by msg-id, and nothing ACKed missing.
  std::this_thread::sleep_for(500ms);
  const auto all = psa::test::readSimOutput(sim.outFile());
  std::set<std::string> ids;
  size_t bad_sha = 0;
  for (const auto& m : all) {
    ids.insert(m.msg_id);
    bad_sha += m.sha256_ok ? 0 : 1;
  }
  std::printf("check: %llu ACKed AA, %zu unique msg-ids at the simulator, %zu duplicates, %zu sha256 "
              "mismatches\n",
              static_cast<unsigned long long>(total_acked), ids.size(), all.size() - ids.size(), bad_sha);
  agent.stop();
  return 0;
}
