// `pms-agent run`: the service process.
#include "command.h"

namespace psa::agent {

void addRunCommand(CommandTable& /*table*/) {}

}  // namespace psa::agent
