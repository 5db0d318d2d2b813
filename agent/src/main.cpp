// pms-agent: the Practice Studio Edge Agent's one binary (service and technician CLI).
#include "psa/agent/cli.h"

int main(int argc, char** argv) { return psa::agent::runCli(argc, argv); }
