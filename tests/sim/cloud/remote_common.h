// What the signing subcommands of pms-cloud-sim share (remote.cpp, upgrade.cpp): the broker
// and signing options, argument parsing, the document validity window, small file helpers.
#pragma once

#include <sys/types.h>

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sim_client.h"

namespace psa::sim {

struct BrokerArgs {
  BrokerArgs() { client.client_id.clear(); }
  ClientOptions client;
  std::string tenant;
  std::string agent;
  std::string key_file;
  double wait_s = 0;
  bool print = false;
  int64_t expires_s = 300;
  std::string issued_at;
};

std::string readText(const std::string& file);
void writeText(const std::string& file, const std::string& data, mode_t mode);
void addCommonOptions(boost::program_options::options_description& desc, BrokerArgs& a);
/// Parses a subcommand's arguments; false (with `code` set) after --help or a usage error.
bool parseArgs(const char* name, const std::vector<std::string>& args,
               boost::program_options::options_description& desc,
               boost::program_options::positional_options_description& pos,
               boost::program_options::variables_map& vm, int& code);
/// issued_at and expires_at (Unix ms) of a document signed now (or at --issued-at).
std::pair<int64_t, int64_t> window(const BrokerArgs& a);

}  // namespace psa::sim
