// `pms-agent upgrade status | rollback | apply` (README "Self-upgrade"):
//   status    current and previous version, a download or hand-off in progress, the last
//             attempt and its outcome (from <state_dir>/upgrade; works with the agent down)
//   rollback  asks the upgrade helper to reinstall the previous version (local; the helper's
//             outcome is reported to the cloud and audited by the agent as it publishes it)
//   apply     the upgrade helper itself, as pms-agent-upgrade.service runs it
#include <cstdlib>
#include <iostream>

#include "build_info.h"
#include "cli_support.h"
#include "command.h"
#include "psa/store/clock.h"
#include "psa/store/os/durable_file.h"
#include "upgrade_files.h"
#include "upgrade_helper.h"
#include "upgrade_system.h"

namespace psa::agent {
namespace {

namespace fs = std::filesystem;

// The helper's own state: systemd's StateDirectory= sets $STATE_DIRECTORY.
fs::path helperStateDir() {
  if (const char* dir = std::getenv("STATE_DIRECTORY"); dir != nullptr && *dir != '\0') {
    return fs::path(dir);
  }
  return fs::path("/var/lib/pms-agent-upgrade");
}

json::Value statusDoc(const Config& cfg) {
  const upgrade::Paths paths = upgrade::Paths::under(cfg.state_dir);
  json::Value doc = upgrade::readJsonObject(paths.status).value_or(json::Value::object());
  doc.set("running", json::Value::string(kAgentVersion));
  if (doc.find("current") == nullptr) {
    doc.set("current", json::Value::string(kAgentVersion));
  }
  std::error_code ec;
  doc.set("install_in_progress", json::Value::boolean(fs::exists(paths.request, ec)));
  if (auto manifest = upgrade::readJsonObject(paths.download / "manifest.json")) {
    json::Value d = json::Value::object();
    const json::Value* args = manifest->find("args");
    d.set("version", json::Value::string(args != nullptr ? args->getString("version") : ""));
    d.set("command_id", json::Value::string(manifest->getString("command_id")));
    doc.set("download", std::move(d));
  }
  return doc;
}

int runStatus(const po::variables_map& vm, CommandContext& ctx) {
  auto cli = loadCliConfig(ctx, "upgrade status");
  if (!cli) {
    return kExitFailure;
  }
  const json::Value doc = statusDoc(*cli->config);
  if (vm.count("json") != 0) {
    ctx.out << json::serialize(doc, true) << "\n";
    return kExitOk;
  }
  auto orNone = [](const std::string& s) { return s.empty() ? std::string("(none)") : s; };
  ctx.out << "running   " << doc.getString("running") << "\n"
          << "current   " << doc.getString("current") << "\n"
          << "previous  " << orNone(doc.getString("previous")) << "\n";
  if (const json::Value* d = doc.find("download")) {
    ctx.out << "download  " << d->getString("version") << " in progress\n";
  }
  if (doc.getBool("install_in_progress")) {
    ctx.out << "install   in progress (the upgrade helper is working)\n";
  }
  if (const json::Value* last = doc.find("last_attempt")) {
    ctx.out << "last      " << last->getString("action") << " " << last->getString("version")
            << ": " << last->getString("outcome");
    if (!last->getString("reason").empty()) {
      ctx.out << " (" << last->getString("reason") << ": " << last->getString("error") << ")";
    }
    ctx.out << " at " << last->getString("at") << "\n";
  } else {
    ctx.out << "last      (no upgrade attempted yet)\n";
  }
  return kExitOk;
}

int runRollback(const po::variables_map&, CommandContext& ctx) {
  auto cli = loadCliConfig(ctx, "upgrade rollback");
  if (!cli) {
    return kExitFailure;
  }
  const Config& cfg = *cli->config;
  const upgrade::Paths paths = upgrade::Paths::under(cfg.state_dir);
  const json::Value doc = statusDoc(cfg);
  if (doc.getString("previous").empty()) {
    ctx.err << "pms-agent upgrade rollback: there is no previous version to go back to (no "
               "upgrade has been installed by the agent)\n";
    return kExitFailure;
  }
  std::error_code ec;
  if (fs::exists(paths.request, ec)) {
    ctx.err << "pms-agent upgrade rollback: an upgrade is in progress; wait for its outcome "
               "(`pms-agent upgrade status`)\n";
    return kExitFailure;
  }
  upgrade::Request request;
  request.action = "rollback";
  request.requested_by = upgrade::localActor();
  request.at_ms = Clock::system()->nowMs();
  fs::create_directories(paths.dir, ec);
  if (Status st = os::writeFileDurably(paths.request, json::serialize(upgrade::toJson(request)),
                                       os::FileAccess::normal);
      !st) {
    ctx.err << "pms-agent upgrade rollback: " << st.error().message << "\n";
    return kExitFailure;
  }
  ctx.out << "rollback to " << doc.getString("previous")
          << " requested: the upgrade helper reinstalls it and checks its health; follow it with "
             "`pms-agent upgrade status`\n";
  return kExitOk;
}

int runApply(const po::variables_map&, CommandContext& ctx) {
  auto cli = loadCliConfig(ctx, "upgrade apply");
  if (!cli) {
    return kExitFailure;
  }
  upgrade::HelperOptions o;
  o.config = cli->config;
  o.helper_dir = helperStateDir();
  o.health_timeout = std::chrono::seconds(cli->config->cloud.upgrade_health_timeout_s);
  o.health_settle = std::chrono::seconds(cli->config->cloud.upgrade_health_settle_s);
  return upgrade::runHelper(o, ctx.out);
}

}  // namespace

void addUpgradeCommands(CommandTable& table) {
  table.add(Command{"upgrade status", "",
                    "current and previous version and the last upgrade attempt", "",
                    [](po::options_description& o, po::positional_options_description&) {
                      o.add_options()("json", "machine-readable output");
                    },
                    runStatus});
  table.add(Command{
      "upgrade rollback", "", "reinstall the previous version (local; reported and audited)",
      "The upgrade helper (pms-agent-upgrade.service) stops the agent, reinstalls the package\n"
      "kept from before the last upgrade, starts it and checks its health.",
      {}, runRollback});
  table.add(Command{
      "upgrade apply", "",
      "the upgrade helper: install a staged upgrade or rollback (run by pms-agent-upgrade.service)",
      "Runs, or resumes after a crash, the attempt <state_dir>/upgrade/request.json asks for.\n"
      "Needs the rights of the package manager. Its own state: $STATE_DIRECTORY.",
      {}, runApply});
}

}  // namespace psa::agent
