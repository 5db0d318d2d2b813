// The agent side of the CLI's control commands. Each handler answers one request on the
// control server's worker pool; state-changing ones are audited with the caller's uid.
#include "control_handlers.h"

namespace psa::agent {

ControlResponse replyOk(json::Value result) {
  ControlResponse r;
  r.result = std::move(result);
  return r;
}

ControlResponse replyError(const Error& error) {
  ControlResponse r;
  r.ok = false;
  r.error = error.message;
  r.exit_code = error.is(Errc::invalid_argument) ? 2 : 1;
  return r;
}

ControlResponse replyUsage(std::string message) {
  return replyError(Error(Errc::invalid_argument, std::move(message)));
}

bool intArg(const json::Value& args, std::string_view key, int64_t lo, int64_t hi, int64_t& out,
            std::string& problem) {
  const json::Value* v = args.find(key);
  if (v == nullptr) {
    return true;
  }
  if (!v->isInteger() || v->asInt() < lo || v->asInt() > hi) {
    problem = std::string(key) + " must be an integer from " + std::to_string(lo) + " to " +
              std::to_string(hi);
    return false;
  }
  out = v->asInt();
  return true;
}

void registerControlHandlers(ControlServer& server, AgentContext& ctx) {
  server.handle("status", [&ctx](const ControlRequest&, const Peer&) {
    return replyOk(buildStatus(ctx));
  });
  registerQueueHandlers(server, ctx);
  registerAdminHandlers(server, ctx);
}

}  // namespace psa::agent
