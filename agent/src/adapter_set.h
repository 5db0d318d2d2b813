// AdapterSet: the running adapters (name -> source and the config it was built from), started
// at boot and changed by staged applies (remote config, SIGHUP) and restart-adapter.
//
// Staged apply: validate (the caller) -> create the new instances beside the running ones ->
// start what changed -> switch -> stop what was replaced -> report. Adapters whose settings did
// not change keep running untouched. Any failure rolls everything back to the running set.
//
// Handover: a new instance that needs a resource an outgoing one holds cannot start beside it.
// An outgoing adapter is stopped *before* its successor starts ("handover") when
//   - it has the same name and shares a listen port, or either has no listen address at all
//     (pollers and file readers: two instances with one name would share watermarks and
//     directories), or
//   - it has another name but shares a listen port (a rename).
// (Ports are compared, not addresses: 0.0.0.0:2575 and 127.0.0.1:2575 conflict.)
// Everything else (new adapters, a listener moving to another port) starts beside the running
// set first, so a bind failure leaves the old listener and its connections untouched. When a
// handover start fails, the stopped adapter is rebuilt from its config and started again (its
// senders reconnect); stop() already let them have their pending ACKs.
//
// Thread-safety: snapshot()/size() from any thread; startAll/apply/restart/stopAll are
// serialised by the caller (the remote-management worker, or the boot/shutdown sequence) and
// block (never call them on an I/O thread).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/store/log.h"

namespace psa::agent {

struct ApplySummary {
  std::vector<std::string> started;    ///< new adapters
  std::vector<std::string> replaced;   ///< same name, changed settings (new instance)
  std::vector<std::string> stopped;    ///< removed or disabled
  std::vector<std::string> unchanged;  ///< kept running untouched
};

class AdapterSet {
 public:
  /// `registry` and `ctx` must outlive the set.
  AdapterSet(const adapters::SourceRegistry& registry, adapters::SourceContext& ctx);

  /// Boot: creates and starts every enabled adapter. One that fails to start is logged and kept
  /// (status shows it; restart-adapter retries it); a source that can retry on its own (a
  /// listener whose port is taken) is asked to (Source::retryStartInBackground).
  void startAll(const Config& config);

  /// Staged apply of `next` (validated). Errors (Errc::unavailable for a start failure,
  /// Errc::invalid_input for a create failure) name the adapter; the running set is unchanged
  /// after an error (adapters stopped for a handover are running again).
  Result<ApplySummary> apply(const Config& next);

  /// Stops one adapter, builds a fresh instance from its config and starts it. Errors:
  /// Errc::not_found (no such adapter), or why the new instance could not start (a source that
  /// retries on its own keeps doing so, and the message says it).
  Status restart(const std::string& name);

  /// Stops everything (pending ACKs and commits finish first); waits up to `timeout`.
  void stopAll(std::chrono::seconds timeout = std::chrono::seconds(30));

  std::vector<adapters::SourcePtr> snapshot() const;
  size_t size() const;
  bool has(const std::string& name) const;

 private:
  struct Running {
    adapters::SourcePtr source;
    json::Value config;
    bool started = false;
  };

  Result<adapters::SourcePtr> create(const json::Value& config) const;
  void stopSync(const std::vector<adapters::SourcePtr>& list, std::chrono::seconds timeout);

  const adapters::SourceRegistry& registry_;
  adapters::SourceContext& ctx_;
  log::Logger log_{"agent"};
  mutable std::mutex mu_;
  std::map<std::string, Running> running_;
};

}  // namespace psa::agent
