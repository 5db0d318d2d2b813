// The files the agent and the upgrade helper hand each other (design.md "Upgrade"; README
// "Self-upgrade"). The agent never installs anything itself: it verifies a package, stages it
// and asks for the helper by writing a request; the helper (a separate, privileged run of
// `pms-agent upgrade apply`, upgrade_helper.h) installs, restarts and health-checks, and leaves
// events for the running agent to report. Under <state_dir>/upgrade/:
//
//   download/      chunks of the package in progress (upgrade_download.h)
//   staged/        the verified package the request names
//   request.json   the hand-off. Its existence starts the helper (systemd:
//                  pms-agent-upgrade.path), which removes it only when the attempt is over,
//                  so a helper killed half-way is started again and resumes.
//   events/        the helper's progress and outcome, one file per event, oldest first by
//                  name; the agent publishes each on P/cmd/result and deletes it on PUBACK, so
//                  an outcome survives restarts of either side until the cloud has it.
//   status.json    current and previous version and the last attempt (`upgrade status`).
//
// Nothing here is trusted by the helper: it runs with more rights than the agent, so it checks
// the signed command and the package's signature itself (upgrade_helper.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::agent::upgrade {

struct Paths {
  std::filesystem::path dir;
  std::filesystem::path download;
  std::filesystem::path staged;
  std::filesystem::path request;
  std::filesystem::path events;
  std::filesystem::path status;
  static Paths under(const std::filesystem::path& state_dir);
};

/// The stages of the contract, as P/cmd/result `stage`.
inline constexpr const char* kStageDownloading = "downloading";
inline constexpr const char* kStageVerified = "verified";
inline constexpr const char* kStageInstalling = "installing";
inline constexpr const char* kStageHealthCheck = "health_check";
inline constexpr const char* kStageUpgraded = "upgraded";
inline constexpr const char* kStageRolledBack = "rolled_back";
inline constexpr const char* kStageRejected = "rejected";
/// Not in the contract's happy path: the helper could neither finish nor roll back (the site
/// needs a technician; the event says what failed).
inline constexpr const char* kStageFailed = "failed";

/// The agent's hand-off to the helper.
struct Request {
  std::string action;            ///< "install" (a verified package) or "rollback" (local CLI)
  std::string command;           ///< install: the signed `upgrade` command, as received
  std::string package;           ///< install: file name in staged/
  std::string requested_by;      ///< "cloud" or "uid:N"
  int64_t at_ms = 0;
};

json::Value toJson(const Request& r);
/// Errors: Errc::invalid_input naming the member.
Result<Request> requestFromJson(const json::Value& doc);

/// One progress step or outcome of an attempt, for P/cmd/result.
struct Event {
  std::string id;     ///< the command id ("" for a local rollback)
  std::string stage;  ///< kStage...
  std::string version;
  std::string previous;
  std::string reason;  ///< machine word for rolled_back / rejected / failed
  std::string error;   ///< for people
  int64_t at_ms = 0;
};

json::Value toJson(const Event& e);
Event eventFromJson(const json::Value& doc);

/// Writes `event` durably as the next file of `dir` (created if missing).
Status appendEvent(const std::filesystem::path& dir, const Event& event);
/// The event files in `dir`, oldest first.
std::vector<std::filesystem::path> pendingEvents(const std::filesystem::path& dir);

/// The whole file, or nullopt when it cannot be read.
std::optional<std::string> readFile(const std::filesystem::path& file);
/// A JSON object file, or nullopt when it is missing or not a JSON object.
std::optional<json::Value> readJsonObject(const std::filesystem::path& file);

}  // namespace psa::agent::upgrade
