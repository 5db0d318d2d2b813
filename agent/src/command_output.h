// Runs a program and returns what it printed: for the few facts and actions only another
// program gives on POSIX (journalctl for the support bundle, dpkg-deb for an upgrade package,
// dpkg and systemctl for the upgrade helper). There is no Windows implementation because no
// Windows code needs one: Windows asks its APIs instead.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace psa::agent {

/// Runs argv[0] (an absolute path; no shell) with stdin and stderr on /dev/null and returns its
/// stdout, at most `max_bytes`; killed at `timeout`. Empty on any failure.
std::string commandOutput(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          size_t max_bytes);

struct ProgramRun {
  bool started = false;   ///< false: fork or exec failed
  bool timed_out = false;  ///< killed at the timeout
  int exit_code = -1;     ///< the exit status; -1 when killed by a signal
  std::string output;     ///< stdout and stderr interleaved, at most max_bytes (the rest dropped)
};

/// Runs argv[0] (an absolute path; no shell) to its end with stdin on /dev/null, collecting
/// stdout and stderr; killed (with its process group) at `timeout`. Environment: this
/// process's; working directory `cwd` (empty: this process's).
ProgramRun runProgram(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      size_t max_bytes, const std::string& cwd = {});

}  // namespace psa::agent
