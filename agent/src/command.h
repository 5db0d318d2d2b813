// The CLI's command table: each command declares its words ("queue show"), options and run
// function; the dispatcher in cli.cpp finds the longest matching command and gives every level
// a --help. Command families add themselves from their own file (commands_*.cpp).
#pragma once

#include <boost/program_options.hpp>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "psa/store/json.h"

namespace psa::agent {

namespace po = boost::program_options;

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct CommandContext {
  std::filesystem::path config_path;  ///< --config, $PMS_AGENT_CONFIG or the default
  bool config_given = false;          ///< --config or the environment named it
  std::ostream& out;
  std::ostream& err;
};

struct Command {
  std::string words;    ///< "config validate"
  std::string args;     ///< positional usage, e.g. "FILE"
  std::string summary;  ///< one line for listings
  std::string help;     ///< extra paragraphs for --help (optional)
  /// Declares options and positionals (optional).
  std::function<void(po::options_description&, po::positional_options_description&)> define;
  std::function<int(const po::variables_map&, CommandContext&)> run;
};

class CommandTable {
 public:
  void add(Command command);
  const std::vector<Command>& commands() const { return commands_; }

 private:
  std::vector<Command> commands_;
};

// Families of commands, each in its own file.
void addBasicCommands(CommandTable& table);   // version, config validate/show
void addRunCommand(CommandTable& table);      // run
void addFamilyCommands(CommandTable& table);  // everything added by later features
void addHl7Commands(CommandTable& table);     // hl7 inspect, hl7 send
void addStatusCommands(CommandTable& table);  // status
void addCheckCommand(CommandTable& table);    // check
void addQueueCommands(CommandTable& table);   // queue ...
void addAdminCommands(CommandTable& table);   // audit verify, keys rotate, log level
void addBundleCommand(CommandTable& table);   // bundle
void addServiceCommands(CommandTable& table);  // service configure
void addKeyMoveCommands(CommandTable& table);  // keys export, keys import
void addDiscoverCommands(CommandTable& table);  // discover hl7, discover files
void addUpgradeCommands(CommandTable& table);   // upgrade status, rollback, apply
void addValidateCommand(CommandTable& table);   // validate (FHIR normalisation preview)

/// `pms-agent version --json`: version, build, compiler, library versions.
json::Value versionInfo();

}  // namespace psa::agent
