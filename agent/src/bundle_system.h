// The parts of a support bundle that come from the OS. One implementation per OS:
// bundle_system_posix.cpp (uname, /etc/os-release, journalctl -u pms-agent) and
// bundle_system_win.cpp (the Windows version, the Application event log of source pms-agent).
// Runs in the CLI process; PHI-free (the agent's own log lines are PHI-free by construction).
#pragma once

#include <cstddef>
#include <string>

namespace psa::agent {

/// system.txt: the OS and its version, host name, uptime, time, the CLI's user.
std::string systemInfo();

struct ServiceLogExtract {
  std::string file_name;  ///< "journal.txt", "eventlog.txt"
  std::string text;       ///< empty when the OS log cannot be read
};

/// The service manager's recent log of the agent, newest last, at most `lines` entries.
ServiceLogExtract serviceLogExtract(size_t lines);

}  // namespace psa::agent
