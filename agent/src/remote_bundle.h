// The support bundle the `bundle` remote command publishes in chunks on P/cmd/result: the same
// tar.gz `pms-agent bundle --out FILE` writes (bundle.h), built inside the agent.
#pragma once

#include <string>

#include "agent_context.h"
#include "psa/store/result.h"

namespace psa::agent {

struct SupportBundle {
  std::string file_name;     ///< e.g. "pms-agent-bundle-practice-0042-20261125T204420Z.tar.gz"
  std::string content_type;  ///< "application/gzip"
  std::string bytes;
};

/// Collects the bundle for the running agent (its status and queue through its own control
/// socket, checks, logs, audit state; PHI-free by construction) and packs it as tar.gz.
/// Blocking for up to a few check timeouts; never on an I/O thread. Errors: Errc::invalid_argument
/// (an entry name the tar format cannot hold).
Result<SupportBundle> buildSupportBundle(const AgentContext& ctx);

}  // namespace psa::agent
