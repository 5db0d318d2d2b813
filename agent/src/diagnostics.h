// The diagnostics of `pms-agent check` (also part of a support bundle): what a technician
// would otherwise check by hand, each as one OK/WARN/FAIL line with a hint. Runs in the CLI
// process, works whether or not the agent runs, and never changes anything.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "host_checks.h"
#include "psa/store/json.h"

namespace psa::agent {

struct CheckReport {
  std::vector<CheckResult> results;
  size_t failures = 0;
  size_t warnings = 0;
  bool ok() const { return failures == 0; }
};

struct CheckOptions {
  std::chrono::milliseconds timeout{5000};  ///< per network step
  uint64_t min_free_bytes = 100ull << 20;   ///< less free space on the state dir is a FAIL
  double warn_used_percent = 90.0;
  double oldest_pending_warn_s = 3600;      ///< a record waiting longer is a WARN
  int cert_warn_days = 30;
};

/// Runs every check for the config in `config_file`. Blocks up to a few timeouts.
CheckReport runChecks(const std::filesystem::path& config_file, const CheckOptions& options = {});

/// {"ok":bool,"failures":N,"warnings":N,"checks":[{"level","name","text"}]}
json::Value checkReportJson(const CheckReport& report);
/// One line per check: "OK    config        /etc/pms-agent/agent.json valid (4 adapters)".
std::string checkReportText(const CheckReport& report);

}  // namespace psa::agent
