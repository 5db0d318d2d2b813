#include "psa/cloudlink/topics.h"

namespace psa::cloudlink {

Topics::Topics(std::string_view tenant, std::string_view agent_id)
    : prefix_("ps/" + std::string(tenant) + "/" + std::string(agent_id)) {}

std::string Topics::up(store::Kind kind) const {
  return prefix_ + "/up/" + std::string(store::kindName(kind));
}
std::string Topics::status() const { return prefix_ + "/status"; }
std::string Topics::receipt() const { return prefix_ + "/receipt"; }
std::string Topics::configSet() const { return prefix_ + "/config/set"; }
std::string Topics::configState() const { return prefix_ + "/config/state"; }
std::string Topics::command(std::string_view name) const {
  return prefix_ + "/cmd/" + std::string(name);
}
std::string Topics::commandFilter() const { return prefix_ + "/cmd/+"; }
std::string Topics::commandResult() const { return prefix_ + "/cmd/result"; }
std::string Topics::audit() const { return prefix_ + "/audit"; }
std::string Topics::upgradeChunk() const { return prefix_ + "/upgrade/chunk"; }
std::string Topics::down(store::Kind kind) const {
  return prefix_ + "/down/" + std::string(store::kindName(kind));
}
std::string Topics::downFilter() const { return prefix_ + "/down/+"; }
std::string Topics::downResult() const { return prefix_ + "/down/result"; }

bool Topics::validLevel(std::string_view level) {
  if (level.empty() || level.size() > 128) {
    return false;
  }
  for (char c : level) {
    if (c == '/' || c == '+' || c == '#' || c == '\0') {
      return false;
    }
  }
  return true;
}

}  // namespace psa::cloudlink
