// The support bundle: one tar.gz a technician sends to support. Version info, the masked
// config, status (from the running agent or from the files), check results, recent log lines,
// queue statistics, dead-letter metadata, the audit chain's state and recent entries, and a
// little about the host. Everything in it is PHI-free by construction: payloads are never
// read, logs carry ids and counts only, secrets in the config are masked.
#pragma once

#include <chrono>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "archive.h"
#include "command.h"
#include "diagnostics.h"

namespace psa::agent {

struct BundleOptions {
  size_t log_lines = 2000;
  size_t audit_entries = 200;
  size_t dead_letters = 500;
  bool journal = true;  ///< add `journalctl -u pms-agent` output when journalctl exists
  CheckOptions checks;
};

/// Collects the bundle's files (all under one directory named after the agent and the time).
/// Notes about what could not be collected go to `notes` (and into README.txt).
std::vector<ArchiveFile> collectBundle(CommandContext& ctx, const BundleOptions& options,
                                       std::vector<std::string>& notes);

/// Writes `files` as tar.gz to `out` (mode 0600, via a temporary file and rename).
Status writeBundle(const std::filesystem::path& out, const std::vector<ArchiveFile>& files);

}  // namespace psa::agent
