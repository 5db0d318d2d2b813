// The upgrade helper on Windows: not yet (msiexec run by a helper outside the service, the
// previous MSI kept for rollback, is the design; README "Self-upgrade"). Until then the agent
// refuses `upgrade` commands with `unsupported`, so no package is ever staged for nobody.
#include "upgrade_system.h"

namespace psa::agent::upgrade {

namespace {
Error notYet() {
  return Error(Errc::unavailable, "self-upgrade is not available on Windows yet");
}
}  // namespace

bool upgradeSupported() { return false; }
Result<std::string> installedVersion() { return notYet(); }
Status installPackage(const std::filesystem::path&) { return notYet(); }
Status savePackageOfInstalled(const std::filesystem::path&) { return notYet(); }
Status stopAgentService() { return notYet(); }
Status startAgentService() { return notYet(); }
Status copyRunningProgram(const std::filesystem::path&) { return notYet(); }
std::string localActor() { return "user:local"; }

}  // namespace psa::agent::upgrade
