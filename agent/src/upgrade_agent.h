// UpgradeAgent: the running agent's side of a self-upgrade (design.md "Upgrade"). A verified
// `upgrade` command is checked before any download (upgrade_args.h), its package collected
// from P/upgrade/chunk (upgrade_download.h), verified (size, SHA-256, release-key signature,
// package facts), staged and handed to the upgrade helper through request.json
// (upgrade_files.h). The agent never installs: the helper does, outside the service. Each step
// is reported on P/cmd/result (`stage`) and audited; the helper's own steps come back as event
// files that this class publishes, each deleted only once the broker has it.
//
// Threads: every member function runs on RemoteManager's worker thread (one at a time).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "psa/agent/signed_document.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/json.h"
#include "psa/store/log.h"
#include "upgrade_args.h"
#include "upgrade_download.h"
#include "upgrade_files.h"

namespace psa::agent::upgrade {

class UpgradeAgent {
 public:
  struct Env {
    std::filesystem::path state_dir;
    std::vector<std::filesystem::path> release_key_files;  ///< cloud.release_keys
    const SigningKeys* config_keys = nullptr;              ///< to refuse them as release keys
    /// Publishes one P/cmd/result document; `done` runs on the link's strand.
    std::function<void(std::string json, cloudlink::CloudLink::PublishCallback done)> publish;
    /// Runs `task` on the worker thread (for `done` callbacks).
    std::function<void(std::function<void()> task)> post;
    /// One audit entry (actor "cloud" or "helper").
    std::function<void(std::string actor, std::string action, json::Value detail)> audit;
  };

  explicit UpgradeAgent(Env env);

  /// Loads the release keys and picks up a download in progress. Problems are logged: an
  /// agent without usable release keys refuses every package as bad_signature.
  void start();

  /// A verified, not replayed `upgrade` command; `envelope` is the document as received (the
  /// helper checks its signature again). Reports its own results.
  void onCommand(const CommandDocument& cmd, const std::string& envelope);
  /// One P/upgrade/chunk payload (outside input).
  void onChunk(const std::string& payload);
  /// Once a second: publishes the helper's events.
  void tick();

 private:
  void report(const std::string& id, const std::string& stage, const Refusal* refusal,
              json::Value data, cloudlink::CloudLink::PublishCallback done = {});
  void refuse(const std::string& id, const Refusal& refusal, const char* step);
  void finishDownload();
  Host hostFacts() const;

  Env env_;
  Paths paths_;
  log::Logger log_{"upgrade"};
  SigningKeys release_keys_;
  std::optional<Download> download_;
  std::string envelope_;  ///< the command of the download in progress
  uint32_t reported_chunks_ = 0;
  std::chrono::steady_clock::time_point reported_at_{};
  std::set<std::filesystem::path> events_in_flight_;
  std::set<std::filesystem::path> audited_;  ///< events audited, not yet deleted
  uint64_t chunks_ignored_ = 0;
  bool watching_ = false;  ///< a hand-off or helper events may be pending
};

}  // namespace psa::agent::upgrade
