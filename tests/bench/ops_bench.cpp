// Operations benchmark: how long the technician's commands take on a large store. Prints
// figures, asserts nothing.
//
//   ops_bench [--records N] [--audit N] [--dir DIR]
//
// Builds a store with N queued records (default 200,000), 1,000 dead letters and M audit
// entries (default 500,000, about 40 days of one busy source), then times, each as the
// technician runs it (a fresh `pms-agent` process): with the agent down (read-only from the
// files) and with the agent running (over the control socket): status, queue stats,
// queue list, queue dead, audit verify, check (no cloud), bundle.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "agent_fixture.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace psa;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void fill(const std::filesystem::path& state, size_t records, size_t audits) {
  store::StoreOptions o;
  o.db_path = state / "queue.db";
  o.key_file = state / "queue.key";
  auto st = std::move(store::SqliteStore::open(o)).value();
  const auto t0 = Clock::now();
  std::string payload(1024, 'x');
  for (size_t done = 0; done < records;) {
    store::AppendBatch b;
    for (size_t i = 0; i < 2000 && done < records; ++i, ++done) {
      store::Record r;
      r.source = "cerner-adt";
      r.vendor = "cerner";
      r.kind = done % 2 ? store::Kind::appointment : store::Kind::patient;
      r.format = "hl7v2";
      r.payload = Sensitive<std::string>(payload);
      b.records.push_back(std::move(r));
    }
    if (done == records) {
      for (int i = 0; i < 1000; ++i) {
        store::DeadLetterInput d;
        d.record.source = "cerner-adt";
        d.record.vendor = "cerner";
        d.record.format = "hl7v2";
        d.record.payload = Sensitive<std::string>(payload);
        d.reason = "HL7 validation: PID-3 missing";
        b.dead.push_back(std::move(d));
      }
    }
    (void)st->appendSync(std::move(b));
  }
  // Audit entries are queued without waiting; they commit in large groups.
  std::vector<std::future<Status>> pending;
  for (size_t i = 0; i < audits; ++i) {
    store::AuditEntry e;
    e.actor = "cerner-adt";
    e.action = "records.accepted";
    e.detail = "{\"source\":\"cerner-adt\",\"count\":" + std::to_string(i % 500) + ",\"since_ms\":0}";
    auto p = std::make_shared<std::promise<Status>>();
    pending.push_back(p->get_future());
    st->audit(std::move(e), [p](Status s) { p->set_value(std::move(s)); });
    if (pending.size() >= 20000) {
      for (auto& f : pending) {
        (void)f.get();
      }
      pending.clear();
    }
  }
  for (auto& f : pending) {
    (void)f.get();
  }
  st->close();
  std::printf("fill: %zu records + 1000 dead + %zu audit entries in %.1f s\n", records, audits,
              msSince(t0) / 1000.0);
}

void timeCli(psa::test::AgentProcess& agent, const std::string& label,
             const std::vector<std::string>& args) {
  std::vector<double> runs;
  int rc = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    auto r = agent.cli(args, std::chrono::minutes(10));
    runs.push_back(msSince(t0));
    rc = r.exit_code;
  }
  std::sort(runs.begin(), runs.end());
  std::printf("  %-34s median %8.1f ms  (exit %d)\n", label.c_str(), runs[1], rc);
}

}  // namespace

int main(int argc, char** argv) {
  size_t records = 200'000;
  size_t audits = 500'000;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--records") && i + 1 < argc) {
      records = std::stoul(argv[++i]);
    } else if (!std::strcmp(argv[i], "--audit") && i + 1 < argc) {
      audits = std::stoul(argv[++i]);
    } else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc) {
      dir = argv[++i];
    } else {
      std::fprintf(stderr, "usage: ops_bench [--records N] [--audit N] [--dir DIR]\n");
      return 2;
    }
  }
  log::setLevel(log::Level::warn);
  psa::test::TempDir tmp("psa-ops-bench");
  const std::filesystem::path state = dir.empty() ? tmp / "state" : std::filesystem::path(dir);
  std::filesystem::create_directories(state);
  fill(state, records, audits);
  psa::test::AgentProcess agent(
      state, *json::parse(R"({"agent":{"id":"bench-0001","tenant":"bench","log_level":"info"}})"));
  psa::test::writeFile(agent.configFile(), json::serialize(agent.config(), true));
  const std::string bundle = (tmp / "bundle.tar.gz").string();
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"status", {"status"}},
      {"queue stats", {"queue", "stats"}},
      {"queue list (100)", {"queue", "list"}},
      {"queue dead (100)", {"queue", "dead"}},
      {"audit verify", {"audit", "verify"}},
      {"check (no cloud)", {"check"}},
      {"bundle", {"bundle", "--out", bundle, "--no-journal"}},
  };
  std::printf("agent down (read-only from the files):\n");
  for (const auto& [label, args] : commands) {
    timeCli(agent, label, args);
  }
  if (!agent.start(std::chrono::minutes(5))) {
    std::fprintf(stderr, "agent did not start\n%s\n", agent.log().c_str());
    return 1;
  }
  std::printf("agent running (over the control socket):\n");
  for (const auto& [label, args] : commands) {
    timeCli(agent, label, args);
  }
  std::error_code ec;
  std::printf("bundle size: %ju bytes\n", static_cast<uintmax_t>(std::filesystem::file_size(bundle, ec)));
  agent.stop();
  return 0;
}
