// AgentContext: what the running agent exposes to its control-socket handlers and to the
// remote-management code (the store, the config, the adapters, the cloud link, the status
// document). Owned by Agent; valid from start() until run() returns. Agent::start() fills
// every member before the control server or an io thread starts, and none changes while they
// run, so readers on any thread need no lock (the functions are thread-safe themselves).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "intake_watch.h"
#include "psa/adapters/policy/policy_sink.h"
#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

struct AgentContext {
  /// The config the agent started with (identity, paths, store and cloud settings: these never
  /// change while running). The adapters and tuning values may change later (remote config,
  /// SIGHUP): read those through currentConfig().
  ConfigPtr config;
  /// The running effective config (thread-safe); null before start().
  std::function<ConfigPtr()> currentConfig;
  const adapters::SourceRegistry* registry = nullptr;
  store::SqliteStore* store = nullptr;
  /// The sink the adapters write to: what the store answered them (refusals when full).
  const IntakeWatch* intake = nullptr;
  /// The field policy in front of the store: the running policy and what it changed.
  const adapters::policy::PolicySink* policy = nullptr;
  cloudlink::CloudLink* link = nullptr;  ///< null when the config has no `cloud` section
  int64_t started_ms = 0;
  /// The running adapters (a snapshot; safe from any thread).
  std::function<std::vector<adapters::SourcePtr>()> sources;
  /// The status document (`status --json`, `P/status`).
  std::function<json::Value()> status;
  /// Optional: the `config` object of the status document (version, origin, applied_at,
  /// locked). Remote management sets it; unset, a local-file placeholder is shown.
  std::function<json::Value()> config_state;
  /// Optional: the `http` object of the status document (the local endpoint's listen address
  /// and state); unset when the config has no `http` section.
  std::function<json::Value()> http_state;
};

class ControlServer;

/// Registers the control commands the CLI uses (status, queue.*, ...). Each handler runs on
/// the control server's worker pool and may block on the store.
void registerControlHandlers(ControlServer& server, AgentContext& ctx);

/// What buildStatus includes.
enum class StatusScope {
  full,     ///< everything: what `status`, the page and P/status show
  signals,  ///< only what decides whether P/status must go out now (adapters, link, queue,
            ///< config): no process footprint, key file, disk or log facts, which cost
            ///< system calls and never trigger a publish
};

/// Builds the status document from the live parts. Thread-safe; no PHI.
json::Value buildStatus(const AgentContext& ctx, StatusScope scope = StatusScope::full);

}  // namespace psa::agent
