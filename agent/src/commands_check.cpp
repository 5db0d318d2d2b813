// `pms-agent check [--json]`: the diagnostics a technician runs first.
#include "command.h"
#include "diagnostics.h"

namespace psa::agent {

void addCheckCommand(CommandTable& table) {
  table.add(Command{
      "check", "", "diagnostics: config, agent, key file, disk, clock, broker DNS/TCP/TLS/auth, adapters",
      "One line per check: OK, WARN or FAIL, what was found and a hint. Works whether or not\n"
      "the agent runs; changes nothing. Network steps time out after 5 s each.\n"
      "Exit 0 when nothing FAILs, 1 otherwise.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("json", "machine-readable output (stable keys)")(
            "timeout", po::value<int>()->default_value(5), "seconds per network step (1-60)");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        const int timeout = vm["timeout"].as<int>();
        if (timeout < 1 || timeout > 60) {
          ctx.err << "pms-agent check: --timeout must be from 1 to 60 seconds\n";
          return kExitUsage;
        }
        CheckOptions o;
        o.timeout = std::chrono::seconds(timeout);
        CheckReport report = runChecks(ctx.config_path, o);
        if (vm.count("json")) {
          ctx.out << json::serialize(checkReportJson(report), true) << "\n";
        } else {
          ctx.out << checkReportText(report);
          ctx.out << (report.ok() ? "no failures" : std::to_string(report.failures) + " failure" +
                                                        (report.failures == 1 ? "" : "s"))
                  << ", " << report.warnings << " warning" << (report.warnings == 1 ? "" : "s") << "\n";
        }
        return report.ok() ? kExitOk : kExitFailure;
      }});
}

}  // namespace psa::agent
