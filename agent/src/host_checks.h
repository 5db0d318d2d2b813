// The lines of `pms-agent check` that look at this host the OS's own way: the key file's
// protection, the state directory, time synchronisation, and how to start the service. One
// implementation per OS: host_checks_posix.cpp (modes, owners, the kernel's NTP state,
// systemctl) and host_checks_win.cpp (ACLs and DPAPI, the Windows Time service, net start).
// The shared pieces live in host_checks.cpp. All run in the CLI process and change nothing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

using CheckResult = adapters::CheckResult;

/// The key file: present, protected, owned like the state dir. `stats` may be null.
CheckResult keyFileCheck(const Config& cfg, const store::QueueStats* stats, bool db_exists);

/// The key file is missing: fine before the first start, a FAIL when the database holds
/// records that only it can decrypt. The same on every OS.
CheckResult missingKeyFileCheck(const std::filesystem::path& key, const store::QueueStats* stats,
                                bool db_exists);

/// The state directory is missing or not a directory (nullopt when it is one). The same on
/// every OS; stateDirCheck goes on from there.
std::optional<CheckResult> stateDirShapeProblem(const std::filesystem::path& dir);

/// The state directory exists and this user can write into it (a probe file).
CheckResult stateDirCheck(const Config& cfg);

/// Whether the OS keeps the clock synchronised (called once the clock is past the build date).
CheckResult timeSyncCheck(int64_t now_ms);

/// The command that turns time synchronisation on ("timedatectl set-ntp true").
std::string timeSyncHint();

/// How to start the service and where to read why it stopped.
std::string startServiceHint();

}  // namespace psa::agent
