// The local HTTP endpoint of a running agent (config `http`): the status page, the status
// document, the last check report, the traffic history and Prometheus /metrics. Owns the
// server and what only it needs (the history sampler, the check cache), so an agent without an
// `http` section allocates none of it. Read-only: nothing served changes the agent.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "psa/agent/http_settings.h"
#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::agent {
struct AgentContext;
}

namespace psa::agent::http {

class StatusEndpoint {
 public:
  /// `ctx` must outlive the endpoint (Agent owns both; the endpoint stops first).
  StatusEndpoint(boost::asio::io_context& io, const AgentContext& ctx, HttpSettings settings);
  ~StatusEndpoint();

  /// Loads TLS and the token file, binds (or keeps retrying the port), starts sampling.
  /// Errors: a TLS or token file problem, in words.
  Status start();
  void stop();
  /// {"listen","state","port","tls","token"} for the status document.
  json::Value describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psa::agent::http
