// The pms-agent command line: subcommand dispatch with --help at every level.
#pragma once

namespace psa::agent {

/// Parses argv, dispatches to the subcommand and returns the process exit code
/// (0 ok, 1 failure found, 2 usage error). A broken invariant ends the process with 70
/// (psa/store/fatal.h); runCli installs that path as the std::terminate handler too.
int runCli(int argc, char** argv);

}  // namespace psa::agent
