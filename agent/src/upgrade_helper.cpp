#include "upgrade_helper.h"

#include <ostream>
#include <thread>

#include "cli_support.h"
#include "package_facts.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/os/durable_file.h"
#include "upgrade_args.h"
#include "upgrade_files.h"
#include "upgrade_system.h"

namespace psa::agent::upgrade {
namespace fs = std::filesystem;

namespace {

// Phases of an attempt, in journal.json. Each names the next step to take.
constexpr const char* kInstall = "install";          // stop, install the new package, start
constexpr const char* kCheck = "check";              // health check of the new version
constexpr const char* kRollback = "rollback";        // stop, install the previous, start
constexpr const char* kRollbackCheck = "rollback_check";

struct Journal {
  std::string action;  ///< "install" or "rollback"
  std::string id;      ///< the command id ("" for a local rollback)
  std::string target;  ///< the version being installed
  std::string previous;
  std::string package;           ///< the new package, in packages/
  std::string previous_package;  ///< the way back, in packages/
  std::string phase;
  std::string reason;  ///< why it is rolling back
  std::string error;
  int64_t started_ms = 0;
};

json::Value str(const std::string& s) { return json::Value::string(s); }

json::Value toJson(const Journal& j) {
  json::Value d = json::Value::object();
  d.set("action", str(j.action));
  d.set("id", str(j.id));
  d.set("target", str(j.target));
  d.set("previous", str(j.previous));
  d.set("package", str(j.package));
  d.set("previous_package", str(j.previous_package));
  d.set("phase", str(j.phase));
  d.set("reason", str(j.reason));
  d.set("error", str(j.error));
  d.set("started_ms", json::Value::integer(j.started_ms));
  return d;
}

Journal journalFromJson(const json::Value& d) {
  Journal j;
  j.action = d.getString("action");
  j.id = d.getString("id");
  j.target = d.getString("target");
  j.previous = d.getString("previous");
  j.package = d.getString("package");
  j.previous_package = d.getString("previous_package");
  j.phase = d.getString("phase");
  j.reason = d.getString("reason");
  j.error = d.getString("error");
  j.started_ms = d.getInt("started_ms");
  return j;
}

class Helper {
 public:
  Helper(const HelperOptions& o, std::ostream& log)
      : o_(o),
        cfg_(*o.config),
        log_(log),
        paths_(Paths::under(cfg_.state_dir)),
        journal_file_(o.helper_dir / "journal.json"),
        packages_(o.helper_dir / "packages") {}

  int run();

 private:
  int claim();
  int refuse(const std::string& id, const std::string& version, const Refusal& refusal);
  int step(Journal& j);
  int finish(Journal& j, const char* stage, const std::string& reason, const std::string& error);
  bool save(const Journal& j);
  /// Waits for `version` to be healthy; "" when it is, else what was missing.
  std::string waitHealthy(const std::string& version);
  std::string healthProblem(const json::Value& status, const std::string& version) const;
  void event(const std::string& id, const char* stage, const std::string& version,
             const std::string& previous, const std::string& reason, const std::string& error);
  void writeStatus(const Journal& j, const char* stage, const std::string& reason,
                   const std::string& error);
  Status installAndStart(const std::string& package);
  fs::path packageFile(const std::string& version) const {
    return packages_ / ("pms-agent_" + version + packageSuffix());
  }
  void say(const std::string& line) { log_ << "pms-agent upgrade: " << line << "\n" << std::flush; }

