#include "diagnostics.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/timex.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <optional>
#include <sstream>

#include "cli_support.h"
#include "psa/store/clock.h"

namespace psa::agent {
namespace {

using Level = CheckResult::Level;
namespace fs = std::filesystem;

std::string ownerName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string modeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// The build date (__DATE__, "Nov 26 2026") as Unix ms: a clock before it is certainly wrong.
int64_t buildDateMs() {
  static const char* months = "JanFebMarAprMayJunJulAugSepOctNovDec";
  const std::string d = __DATE__;
  std::tm tm{};
  const char* m = std::strstr(months, d.substr(0, 3).c_str());
  tm.tm_mon = m ? static_cast<int>((m - months) / 3) : 0;
  tm.tm_mday = std::atoi(d.substr(4, 2).c_str());
  tm.tm_year = std::atoi(d.substr(7, 4).c_str()) - 1900;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
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

CheckResult keyFileCheck(const Config& cfg, const store::QueueStats* stats, bool db_exists) {
  const fs::path& key = cfg.store.key_file;
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0) {
    const int err = errno;
    if (err == EACCES) {
      return {Level::warn, "key file",
              key.string() + ": cannot look at it as " + ownerName(::geteuid()) + " ▸ run as root"};
    }
    const uint64_t records = stats ? stats->pending + stats->dead : 0;
    if (db_exists && (records > 0 || (stats && stats->key_count > 0))) {
      return {Level::fail, "key file",
              key.string() + " is missing, but the queue database holds " + humanCount(records) +
                  " records ▸ restore the key file from backup (a new key cannot decrypt them)"};
    }
    return {Level::ok, "key file", key.string() + " not created yet (the agent creates it at first start)"};
  }
  if (!S_ISREG(st.st_mode)) {
    return {Level::fail, "key file", key.string() + " is not a regular file"};
  }
  if ((st.st_mode & 077) != 0) {
    return {Level::fail, "key file",
            key.string() + " mode " + modeText(st.st_mode) +
                ": other users can read the data key ▸ chmod 600 " + key.string() +
                " (the agent refuses to start until then)"};
  }
  struct stat dir {};
  if (::stat(cfg.state_dir.c_str(), &dir) == 0 && dir.st_uid != st.st_uid) {
    return {Level::warn, "key file",
            key.string() + " belongs to " + ownerName(st.st_uid) + " but the state dir to " +
                ownerName(dir.st_uid) + " ▸ chown " + ownerName(dir.st_uid) + " " + key.string()};
  }
  return {Level::ok, "key file", key.string() + " " + modeText(st.st_mode) + " " + ownerName(st.st_uid)};
}

CheckResult stateDirCheck(const Config& cfg) {
  const fs::path& dir = cfg.state_dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return {Level::warn, "state dir", dir.string() + " does not exist yet (the agent creates it at start)"};
    }
    return {Level::fail, "state dir", dir.string() + ": " + std::strerror(errno)};
  }
  if (!S_ISDIR(st.st_mode)) {
    return {Level::fail, "state dir", dir.string() + " is not a directory"};
  }
  const std::string desc = "(owner " + ownerName(st.st_uid) + ", mode " + modeText(st.st_mode) + ")";
  if (::geteuid() != 0 && ::geteuid() != st.st_uid) {
    return {Level::warn, "state dir",
            dir.string() + " " + desc + ": cannot test writing as " + ownerName(::geteuid()) +
                " ▸ run as root"};
  }
  const fs::path probe = dir / (".pms-agent-check-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return {Level::fail, "state dir",
            dir.string() + " is not writable: " + std::strerror(errno) +
                " ▸ read-only file system or wrong owner? chown -R pms-agent:pms-agent " + dir.string()};
  }
  const bool wrote = ::write(fd, "x", 1) == 1 && ::fsync(fd) == 0;
  ::close(fd);
  ::unlink(probe.c_str());
  if (!wrote) {
    return {Level::fail, "state dir", dir.string() + ": writing failed (" + std::strerror(errno) + ")"};
  }
  return {Level::ok, "state dir", dir.string() + " writable " + desc};
}

CheckResult diskCheck(const Config& cfg, const store::QueueStats* stats, const CheckOptions& o) {
  struct statvfs vfs {};
  const fs::path dir = fs::exists(cfg.state_dir) ? cfg.state_dir : cfg.state_dir.parent_path();
  if (::statvfs(dir.c_str(), &vfs) != 0) {
    return {Level::warn, "disk", "cannot measure free space of " + dir.string() + ": " + std::strerror(errno)};
  }
  const uint64_t total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  const uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
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
  return {Level::ok, "disk",
          head + "; the queue uses " + humanBytes(db) + " of its " + humanBytes(budget) + " budget"};
}

CheckResult queueCheck(const Config& cfg, const Result<store::SqliteStorePtr>& store,
                       const store::QueueStats* stats, const CheckOptions& o) {
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
  if (stats->dead > 0) {
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
                ", before this agent was built ▸ set the clock (timedatectl set-ntp true): TLS "
                "certificates cannot be checked with a wrong clock"};
  }
  timex tx{};
  const int state = ::adjtimex(&tx);
  if (state < 0) {
    return {Level::ok, "clock", formatRfc3339(now) + " (cannot query the kernel's NTP state)"};
  }
  if (state == TIME_ERROR || (tx.status & STA_UNSYNC) != 0) {
    return {Level::warn, "clock",
            formatRfc3339(now) +
                " not synchronised (the kernel reports no NTP sync) ▸ enable time sync: "
                "timedatectl set-ntp true (or check chrony/ntpd)"};
  }
  char est[64];
  std::snprintf(est, sizeof est, "synchronised (estimated error %.1f ms)",
                static_cast<double>(tx.esterror) / 1000.0);
  return {Level::ok, "clock", est};
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
           "not running (nothing answers on " + cfg.control_socket.string() +
               ") ▸ systemctl start pms-agent; journalctl -u pms-agent -n 50"});
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
  add(queueCheck(cfg, store, stats ? &*stats : nullptr, o));
  if (store) {
    (*store)->close();
  }
  add(clockCheck());

  // Cloud.
  if (!cfg.cloud.configured) {
    add({Level::warn, "cloud", "not configured: records queue locally ▸ add a \"cloud\" section"});
  } else {
    for (auto& c : checkClientCertificate(cfg.cloud, o.cert_warn_days)) {
      add(std::move(c));
    }
    BrokerProbeOptions bo;
    bo.timeout = o.timeout;
    bo.warn_days = o.cert_warn_days;
    if (running) {
      const json::Value* cloud = live.find("cloud");
      if (cloud != nullptr && cloud->getBool("connected")) {
        bo.skip_mqtt = true;
        bo.mqtt_skip_reason = "the running agent is connected (MQTT session authenticated)";
      }
    }
    for (auto& c : probeBroker(cfg.cloud, cfg.agent_id + "-check", bo)) {
      add(std::move(c));
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
      try {
        for (auto& c : factory->check(a, cfg.state_dir)) {
          if (c.name.empty()) {
            c.name = label;
          }
          add(std::move(c));
          checked = true;
        }
      } catch (const std::exception& e) {
        add({Level::fail, label, std::string("the check itself failed: ") + e.what()});
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
