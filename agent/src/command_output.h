// Runs a program and returns what it printed: for the few facts only another program can give
// on POSIX (journalctl for the support bundle, dpkg-deb for an upgrade package). There is no
// Windows implementation because no Windows code needs one: Windows asks its APIs instead.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace psa::agent {

/// Runs argv[0] (an absolute path; no shell) with stdin and stderr on /dev/null and returns its
/// stdout, at most `max_bytes`; killed at `timeout`. Empty on any failure.
std::string commandOutput(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          size_t max_bytes);

}  // namespace psa::agent
