// Commands added by later features register here (status, check, queue, hl7, bundle, ...).
#include "command.h"

namespace psa::agent {

int showConfigFromFile(CommandContext& ctx);
void addLockCommands(CommandTable& table);

void addFamilyCommands(CommandTable& table) {
  addStatusCommands(table);
  addCheckCommand(table);
  addQueueCommands(table);
  addAdminCommands(table);
  addBundleCommand(table);
  addServiceCommands(table);
  addKeyMoveCommands(table);
  table.add(Command{"config show", "", "print the effective config with secrets masked", "", {},
                    [](const po::variables_map&, CommandContext& ctx) {
                      return showConfigFromFile(ctx);
                    }});
  addHl7Commands(table);
  addValidateCommand(table);   // validate (commands_validate.cpp)
  addDiscoverCommands(table);  // discover hl7 / files (commands_discover.cpp)
  addLockCommands(table);  // config lock / unlock (commands_lock.cpp)
  addUpgradeCommands(table);  // upgrade status / rollback / apply (commands_upgrade.cpp)
}

}  // namespace psa::agent
