// What the upgrade helper asks of the operating system: the package manager and the service
// manager. One implementation per OS: upgrade_system_posix.cpp (dpkg, dpkg-repack, systemctl)
// and upgrade_system_win.cpp (not yet: the agent refuses upgrades there with `unsupported`).
//
// Test seams (README "Self-upgrade"), both absent in production: PSA_UPGRADE_DPKG_ROOT installs
// into a directory tree of its own instead of the machine (dpkg --root, maintainer scripts run
// without chroot with DPKG_ROOT set, dependencies not enforced), and PSA_UPGRADE_SYSTEMCTL names
// the program that stands in for systemctl where systemd is not PID 1.
#pragma once

#include <filesystem>
#include <string>

#include "psa/store/result.h"

namespace psa::agent::upgrade {

/// True where this OS's upgrade helper exists.
bool upgradeSupported();

/// The installed package's version ("" when it is not installed). Errors: Errc::io.
Result<std::string> installedVersion();

/// Installs `package` over whatever version is installed (also an older one: rollback).
/// Errors: Errc::io with the package manager's last lines of output.
Status installPackage(const std::filesystem::path& package);

/// Writes a package of the installed version to `file` (the rollback copy when the site was
/// installed by hand). Errors: Errc::unavailable (no tool to do it), Errc::io.
Status savePackageOfInstalled(const std::filesystem::path& file);

/// Stops / starts the agent's service and waits for the service manager to say it did.
Status stopAgentService();
Status startAgentService();

/// Who runs this command, for the audit trail: "uid:N" (POSIX), "user:NAME" (Windows).
std::string localActor();

/// Copies the running program to `file` (executable): the helper resumes from that copy, never
/// from an installed binary that may be the version being rolled back.
Status copyRunningProgram(const std::filesystem::path& file);

}  // namespace psa::agent::upgrade
