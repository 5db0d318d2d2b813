// `pms-agent run`: the service process (systemd and the Windows SCM run this).
#include <iostream>

#include "command.h"
#include "psa/agent/agent.h"
#include "psa/store/os/process_info.h"

namespace psa::agent {

namespace {

// The service itself: config, log, agent lifecycle. Returns the process exit code.
int runAgent(CommandContext& ctx, ServiceHostPtr host) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = loadConfig(ctx.config_path, registry);
  if (!load.config) {
    if (!load.fatal.empty() && load.issues.empty()) {
      ctx.err << "pms-agent run: " << load.fatal << "\n";
      log::Logger("agent").error("config_invalid", {{"error", load.fatal}});
    }
    for (const auto& issue : load.issues) {
      ctx.err << ctx.config_path.string() << ":" << issue.line << ":" << issue.column << ": "
              << (issue.path.empty() ? "" : issue.path + ": ") << issue.message << "\n";
    }
    if (!load.issues.empty()) {
      log::Logger("agent").error("config_invalid",
                                 {{"issues", load.issues.size()},
                                  {"hint", "pms-agent config validate shows every problem"}});
    }
    ctx.err << "pms-agent run: config invalid; nothing started\n";
    return kExitFailure;
  }
  const Config& cfg = *load.config;
  log::setLevel(cfg.log_level);
  if (!cfg.log_file.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cfg.log_file.parent_path(), ec);
    if (!log::setFile(cfg.log_file, cfg.log_max_bytes, cfg.log_keep)) {
      ctx.err << "pms-agent run: cannot open log file " << cfg.log_file.string()
              << " (logging to stderr only)\n";
    }
  }
  os::tuneAllocatorForService();
  Agent agent(load.config, std::move(host));
  if (auto st = agent.start(); !st) {
    log::Logger("agent").error("start_failed", {{"error", st.error().message}});
    ctx.err << "pms-agent run: " << st.error().message << "\n";
    return kExitFailure;
  }
  return agent.run();
}

}  // namespace

void addRunCommand(CommandTable& table) {
  table.add(Command{
      "run", "", "run the service in the foreground (systemd and the Windows SCM run this)",
      "Loads and validates the config, opens the store, starts the adapters and the cloud\n"
      "link. SIGTERM/SIGINT (Ctrl+C in a Windows console; STOP from the Service Control\n"
      "Manager) stop it cleanly: listeners stop accepting, pending acknowledgements are\n"
      "sent, in-flight commits finish, then it exits 0.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("service",
                        "started by the Windows Service Control Manager (its service entry "
                        "passes this; ignored elsewhere)");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        return runService(
            vm.count("service") > 0,
            [&ctx](ServiceHostPtr host) { return runAgent(ctx, std::move(host)); }, ctx.err);
      }});
}

}  // namespace psa::agent
