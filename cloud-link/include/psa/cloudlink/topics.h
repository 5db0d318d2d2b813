// The MQTT topic scheme of the contract: P = ps/{tenant}/{agent_id}.
#pragma once

#include <string>
#include <string_view>

#include "psa/store/record.h"

namespace psa::cloudlink {

class Topics {
 public:
  Topics(std::string_view tenant, std::string_view agent_id);

  const std::string& prefix() const { return prefix_; }
  std::string up(store::Kind kind) const;    ///< P/up/{kind}
  std::string status() const;                ///< P/status (retained)
  std::string receipt() const;               ///< P/receipt
  std::string configSet() const;             ///< P/config/set
  std::string configState() const;           ///< P/config/state
  std::string command(std::string_view name) const;  ///< P/cmd/{name}
  std::string commandFilter() const;         ///< P/cmd/+
  std::string commandResult() const;         ///< P/cmd/result
  std::string audit() const;                 ///< P/audit
  std::string upgradeChunk() const;          ///< P/upgrade/chunk
  std::string down(store::Kind kind) const;  ///< P/down/{kind}: write-back requests
  std::string downFilter() const;            ///< P/down/+
  std::string downResult() const;            ///< P/down/result

  /// True if tenant/agent id are usable as topic levels (no '/', '+', '#', NUL; non-empty).
  static bool validLevel(std::string_view level);

 private:
  std::string prefix_;
};

}  // namespace psa::cloudlink
