#include "host_checks.h"

#include "cli_support.h"

namespace psa::agent {

CheckResult missingKeyFileCheck(const std::filesystem::path& key, const store::QueueStats* stats,
                                bool db_exists) {
  const uint64_t records = stats ? stats->pending + stats->dead : 0;
  if (db_exists && (records > 0 || (stats && stats->key_count > 0))) {
    return {CheckResult::Level::fail, "key file",
            key.string() + " is missing, but the queue database holds " + humanCount(records) +
                " records ▸ restore the key file from backup (a new key cannot decrypt them)"};
  }
  return {CheckResult::Level::ok, "key file",
          key.string() + " not created yet (the agent creates it at first start)"};
}

std::optional<CheckResult> stateDirShapeProblem(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    return CheckResult{CheckResult::Level::warn, "state dir",
                       dir.string() + " does not exist yet (the agent creates it at start)"};
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return CheckResult{CheckResult::Level::fail, "state dir", dir.string() + " is not a directory"};
  }
  return std::nullopt;
}

}  // namespace psa::agent
