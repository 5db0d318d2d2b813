// The local HTTP endpoint's cost: the agent's resident memory idle without and with an `http`
// section, and what one scrape of /metrics, /status.json and the page costs (latency seen by
// the client, the agent's CPU per request, body size). Prints figures, asserts nothing.
//
//   http_bench [--records N] [--dead N] [--scrapes N] [--summary]
//
// The queue holds N pending records (default 0) and N dead letters (default 0) of 1 KiB, so
// the cost can be compared across queue depths. Each request is a fresh connection
// (Connection: close), as a scraper without keep-alive does; one at a time.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent_fixture.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "test_store.h"
#include "test_support.h"

namespace {

using namespace psa;
using SteadyClock = std::chrono::steady_clock;

// VmRSS of `pid` in bytes.
double rssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stod(line.substr(6)) * 1024;
    }
  }
  return 0;
}

// User + system CPU seconds of `pid`.
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14 || i == 15) {
      ticks += std::stod(f);
    }
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// One GET over a fresh connection; the whole response (headers and body), or "" on failure.
std::string get(int port, const std::string& target) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + target +
                            " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                            "\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}

void fill(const std::filesystem::path& state, size_t records, size_t dead) {
  test::TestStore store(state);
  const std::string payload(1024, 'x');
  std::vector<store::Record> batch;
  for (size_t i = 0; i < records; ++i) {
    store::Record r;
    r.source = "cerner-adt";
    r.vendor = "cerner";
    r.kind = i % 2 ? store::Kind::appointment : store::Kind::patient;
    r.format = "hl7v2";
    r.payload = Sensitive<std::string>(payload);
    batch.push_back(std::move(r));
  }
  store.append(std::move(batch));
  for (size_t done = 0; done < dead;) {
    store::AppendBatch b;
    for (; done < dead && b.dead.size() < 2000; ++done) {
      store::DeadLetterInput d;
      d.record.source = "cerner-adt";
      d.record.vendor = "cerner";
      d.record.format = "hl7v2";
      d.record.payload = Sensitive<std::string>(payload);
      d.reason = done % 3 ? "HL7 validation: PID-3 missing" : "puback 0x97 quota exceeded";
      b.dead.push_back(std::move(d));
    }
    (void)store.store().appendSync(std::move(b));
  }
}

json::Value agentConfig(int mllp_port, int http_port) {
  json::Value cfg = *json::parse(
      R"({"agent":{"id":"bench-0001","tenant":"bench","log_level":"info"},"adapters":[]})");
  json::Value adapter =
      *json::parse(R"({"name":"cerner-adt","type":"hl7-mllp","vendor":"cerner"})");
  adapter.set("listen", json::Value::string("127.0.0.1:" + std::to_string(mllp_port)));
  cfg.find("adapters")->push(std::move(adapter));
  if (http_port != 0) {
    cfg.set("http",
            json::Value::object(
                {{"listen", json::Value::string("127.0.0.1:" + std::to_string(http_port))}}));
  }
  return cfg;
}

// Resident memory once the agent has settled (the first seconds allocate lazily).
double settledRss(pid_t pid) {
  std::this_thread::sleep_for(std::chrono::seconds(3));
  return rssBytes(pid);
}

struct ScrapeFigures {
  double p50_ms = 0;
  double p99_ms = 0;
  double cpu_ms = 0;  ///< the agent's CPU per request
  size_t bytes = 0;
  size_t failed = 0;
};

