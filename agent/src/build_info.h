// The agent's version and the commit it was built from. Defined in a file generated at
// configure time (build_info.cpp.in), so a new commit recompiles one file, not the library.
#pragma once

namespace psa::agent {

extern const char* const kAgentVersion;  ///< project version, "0.1.0"
extern const char* const kBuildId;       ///< short git commit, or "unknown" outside a checkout

}  // namespace psa::agent
