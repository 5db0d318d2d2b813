// `pms-agent run`: the service process (systemd and the Windows SCM run this).
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <iostream>

#include "command.h"
#include "psa/agent/agent.h"

namespace psa::agent {

void addRunCommand(CommandTable& table) {
  table.add(Command{
      "run", "", "run the service in the foreground (systemd runs this)",
      "Loads and validates the config, opens the store, starts the adapters and the cloud\n"
      "link. SIGTERM/SIGINT stop it cleanly: listeners stop accepting, pending\n"
      "acknowledgements are sent, in-flight commits finish, then it exits 0.",
      {},
      [](const po::variables_map&, CommandContext& ctx) {
        adapters::SourceRegistry registry;
        adapters::registerBuiltinSources(registry);
        ConfigLoad load = loadConfig(ctx.config_path, registry);
        if (!load.config) {
          if (!load.fatal.empty() && load.issues.empty()) {
            ctx.err << "pms-agent run: " << load.fatal << "\n";
          }
          for (const auto& issue : load.issues) {
            ctx.err << ctx.config_path.string() << ":" << issue.line << ":" << issue.column << ": "
                    << (issue.path.empty() ? "" : issue.path + ": ") << issue.message << "\n";
          }
          ctx.err << "pms-agent run: config invalid; nothing started\n";
          return kExitFailure;
        }
        const Config& cfg = *load.config;
        log::setLevel(cfg.log_level);
        if (!cfg.log_file.empty() && !log::setFile(cfg.log_file, cfg.log_max_bytes, cfg.log_keep)) {
          ctx.err << "pms-agent run: cannot open log file " << cfg.log_file.string()
                  << " (logging to stderr only)\n";
        }
#if defined(__GLIBC__)
        // glibc gives every thread that allocates its own 64 MiB arena; a service with a
        // handful of worker threads then reports hundreds of MB of mostly idle RSS.
        mallopt(M_ARENA_MAX, 2);
#endif
        Agent agent(load.config, makeSystemdHost());
        if (auto st = agent.start(); !st) {
          log::Logger("agent").error("start_failed", {{"error", st.error().message}});
          ctx.err << "pms-agent run: " << st.error().message << "\n";
          return kExitFailure;
        }
        return agent.run();
      }});
}

}  // namespace psa::agent
