// The PHI-free support bundle the `bundle` remote command publishes in chunks on P/cmd/result.
// (A minimal JSON bundle built inside the agent; `pms-agent bundle` builds the technician's
// tar.gz in the CLI process.)
#pragma once

#include <string>

#include "agent_context.h"
#include "psa/store/result.h"

namespace psa::agent {

struct SupportBundle {
  std::string file_name;     ///< suggested name, e.g. "pms-agent-bundle-practice-0042-20261125T204420Z.json"
  std::string content_type;  ///< e.g. "application/json"
  std::string bytes;
};

/// Builds the bundle from the running agent: versions, the effective config with secrets
/// masked, the status document, recent log lines (PHI-free by construction). Blocking (store
/// reads); not from I/O threads. Errors: Errc::io.
Result<SupportBundle> buildSupportBundle(const AgentContext& ctx);

}  // namespace psa::agent