ScrapeFigures scrape(pid_t pid, int port, const std::string& target, size_t n) {
  ScrapeFigures f;
  std::vector<double> ms;
  const double cpu0 = cpuSeconds(pid);
  for (size_t i = 0; i < n; ++i) {
    const auto t0 = SteadyClock::now();
    const std::string reply = get(port, target);
    ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
    if (reply.rfind("HTTP/1.1 200", 0) != 0) {
      ++f.failed;
    }
    f.bytes = reply.size() - std::min(reply.size(), reply.find("\r\n\r\n") + 4);
  }
  f.cpu_ms = (cpuSeconds(pid) - cpu0) * 1000.0 / static_cast<double>(n);
  std::sort(ms.begin(), ms.end());
  f.p50_ms = ms[ms.size() / 2];
  f.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  size_t records = 0;
  size_t dead = 0;
  size_t scrapes = 200;
  bool summary = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--records" && i + 1 < argc) {
      records = std::stoul(argv[++i]);
    } else if (a == "--dead" && i + 1 < argc) {
      dead = std::stoul(argv[++i]);
    } else if (a == "--scrapes" && i + 1 < argc) {
      scrapes = std::max<size_t>(10, std::stoul(argv[++i]));
    } else if (a == "--summary") {
      summary = true;
    } else {
      std::fprintf(stderr,
                   "usage: http_bench [--records N] [--dead N] [--scrapes N] [--summary]\n");
      return 2;
    }
  }
  log::setLevel(log::Level::warn);
  test::TempDir tmp("psa-http-bench");
  const std::filesystem::path state = tmp / "state";
  std::filesystem::create_directories(state);
  fill(state, records, dead);
  std::printf("queue: %zu pending, %zu dead letters (1 KiB each)\n", records, dead);

  double rss_off = 0;
  {
    test::AgentProcess agent(state, agentConfig(test::freePort(), 0));
    if (!agent.start(std::chrono::minutes(2))) {
      std::fprintf(stderr, "agent did not start\n%s\n", agent.log().c_str());
      return 1;
    }
    rss_off = settledRss(agent.process()->pid());
    agent.stop();
  }
  const int http_port = test::freePort();
  test::AgentProcess agent(state, agentConfig(test::freePort(), http_port));
  if (!agent.start(std::chrono::minutes(2))) {
    std::fprintf(stderr, "agent did not start\n%s\n", agent.log().c_str());
    return 1;
  }
  const pid_t pid = agent.process()->pid();
  const double rss_on = settledRss(pid);
  std::printf("RSS idle: %.1f MB without http, %.1f MB with http (+%.2f MB)\n", rss_off / 1e6,
              rss_on / 1e6, (rss_on - rss_off) / 1e6);

  struct Route {
    const char* target;
    const char* figure;
    size_t n;
  };
  const std::vector<Route> routes = {{"/metrics", "metrics", scrapes},
                                     {"/status.json", "status_json", scrapes},
                                     {"/", "page", std::max<size_t>(10, scrapes / 4)}};
  std::printf("%-14s %8s %8s %10s %9s %7s\n", "GET", "p50 ms", "p99 ms", "cpu ms/req", "bytes",
              "failed");
  std::vector<std::pair<std::string, ScrapeFigures>> results;
  for (const Route& r : routes) {
    (void)get(http_port, r.target);  // warm: the first page load runs `check` in the background
    const ScrapeFigures f = scrape(pid, http_port, r.target, r.n);
    std::printf("%-14s %8.2f %8.2f %10.2f %9zu %7zu\n", r.target, f.p50_ms, f.p99_ms, f.cpu_ms,
                f.bytes, f.failed);
    results.emplace_back(r.figure, f);
  }
  const double rss_after = rssBytes(pid);
  std::printf("RSS after the scrapes: %.1f MB\n", rss_after / 1e6);
  agent.stop();
  if (summary) {
    std::printf("http.rss_idle_off\t%.0f\tbytes\n", rss_off);
    std::printf("http.rss_idle_on\t%.0f\tbytes\n", rss_on);
    std::printf("http.rss_after_scrapes\t%.0f\tbytes\n", rss_after);
    for (const auto& [figure, f] : results) {
      std::printf("http.%s_p50\t%.3f\tms\n", figure.c_str(), f.p50_ms);
      std::printf("http.%s_cpu\t%.3f\tms\n", figure.c_str(), f.cpu_ms);
    }
  }
  return 0;
}
