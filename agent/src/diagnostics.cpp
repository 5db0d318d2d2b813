#include "diagnostics.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <optional>
#include <sstream>

#include "cli_support.h"
#include "host_checks.h"
#include "link_options.h"
#include "psa/cloudlink/broker_probe.h"
#include "psa/store/clock.h"
#include "psa/store/fatal.h"
#include "queue_budget.h"
#include "status_document.h"

namespace psa::agent {
namespace {

using Level = CheckResult::Level;
namespace fs = std::filesystem;

// The build date (__DATE__, "Nov 26 2026") as Unix ms: a clock before it is certainly wrong.
int64_t buildDateMs() {
  static const char* months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const std::string d = __DATE__;
  std::tm tm{};
  const char* m = std::strstr(months, d.substr(0, 3).c_str());
  tm.tm_mon = m ? static_cast<int>((m - months) / 3) : 0;
  tm.tm_mday = std::atoi(d.substr(4, 2).c_str());
  tm.tm_year = std::atoi(d.substr(7, 4).c_str()) - 1900;
  return unixFromUtcCalendar(tm) * 1000;
}

struct Worst {
  Level level = Level::ok;
  std::string text;
  void add(Level l, const std::string& t) {
    if (static_cast<int>(l) > static_cast<int>(level)) {
      level = l;
      text = t;
    } else if (l == level && l != Level::ok) {
      text += "; " + t;
    }
  }
};

// The queue object `status --json` shows: the running agent's (it saw the store's refusals),
// else one built from the files.
json::Value queueFigures(const store::QueueStats& stats, const json::Value* live_queue) {
  if (live_queue != nullptr && live_queue->isObject() && live_queue->find("budget")) {
    return *live_queue;
  }
  json::Value q = queueStatsJson(stats, Clock::system()->nowMs());
  q.set("budget", queueBudgetJson(stats.db_bytes, stats.max_bytes, nullptr));
  return q;
}

CheckResult diskCheck(const Config& cfg, const store::QueueStats* stats, const CheckOptions& o) {
  const fs::path dir = fs::exists(cfg.state_dir) ? cfg.state_dir : cfg.state_dir.parent_path();
  std::error_code ec;
  const fs::space_info space = fs::space(dir, ec);
  if (ec) {
    return {Level::warn, "disk",
            "cannot measure free space of " + dir.string() + ": " + ec.message()};
  }
  const uint64_t total = space.capacity;
  const uint64_t avail = space.available;
  const double used = total ? 100.0 * static_cast<double>(total - avail) / static_cast<double>(total) : 0;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%.0f%%", used);
  const std::string head = dir.string() + " " + pct + " used (" + humanBytes(avail) + " free)";
  const uint64_t db = stats ? stats->db_bytes : 0;
  const uint64_t budget = cfg.store.max_bytes;
  const bool budget_unreachable = budget > db && budget - db > avail;
  if (avail < o.min_free_bytes) {
    return {Level::fail, "disk",
            head + " ▸ free space now: when the disk is full the agent refuses new records "
                   "(sources are told to resend later)"};
  }
  if (used >= o.warn_used_percent || budget_unreachable) {
    return {Level::warn, "disk",
            head + (budget_unreachable ? " ▸ queue budget " + humanBytes(budget) +
                                             " cannot be reached; lower store.max_bytes or free space"
                                       : std::string(" ▸ free space"))};
  }
  if (db + budgetFullHeadroom(budget) >= budget ||
      100.0 * static_cast<double>(db) >= kBudgetWarnPercent * static_cast<double>(budget)) {
    // The disk is fine; the budget is not, and the queue line says so.
    return {Level::ok, "disk", head + "; the queue's budget: see the queue line"};
  }
  return {Level::ok, "disk",
          head + "; the queue uses " + humanBytes(db) + " of its " + humanBytes(budget) + " budget"};
}

CheckResult queueCheck(const Config& cfg, const Result<store::SqliteStorePtr>& store,
                       const store::QueueStats* stats, const CheckOptions& o,
                       const json::Value* live_queue, const json::Value* live_cloud) {
  if (!store) {
    if (store.error().is(Errc::not_found)) {
      return {Level::ok, "queue", "no database yet (the agent creates it at first start)"};
    }
    return {Level::fail, "queue", "cannot read the queue database: " + store.error().message};
  }
  if (stats == nullptr) {
    return {Level::fail, "queue", "cannot read the queue statistics"};
  }
  Worst w;
  const int64_t now = Clock::system()->nowMs();
  const double age = stats->oldest_pending_ms ? static_cast<double>(now - stats->oldest_pending_ms) / 1000.0 : 0;
  std::string summary = "pending " + humanCount(stats->pending) + ", dead " + humanCount(stats->dead);
  if (stats->oldest_pending_ms) {
    summary += ", oldest " + humanSeconds(age);
  }
  w.text = summary;
  std::error_code ec;
  const fs::path dir = cfg.store.db_path.parent_path();
  const std::string prefix = cfg.store.db_path.filename().string() + ".corrupt-";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.find("-wal") == std::string::npos &&
        name.find("-shm") == std::string::npos) {
      w.add(Level::warn, "found " + it->path().string() +
                             " (moved aside after corruption) ▸ pms-agent queue salvage " +
                             it->path().string());
    }
  }
  // The disk budget: full means the sources are being refused, the most urgent news there is.
  json::Value not_running = json::Value::object();
  not_running.set("configured", json::Value::boolean(cfg.cloud.configured));
  not_running.set("connected", json::Value::boolean(false));
  not_running.set("state", json::Value::string("not running"));
  const BudgetVerdict budget = judgeQueueBudget(
      queueFigures(*stats, live_queue), live_cloud != nullptr ? live_cloud : &not_running, now);
  if (budget.level == BudgetVerdict::Level::full) {
    // Alone on the line: the other findings (dead letters, age) are part of its fix.
    return {Level::fail, "queue", budget.text + " ▸ " + budget.fix};
  }
  if (budget.level == BudgetVerdict::Level::warn) {
    w.add(Level::warn, budget.text + " ▸ " + budget.fix);  // names the dead letters too
  } else if (stats->dead > 0) {
    w.add(Level::warn, summary + " ▸ pms-agent queue dead");
  }
  if (stats->oldest_pending_ms && age > o.oldest_pending_warn_s) {
    w.add(Level::warn, "the oldest record has waited " + humanSeconds(age) +
                           " ▸ see the CLOUD line of pms-agent status");
  }
  return {w.level, "queue", w.text};
}

