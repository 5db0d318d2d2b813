// The site key of the field policy's `hash` action: 32 random bytes in a file of their own
// under the state directory (policy.key), created the first time a policy hashes.
//
// Why not the store's data key: the store's keys rotate (`pms-agent keys rotate`) and a token
// must stay the same at this site for the same value, and the store keeps its key material
// private to its writer. The file is protected like the store's key file (owner only; on
// Windows DPAPI, machine scope) and is never part of a support bundle.
#pragma once

#include <filesystem>
#include <string>

#include "psa/store/result.h"

namespace psa::adapters::policy {

inline constexpr const char* kPolicyKeyFile = "policy.key";

/// Reads the key from `file`, creating it (owner-only, durably) when it does not exist.
/// Errors: Errc::io (unreadable, cannot write), Errc::key_file (not a key, or sealed for
/// another machine), Errc::internal (random number generator).
Result<std::string> loadOrCreatePolicyKey(const std::filesystem::path& file);

}  // namespace psa::adapters::policy
