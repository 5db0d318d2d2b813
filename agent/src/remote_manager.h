// RemoteManager: the agent side of remote management (issue 6, design.md "Contract: MQTT topics
// and envelope").
//   - Signed config documents (P/config/set): verified, checked (replay, lock, schema,
//     forbidden changes), applied through the staged adapter apply, persisted, answered on
//     P/config/state and audited. A local config change plus SIGHUP takes the same path.
//   - Signed commands (P/cmd/{name}): ping, status, restart-adapter, set-log-level, rotate-key,
//     retry-dead, bundle, upgrade (upgrade_agent.h, which also takes P/upgrade/chunk);
//     answered on P/cmd/result and audited. Unknown ones are refused.
//   - The config lock (`pms-agent config lock/unlock`), persisted and shown in status.
//   - P/status on state changes and at cloud.status_interval_s; P/audit batches, acknowledged
//     like records (the uploaded-up-to seq advances only on PUBACK and is kept in the store).
//
// Threads: everything that blocks (verifying, applying, store reads, file writes) runs on one
// private worker thread, so documents and commands are handled strictly one at a time. The
// once-a-second status/audit tick is an Asio timer on that worker's executor (no thread of its
// own). The ControlSink callbacks only post there. Control-socket handlers call
// lockConfig/unlockConfig from the control pool (they take the state's mutex, never the worker).
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "adapter_set.h"
#include "agent_context.h"
#include "psa/agent/signed_document.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/log_budget.h"
#include "remote_state.h"
#include "upgrade_agent.h"

namespace psa::agent {

class ControlServer;

/// The store watermark (scope, key) holding the last audit seq the cloud acknowledged on
/// P/audit. Audit retention keeps every entry after it (StoreOptions::audit_upload_*).
inline constexpr const char* kAuditUploadScope = ".agent";  // adapter names cannot start with '.'
inline constexpr const char* kAuditUploadKey = "audit_uploaded_seq";

/// What the agent lets remote management do to its lifecycle.
struct RemoteHooks {
  /// Staged apply of a fully validated config (worker thread). On success the running adapter
  /// set matches `next`; on failure it is unchanged.
  std::function<Result<ApplySummary>(const Config& next)> apply;
  /// restart-adapter NAME.
  std::function<Status(const std::string& name)> restart_adapter;
  /// A write-back request from P/down/{kind} (link strand; must not block). Unset: ignored.
  std::function<void(std::string kind, std::string payload)> write_request;
};

class RemoteManager final : public cloudlink::ControlSink {
 public:
  /// `ctx` and `registry` must outlive the manager.
  RemoteManager(AgentContext& ctx, const adapters::SourceRegistry& registry, RemoteHooks hooks);
  ~RemoteManager() override;

  /// Boot, before start(): the effective config is the local file plus the newest stored cloud
  /// config; if that is unusable (damaged file, no longer valid against the local file), the
  /// last known good; else the file alone. Problems are logged and shown in status.
  /// Errors: Errc::io when <state_dir>/remote cannot be created.
  Result<ConfigPtr> selectStartupConfig(ConfigPtr local);

  /// Loads the signing keys (a bad key file is logged; documents are then refused as
  /// unknown_key), the audit upload cursor, and starts the once-a-second status/audit tick.
  /// Call after the store is open and before the cloud link starts.
  void start();
  /// Waits for the document or command in progress, drops queued ones. Idempotent.
  void stop();

  /// SIGHUP: reload the local file and apply it through the staged path (asynchronous).
  void requestReload();

  /// The config lock. `actor` is "uid:N". Errors: Errc::io (state file).
  Status lockConfig(const std::string& reason, const std::string& actor);
  Status unlockConfig(const std::string& actor);

  /// The "config" object of the status document: origin, version, lock, last result.
  json::Value configStatus() const;
  /// The running effective config (changes after each apply). Thread-safe.
  ConfigPtr currentConfig() const;

  /// The status JSON last built on the worker (for the link's provider: never blocks).
  std::string cachedStatus() const;

  // cloudlink::ControlSink (link strand): post to the worker.
  void onConfigDocument(std::string payload) override;
  void onCommand(std::string name, std::string payload) override;
  void onUpgradeChunk(std::string payload) override;
  void onWriteRequest(std::string kind, std::string payload) override;

 private:
  struct Outcome;
  void post(std::function<void()> task);
  void handleConfigDocument(const std::string& text);
  void handleCommand(const std::string& name, const std::string& text);
  void handleReload();
  /// Validates, applies and (for the cloud) persists `overlay` over `base`.
  std::optional<Rejection> applyOverlay(const json::Value& base_doc, const json::Value& overlay,
                                        ApplySummary& summary, ConfigPtr& applied,
                                        const char* actor);
  std::optional<Rejection> runCommand(const CommandDocument& cmd, json::Value& data);
  void reportConfig(int64_t version, const std::optional<Rejection>& rejection,
                    const std::string& key_id, const ApplySummary* summary,
                    const std::vector<std::string>& pending_restart = {});
  void reportCommand(const std::string& id, const std::string& command,
                     const std::optional<Rejection>& rejection, json::Value data);
  void audit(std::string actor, std::string action, json::Value detail);
  void auditUnauthenticated(const std::string& action, const Rejection& rejection);
  void publishBundle(const CommandDocument& cmd);

  void armTick();
  void tick();
  void checkStatus(bool force);
  void uploadAudit();
  void persistAuditCursor(int64_t seq);

  AgentContext& ctx_;
  const adapters::SourceRegistry& registry_;
  RemoteHooks hooks_;
  log::Logger log_{"remote"};
  std::unique_ptr<RemoteState> state_;
  std::unique_ptr<upgrade::UpgradeAgent> upgrade_;  ///< worker only; created by start()
  SigningKeys keys_;
  std::string keys_problem_;

  mutable std::mutex mu_;  ///< guards the fields below
  json::Value base_doc_;   ///< the local file's document (defaults filled)
  ConfigPtr current_;
  std::string config_source_ = "local";  ///< "local", "cloud", "cloud-last-known-good"
  std::string startup_problem_;
  json::Value last_result_;                   ///< last config/state document sent
  std::vector<std::string> pending_restart_;  ///< applied tuning values that need a restart
  std::string cached_status_;

  boost::asio::thread_pool worker_{1};
  /// Runs tick() on the worker a second after the previous tick ended (worker only).
  boost::asio::steady_timer tick_timer_{worker_};
  std::atomic<bool> stopping_{false};
  bool started_ = false;

  // Worker-only state.
  std::string status_signature_;
  std::chrono::steady_clock::time_point last_status_{};
  /// When cached_status_ (the whole document, for the link's reconnects) was last built.
  std::chrono::steady_clock::time_point cached_at_{};
  static constexpr std::chrono::seconds kCachedStatusMaxAge{10};
  int64_t audit_cursor_ = 0;  ///< highest seq the cloud acknowledged
  bool audit_inflight_ = false;
  /// At most 10 audit entries of unauthenticated junk a minute (auditUnauthenticated).
  LogBudget unauth_audits_{10, std::chrono::minutes(1)};
};

/// Registers config.lock / config.unlock on the control socket.
void registerRemoteControlHandlers(ControlServer& server, RemoteManager& remote);

}  // namespace psa::agent
