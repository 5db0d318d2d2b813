// Agent: the service process behind `pms-agent run`. Owns the io_context and its threads, the
// store, the running adapter set and (when configured) the cloud link, and runs the lifecycle:
// start -> serve -> ordered shutdown (stop accepting, finish acknowledgements, drain the
// store's commits, disconnect, join). Remote management (signed config and commands, staged
// apply with rollback, SIGHUP reload, config lock, status and audit upload) runs inside it.
#pragma once

#include <atomic>
#include <memory>

#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/agent/service_host.h"
#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::agent {

class Agent {
 public:
  /// `config` must be validated. `host` reports to the service manager (may be a no-op).
  Agent(ConfigPtr config, std::unique_ptr<ServiceHost> host);
  /// Same, with the adapter types the agent may build (tests add their own types; `config` must
  /// have been validated against the same registry). Reloads validate against it too.
  Agent(ConfigPtr config, std::unique_ptr<ServiceHost> host, adapters::SourceRegistry registry);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Opens the store and starts the adapters and the cloud link. Errors: the store cannot be
  /// opened (key file, permissions, I/O) — nothing is left running then.
  Status start();

  /// Serves until SIGTERM/SIGINT or requestStop(), then shuts down in order. Returns the
  /// process exit code (0 after a clean shutdown).
  int run();

  /// Asks run() to return; safe from any thread and from signal context via the signal_set.
  void requestStop();

  /// The status document (`pms-agent status --json`, `P/status`). Thread-safe.
  json::Value status() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace psa::agent