CheckResult clockCheck() {
  const int64_t now = Clock::system()->nowMs();
  if (now < buildDateMs()) {
    return {Level::fail, "clock",
            "the time is " + formatRfc3339(now) +
                ", before this agent was built ▸ set the clock (" + timeSyncHint() +
                "): TLS certificates cannot be checked with a wrong clock"};
  }
  return timeSyncCheck(now);
}

}  // namespace

CheckReport runChecks(const fs::path& config_path, const CheckOptions& o) {
  CheckReport report;
  std::error_code abs_ec;
  const fs::path config_file = fs::absolute(config_path, abs_ec);
  auto add = [&report](CheckResult c) {
    if (c.level == Level::fail) {
      ++report.failures;
    } else if (c.level == Level::warn) {
      ++report.warnings;
    }
    report.results.push_back(std::move(c));
  };

  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = loadConfig(config_file, registry);
  if (!load.config) {
    std::string text;
    if (!load.issues.empty()) {
      const auto& first = load.issues.front();
      text = config_file.string() + ": " + std::to_string(load.issues.size()) + " problem" +
             (load.issues.size() == 1 ? "" : "s") + "; first at line " + std::to_string(first.line) +
             ": " + (first.path.empty() ? "" : first.path + ": ") + first.message;
    } else {
      text = load.fatal;
    }
    add({Level::fail, "config", text + " ▸ pms-agent config validate " + config_file.string()});
    return report;
  }
  const Config& cfg = *load.config;
  add({Level::ok, "config",
       config_file.string() + " valid (" + std::to_string(cfg.adapters.size()) + " adapter" +
           (cfg.adapters.size() == 1 ? "" : "s") + ")"});

  // The running agent.
  json::Value live;
  bool running = false;
  AgentReply reply = askAgent(cfg, "status", json::Value::object(), std::chrono::seconds(15));
  switch (reply.reach) {
    case AgentReach::answered:
      if (reply.response.ok) {
        running = true;
        live = std::move(reply.response.result);
        add({Level::ok, "agent",
             "running (pid " + std::to_string(live.getInt("pid")) + ", up " +
                 humanSeconds(static_cast<double>(live.getInt("uptime_s"))) + ")"});
      } else {
        add({Level::fail, "agent", "answered with an error: " + reply.response.error});
      }
      break;
    case AgentReach::not_running:
      add({Level::warn, "agent",
           "not running (nothing answers on " + cfg.control_socket.string() + ") ▸ " +
               startServiceHint()});
      break;
    case AgentReach::denied:
    case AgentReach::no_answer:
    case AgentReach::failed:
      add({Level::fail, "agent", reply.error});
      break;
  }

  // Files: key, state dir, disk, queue.
  auto store = openStoreReadOnly(cfg);
  std::optional<store::QueueStats> stats;
  if (store) {
    if (auto s = (*store)->stats(); s) {
      stats = *s;
    }
  }
  const bool db_exists = fs::exists(cfg.store.db_path);
  add(keyFileCheck(cfg, stats ? &*stats : nullptr, db_exists));
  add(stateDirCheck(cfg));
  add(diskCheck(cfg, stats ? &*stats : nullptr, o));
  add(queueCheck(cfg, store, stats ? &*stats : nullptr, o, running ? live.find("queue") : nullptr,
                 running ? live.find("cloud") : nullptr));
  if (store) {
    (*store)->close();
  }
  add(clockCheck());

  // Cloud.
  if (!cfg.cloud.configured) {
    add({Level::warn, "cloud", "not configured: records queue locally ▸ add a \"cloud\" section"});
  } else {
    // The link's own probe: the same URL parsing and TLS context as the running link.
    const cloudlink::CloudLinkOptions link = linkOptions(cfg);
    auto fromProbe = [](cloudlink::ProbeStep p) {
      const Level level = p.level == cloudlink::ProbeStep::Level::fail   ? Level::fail
                          : p.level == cloudlink::ProbeStep::Level::warn ? Level::warn
                                                                         : Level::ok;
      return CheckResult{level, std::move(p.name), std::move(p.text)};
    };
    add(fromProbe(cloudlink::checkClientCertificate(link, o.cert_warn_days)));
    cloudlink::ProbeOptions bo;
    bo.timeout = o.timeout;
    bo.warn_days = o.cert_warn_days;
    bo.client_id = cfg.agent_id + "-check";
    if (running) {
      const json::Value* cloud = live.find("cloud");
      if (cloud != nullptr && cloud->getBool("connected")) {
        bo.skip_mqtt = true;
        bo.mqtt_skip_reason = "the running agent is connected (MQTT session authenticated)";
      }
    }
    // Every endpoint of a cluster: the agent may fail over to any of them.
    const std::vector<std::string> urls = cloudlink::brokerUrls(link);
    for (const std::string& url : urls) {
      cloudlink::CloudLinkOptions one = link;
      one.url = url;
      one.urls.clear();
      for (auto& c : cloudlink::probeBroker(one, bo)) {
        if (urls.size() > 1) {
          c.text = url + ": " + c.text;
        }
        add(fromProbe(std::move(c)));
      }
    }
    if (running) {
      const json::Value* cloud = live.find("cloud");
      if (cloud != nullptr && !cloud->getBool("connected") && !cloud->getString("last_error").empty()) {
        add({Level::warn, "cloud link",
             "the running agent is not connected: " + cloud->getString("last_error")});
      }
    }
  }

  // Adapters.
  for (const auto& a : cfg.adapters) {
    const std::string name = a.getString("name");
    const std::string type = a.getString("type");
    const std::string label = "adapter " + name;
    if (!a.getBool("enabled", true)) {
      add({Level::ok, label, "disabled in the config"});
      continue;
    }
    const adapters::SourceFactory* factory = registry.find(type);
    bool checked = false;
    if (factory != nullptr && factory->check) {
      // Checks report problems as results; one that throws broke an invariant (fatal.h).
      auto results =
          guardInvariant("check.adapter", [&] { return factory->check(a, cfg.state_dir); });
      for (auto& c : results) {
        if (c.name.empty()) {
          c.name = label;
        }
        add(std::move(c));
        checked = true;
      }
    }
    if (!checked) {
      add({Level::ok, label, type + " configured (no reachability check for this type)"});
    }
    if (running) {
      if (const json::Value* list = live.find("adapters")) {
        for (const auto& s : list->items()) {
          if (s.getString("name") == name && !s.getBool("healthy", true)) {
            add({Level::fail, label,
                 "running adapter is " + s.getString("state") +
                     (s.getString("last_error").empty() ? "" : ": " + s.getString("last_error"))});
          }
        }
      }
    }
  }
  return report;
}

json::Value checkReportJson(const CheckReport& report) {
  json::Value list = json::Value::array();
  for (const auto& c : report.results) {
    json::Value v = json::Value::object();
    v.set("level", json::Value::string(c.level == Level::ok     ? "ok"
                                       : c.level == Level::warn ? "warn"
                                                                : "fail"));
    v.set("name", json::Value::string(c.name));
    v.set("text", json::Value::string(c.text));
    list.push(std::move(v));
  }
  json::Value r = json::Value::object();
  r.set("ok", json::Value::boolean(report.ok()));
  r.set("failures", json::Value::integer(static_cast<int64_t>(report.failures)));
  r.set("warnings", json::Value::integer(static_cast<int64_t>(report.warnings)));
  r.set("checks", std::move(list));
  return r;
}

std::string checkReportText(const CheckReport& report) {
  std::ostringstream out;
  for (const auto& c : report.results) {
    out << checkLine(c.level == Level::ok ? "OK" : c.level == Level::warn ? "WARN" : "FAIL", c.name,
                     c.text)
        << "\n";
  }
  return out.str();
}

}  // namespace psa::agent
