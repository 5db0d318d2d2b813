// Subcommands of pms-cloud-sim. Each takes the arguments after its name and returns the exit
// code (0 ok, 1 failure, 2 usage).
#pragma once

#include <string>
#include <vector>

namespace psa::sim {

int runListen(const std::vector<std::string>& args);
int runKeygen(const std::vector<std::string>& args);
int runPushConfig(const std::vector<std::string>& args);
int runCommand(const std::vector<std::string>& args);
int runUpgrade(const std::vector<std::string>& args);
int runWrite(const std::vector<std::string>& args);

}  // namespace psa::sim
