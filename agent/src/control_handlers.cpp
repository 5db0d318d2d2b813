// The agent side of the CLI's control commands. Each handler answers one request on the
// control server's worker pool; state-changing ones are audited with the caller's uid.
#include "agent_context.h"
#include "control_server.h"

namespace psa::agent {

void registerControlHandlers(ControlServer& server, AgentContext& ctx) {
  server.handle("status", [&ctx](const ControlRequest&, const Peer&) {
    ControlResponse r;
    r.result = buildStatus(ctx);
    return r;
  });
}

}  // namespace psa::agent