  const HelperOptions& o_;
  const Config& cfg_;
  std::ostream& log_;
  Paths paths_;
  fs::path journal_file_;
  fs::path packages_;
};

int Helper::run() {
  if (auto doc = readJsonObject(journal_file_)) {
    Journal j = journalFromJson(*doc);
    say("resuming the " + j.action + " of " + j.target + " at step " + j.phase);
    return step(j);
  }
  return claim();
}

int Helper::claim() {
  const auto doc = readJsonObject(paths_.request);
  if (!doc) {
    say("no upgrade request in " + paths_.request.string() + ": nothing to do");
    return 0;
  }
  auto request = requestFromJson(*doc);
  if (!request) {
    return refuse("", "", Refusal{"bad_request", request.error().message});
  }
  std::error_code ec;
  fs::create_directories(packages_, ec);
  // The version installed now: the way back, and what a downgrade is measured against. It is
  // refused only once the command is verified, so the refusal carries the command's id.
  auto installed = installedVersion();
  const bool has_installed = installed && !installed->empty();
  const Refusal not_installed{"not_installed", installed ? "the pms-agent package is not installed"
                                                         : installed.error().message};
  Journal j;
  j.started_ms = Clock::system()->nowMs();
  if (request->action == "rollback") {
    if (!has_installed) {
      return refuse("", "", not_installed);
    }
    const auto status = readJsonObject(paths_.status).value_or(json::Value::object());
    const std::string previous = status.getString("previous");
    if (previous.empty() || !fs::exists(packageFile(previous), ec)) {
      return refuse("", "", Refusal{"no_previous", "there is no previous version to go back to"});
    }
    j.action = "rollback";
    j.target = *installed;
    j.previous = previous;
    j.previous_package = packageFile(previous).filename().string();
    j.phase = kRollback;
    j.reason = "requested";
    j.error = "rollback requested on site by " + request->requested_by;
  } else {
    // Everything the agent wrote is checked again: this process has rights the agent has not.
    auto keys = SigningKeys::load(cfg_.cloud.config_signing_keys);
    auto release = SigningKeys::load(cfg_.cloud.release_keys);
    if (!keys || !release) {
      return refuse("", "", Refusal{"bad_signature", "the config's keys cannot be loaded"});
    }
    const int64_t now = Clock::system()->nowMs();
    auto opened = openCommandDocument(request->command, *keys, cfg_.agent_id, "upgrade", now);
    const bool only_expired = opened.rejection && opened.rejection->reason == RejectReason::expired;
    if (!opened.authentic || (opened.rejection && !only_expired) ||
        opened.doc.command != "upgrade") {
      return refuse(opened.doc.id, "",
                    Refusal{"bad_signature", "the upgrade command does not verify: " +
                                                 (opened.rejection ? opened.rejection->message
                                                                   : std::string("not upgrade"))});
    }
    const CommandDocument& cmd = opened.doc;
    auto parsed = parseArgs(cmd.args, cmd.issued_at_ms);
    if (auto* r = std::get_if<Rejection>(&parsed)) {
      return refuse(cmd.id, "", Refusal{"bad_args", r->message});
    }
    const Args& args = std::get<Args>(parsed);
    if (!has_installed) {
      return refuse(cmd.id, args.version, not_installed);
    }
    j.previous = *installed;
    if (now > args.deadline_ms) {
      return refuse(cmd.id, args.version,
                    Refusal{std::string(kExpired), "the upgrade's deadline has passed"});
    }
    if (compareVersions(args.version, *installed) < 0 && !args.allow_downgrade) {
      return refuse(cmd.id, args.version,
                    Refusal{std::string(kDowngrade),
                            args.version + " is older than the installed " + *installed});
    }
    const auto bytes = readFile(paths_.staged / request->package);
    if (!bytes) {
      return refuse(cmd.id, args.version,
                    Refusal{std::string(kSha256Mismatch), "the staged package is missing"});
    }
    if (auto r = verifyPackage(*bytes, args, *release, *keys)) {
      return refuse(cmd.id, args.version, *r);
    }
    const fs::path copy = packageFile(args.version);
    if (Status st = os::writeFileDurably(copy, *bytes, os::FileAccess::owner_only); !st) {
      return refuse(cmd.id, args.version, Refusal{"failed", st.error().message});
    }
    if (auto r = checkPackage(readPackageFacts(copy), args)) {
      fs::remove(copy, ec);
      return refuse(cmd.id, args.version, *r);
    }
    // Never install without a way back: the running version's package is kept (repacked from
    // the installed files when the site was installed by hand).
    const fs::path back = packageFile(*installed);
    if (!fs::exists(back, ec)) {
      say("keeping a copy of the installed " + *installed + " for rollback");
      if (Status st = savePackageOfInstalled(back); !st) {
        return refuse(cmd.id, args.version,
                      Refusal{"no_rollback", "cannot keep the installed version for a rollback: " +
                                                 st.error().message});
      }
    }
    j.action = "install";
    j.id = cmd.id;
    j.target = args.version;
    j.package = copy.filename().string();
    j.previous_package = back.filename().string();
    j.phase = kInstall;
  }
  if (Status st = copyRunningProgram(o_.helper_dir / "pms-agent-helper"); !st) {
    say("warning: " + st.error().message + " (a restarted helper runs the installed binary)");
  }
  if (!save(j)) {
    return refuse(j.id, j.target, Refusal{"failed", "cannot write the journal"});
  }
  return step(j);
}

int Helper::refuse(const std::string& id, const std::string& version, const Refusal& refusal) {
  say("refused (" + refusal.reason + "): " + refusal.message);
  event(id, kStageRejected, version, "", refusal.reason, refusal.message);
  Journal j;
  j.id = id;
  j.target = version;
  writeStatus(j, kStageRejected, refusal.reason, refusal.message);
  std::error_code ec;
  fs::remove_all(paths_.staged, ec);
  fs::remove(paths_.request, ec);
  return 0;
}

Status Helper::installAndStart(const std::string& package) {
  // The agent stops accepting for as short a time as the package manager needs: its graceful
  // stop commits or refuses every message in flight (never an ACK for an uncommitted one).
  if (Status st = stopAgentService(); !st) {
    say("warning: " + st.error().message);
  }
  if (Status st = installPackage(packages_ / package); !st) {
    // Whatever is installed now is better than nothing running; the caller rolls back.
    if (Status started = startAgentService(); !started) {
      say("warning: " + started.error().message);
    }
    return st;
  }
  return startAgentService();
}

int Helper::step(Journal& j) {
  for (;;) {
    if (j.phase == kInstall) {
      say("installing " + j.target + " (previous: " + j.previous + ")");
      if (Status st = installAndStart(j.package); !st) {
        j.phase = kRollback;
        j.reason = "install_failed";
        j.error = st.error().message;
      } else {
        j.phase = kCheck;
        event(j.id, kStageHealthCheck, j.target, j.previous, "", "");
      }
      save(j);
    } else if (j.phase == kCheck) {
      const std::string problem = waitHealthy(j.target);
      if (problem.empty()) {
        return finish(j, kStageUpgraded, "", "");
      }
      j.phase = kRollback;
      j.reason = "health_check";
      j.error = problem;
      save(j);
    } else if (j.phase == kRollback) {
      say("rolling back to " + j.previous + " (" + j.reason + ": " + j.error + ")");
      if (Status st = installAndStart(j.previous_package); !st) {
        return finish(j, kStageFailed, "rollback_failed", st.error().message);
      }
      j.phase = kRollbackCheck;
      save(j);
    } else if (j.phase == kRollbackCheck) {
      const std::string problem = waitHealthy(j.previous);
      if (!problem.empty()) {
        return finish(j, kStageFailed, "rollback_unhealthy", problem);
      }
      return finish(j, kStageRolledBack, j.reason, j.error);
    } else {
      return finish(j, kStageFailed, "bad_journal", "unknown step \"" + j.phase + "\"");
    }
  }
}

int Helper::finish(Journal& j, const char* stage, const std::string& reason,
                   const std::string& error) {
  say(std::string(stage) + (reason.empty() ? "" : " (" + reason + ": " + error + ")"));
  if (j.action == "rollback" && std::string(stage) == kStageRolledBack) {
    event(j.id, stage, j.previous, j.target, reason, error);
  } else {
    event(j.id, stage, j.target, j.previous, reason, error);
  }
  writeStatus(j, stage, reason, error);
  // Keep the packages of the versions status.json now names (current, and previous: the way
  // back); nothing else.
  const json::Value status = readJsonObject(paths_.status).value_or(json::Value::object());
  const fs::path keep_current = packageFile(status.getString("current"));
  const fs::path keep_previous = packageFile(status.getString("previous"));
  std::error_code ec;
  for (fs::directory_iterator it(packages_, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (p != keep_current && p != keep_previous) {
      std::error_code ec2;
      fs::remove_all(p, ec2);
    }
  }
  fs::remove_all(paths_.staged, ec);
  fs::remove(o_.helper_dir / "pms-agent-helper", ec);
  fs::remove(journal_file_, ec);
  // Last: the request's existence is what starts this helper again.
  fs::remove(paths_.request, ec);
  return std::string(stage) == kStageFailed ? 1 : 0;
}

bool Helper::save(const Journal& j) {
  Status st = os::writeFileDurably(journal_file_, json::serialize(toJson(j)),
                                   os::FileAccess::owner_only);
  if (!st) {
    say("cannot write the journal: " + st.error().message);
  }
  return bool(st);
}

std::string Helper::healthProblem(const json::Value& s, const std::string& version) const {
  if (s.getString("version") != version) {
    return "version " + s.getString("version") + " is running, not " + version;
  }
  if (const json::Value* list = s.find("adapters")) {
    for (const auto& a : list->items()) {
      if (a.getString("state") != "disabled" && !a.getBool("healthy", true)) {
        return "adapter " + a.getString("name") + " is " + a.getString("state");
      }
    }
  }
  if (cfg_.cloud.configured) {
    const json::Value* c = s.find("cloud");
    if (c == nullptr || !c->getBool("connected", false)) {
      return "not connected to the cloud";
    }
    if (c->getInt("status_published") < 1) {
      return "its status has not reached the cloud";
    }
  }
  return {};
}

std::string Helper::waitHealthy(const std::string& version) {
  using SteadyClock = std::chrono::steady_clock;
  const auto deadline = SteadyClock::now() + o_.health_timeout;
  std::string problem = "not answering on its control socket";
  int64_t healthy_pid = 0;
  SteadyClock::time_point healthy_since{};
  while (SteadyClock::now() < deadline) {
    const AgentReply reply = askAgent(cfg_, "status", json::Value::object(), std::chrono::seconds(5));
    if (reply.reach == AgentReach::answered && reply.response.ok) {
      problem = healthProblem(reply.response.result, version);
      const int64_t pid = reply.response.result.getInt("pid");
      if (problem.empty()) {
        // Healthy must hold for the settle time in one process: a restart starts over.
        if (pid != healthy_pid) {
          healthy_pid = pid;
          healthy_since = SteadyClock::now();
        }
        if (SteadyClock::now() - healthy_since >= o_.health_settle) {
          return {};
        }
      } else {
        healthy_pid = 0;
      }
    } else {
      healthy_pid = 0;
      problem = reply.reach == AgentReach::answered ? reply.response.error
                                                    : "not answering: " + reply.error;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return problem + " (after " + std::to_string(o_.health_timeout.count()) + " s)";
}

void Helper::event(const std::string& id, const char* stage, const std::string& version,
                   const std::string& previous, const std::string& reason,
                   const std::string& error) {
  Event e;
  e.id = id;
  e.stage = stage;
  e.version = version;
  e.previous = previous;
  e.reason = reason;
  e.error = error.substr(0, 1000);
  e.at_ms = Clock::system()->nowMs();
  if (Status st = appendEvent(paths_.events, e); !st) {
    say("cannot leave the event for the agent: " + st.error().message);
  }
}

void Helper::writeStatus(const Journal& j, const char* stage, const std::string& reason,
                         const std::string& error) {
  json::Value s = readJsonObject(paths_.status).value_or(json::Value::object());
  const std::string st(stage);
  if (st == kStageUpgraded) {
    s.set("current", str(j.target));
    if (j.target != j.previous) {  // a reinstall of the same version keeps the way back
      s.set("previous", str(j.previous));
    }
  } else if (st == kStageRolledBack) {
    s.set("current", str(j.previous));
    if (j.action == "rollback") {
      s.set("previous", str(""));  // its package is not kept: there is no way forward again
    }
  }
  json::Value last = json::Value::object();
  last.set("id", str(j.id));
  last.set("action", str(j.action.empty() ? "install" : j.action));
  last.set("version", str(j.target));
  last.set("outcome", str(st));
  last.set("reason", str(reason));
  last.set("error", str(error.substr(0, 1000)));
  last.set("at", str(formatRfc3339(Clock::system()->nowMs())));
  s.set("last_attempt", std::move(last));
  std::error_code ec;
  fs::create_directories(paths_.dir, ec);
  if (Status w = os::writeFileDurably(paths_.status, json::serialize(s), os::FileAccess::normal);
      !w) {
    say("cannot write " + paths_.status.string() + ": " + w.error().message);
  }
}

}  // namespace

int runHelper(const HelperOptions& options, std::ostream& log) {
  if (!upgradeSupported()) {
    log << "pms-agent upgrade: self-upgrade is not available on this system\n";
    return 1;
  }
  std::error_code ec;
  fs::create_directories(options.helper_dir, ec);
  Helper helper(options, log);
  return helper.run();
}

}  // namespace psa::agent::upgrade
