// Small state files of the API adapters (rate budgets): atomic replace (tmp + fsync + rename +
// directory fsync), mode 0600, and a read that tells "absent" from "unreadable".
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::api {

/// Writes `data` to `path` atomically; creates the parent directory (0700) if needed.
/// Errors: Errc::io with the path and errno text.
Status writeStateFile(const std::filesystem::path& path, std::string_view data);

/// The file's bytes, nullopt if it does not exist. Errors: Errc::io. Files over 1 MiB are
/// refused (Errc::limit): state files are small.
Result<std::optional<std::string>> readStateFile(const std::filesystem::path& path);

}  // namespace psa::adapters::api
