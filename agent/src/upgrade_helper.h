// The upgrade helper (`pms-agent upgrade apply`, run by pms-agent-upgrade.service when the
// agent leaves a request; design.md "Upgrade"): installs a verified package outside the
// agent's service, restarts the agent, watches its health, and rolls back to the previous
// package when the new version does not come up healthy in time.
//
// It trusts nothing the agent wrote: it opens the signed command again with the config's
// signing keys (this agent's id; a command past its own expiry is fine, the upgrade's
// `deadline` rules), reads the staged package into its own state directory and verifies size,
// SHA-256, release-key signature and package facts itself before installing that copy.
//
// Crash safety: every step is recorded in journal.json (its own state directory) before it is
// taken, and every step is idempotent (stop, install, start, health check), so a helper killed
// at any point is started again (the request file still exists) and goes on from its journal.
// It runs from a copy of itself taken at the start of the attempt, never from the installed
// binary that may be the version being rolled back.
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>

#include "psa/agent/config.h"

namespace psa::agent::upgrade {

struct HelperOptions {
  ConfigPtr config;                     ///< the agent's config (state dir, keys, control socket)
  std::filesystem::path helper_dir;     ///< its own state ($STATE_DIRECTORY)
  std::chrono::seconds health_timeout{120};
  /// A healthy agent must stay up, the same process, this long: a crash loop is a failure.
  std::chrono::seconds health_settle{10};
};

/// Runs (or resumes) the attempt the agent's request.json asks for. Progress goes to `log`
/// (the journal, for people); the outcome to the agent's events and status.json. Returns
/// 0 when the attempt ended (upgraded, rolled back or refused), 1 when the site could not be
/// brought back to a healthy version (a technician is needed; the event says why).
int runHelper(const HelperOptions& options, std::ostream& log);

}  // namespace psa::agent::upgrade
