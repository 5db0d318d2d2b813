#include "psa/agent/cli.h"

#include <cstdio>

namespace psa::agent {

int runCli(int /*argc*/, char** /*argv*/) {
  std::puts("pms-agent " PSA_VERSION);
  return 0;
}

}  // namespace psa::agent
