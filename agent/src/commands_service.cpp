// `pms-agent service configure`: installer-time setup of the OS service (service_admin.h). The
// Windows MSI runs it as a deferred custom action; a technician may run it again from an
// elevated prompt to repair the folders' ACLs, the recovery settings or the Event Log source.
#include "command.h"
#include "psa/store/os/utf8_path.h"
#include "service_admin.h"

namespace psa::agent {

void addServiceCommands(CommandTable& table) {
  table.add(Command{
      "service configure", "",
      "set up the installed Windows service (the MSI runs this; safe to repeat)",
      "Sets the service's delayed automatic start, recovery actions (restart after 5 s,\n"
      "30 s, then every 60 s, also after a non-zero exit), its own SID and pre-shutdown\n"
      "time; creates %ProgramData%\\PracticeStudio\\Agent with an ACL of SYSTEM,\n"
      "Administrators and NT SERVICE\\pms-agent; registers the Event Log source; validates\n"
      "and installs --config-source as the service's config; creates the data key and the\n"
      "queue; starts the service when a config is in place. An invalid config changes\n"
      "nothing and exits 1 with every problem listed. On Linux the package does all this.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("config-source", po::value<std::string>(),
                        "a config file to validate and install as the service's config")(
            "no-start", "do not start the service");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        ServiceConfigureOptions o;
        if (vm.count("config-source") && !vm["config-source"].as<std::string>().empty()) {
          o.config_source = os::pathFromUtf8(vm["config-source"].as<std::string>());
        }
        o.start = vm.count("no-start") == 0;
        if (Status st = configureService(o, ctx.out); !st) {
          ctx.err << "pms-agent service configure: " << st.error().message << "\n";
          return kExitFailure;
        }
        return kExitOk;
      }});
}

}  // namespace psa::agent
