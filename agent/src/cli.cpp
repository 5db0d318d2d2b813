#include "psa/agent/cli.h"

#include <algorithm>
#include <iostream>
#include <set>
#include <sstream>

#include "command.h"
#include "psa/agent/config.h"
#include "psa/store/fatal.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

std::vector<std::string> splitWords(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

bool startsWith(const std::vector<std::string>& words, const std::vector<std::string>& prefix) {
  return words.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), words.begin());
}

std::string joinWords(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) {
    s += (s.empty() ? "" : " ") + w;
  }
  return s;
}

void printListing(std::ostream& out, const CommandTable& table, const std::vector<std::string>& group) {
  const std::string prefix = group.empty() ? "" : joinWords(group) + " ";
  out << "usage: pms-agent [--config FILE] " << prefix << "COMMAND [OPTIONS]\n\n";
  if (group.empty()) {
    out << "The Practice Studio Edge Agent: runs the service (`run`) and lets a technician\n"
           "inspect and fix it on site.\n\n";
  }
  out << "Commands:\n";
  size_t width = 0;
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& c : table.commands()) {
    auto words = splitWords(c.words);
    if (!startsWith(words, group)) {
      continue;
    }
    std::string label = c.words + (c.args.empty() ? "" : " " + c.args);
    width = std::max(width, label.size());
    rows.emplace_back(label, c.summary);
  }
  for (const auto& [label, summary] : rows) {
    out << "  " << label << std::string(width - label.size() + 3, ' ') << summary << "\n";
  }
  out << "\nEvery command takes --config FILE (default "
      << os::pathToUtf8(platformDefaults().config_file)
      << ", or $PMS_AGENT_CONFIG).\n"
         "Run `pms-agent "
      << prefix
      << "COMMAND --help` for details. Exit codes: 0 ok, 1 failure"
         " found, 2 usage error.\n";
}

}  // namespace

void CommandTable::add(Command command) { commands_.push_back(std::move(command)); }

int runCli(int argc, char** argv) {
  installFatalTerminateHandler();
  CommandTable table;
  addBasicCommands(table);
  addRunCommand(table);
  addFamilyCommands(table);

  std::vector<std::string> args(argv + 1, argv + argc);
  std::string config_option;
  bool help = false;
  std::vector<std::string> words;
  std::vector<std::string> rest;
  bool in_words = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        std::cerr << "pms-agent: --config needs a FILE\n";
        return kExitUsage;
      }
      config_option = args[++i];
      continue;
    }
    if (a.rfind("--config=", 0) == 0) {
      config_option = a.substr(9);
      continue;
    }
    if (a == "--help" || a == "-h") {
      help = true;
      continue;
    }
    if (in_words && !a.empty() && a[0] != '-') {
      auto candidate = words;
      candidate.push_back(a);
      bool known = std::any_of(table.commands().begin(), table.commands().end(),
                               [&](const Command& c) { return startsWith(splitWords(c.words), candidate); });
      if (known) {
        words = std::move(candidate);
        continue;
      }
      if (words.empty() && a == "help") {
        help = true;
        continue;
      }
    }
    in_words = false;
    rest.push_back(a);
  }

  const Command* command = nullptr;
  for (const auto& c : table.commands()) {
    if (splitWords(c.words) == words) {
      command = &c;
    }
  }
  if (command == nullptr) {
    if (!rest.empty() && !help) {
      std::cerr << "pms-agent: unknown command '" << joinWords(words) << (words.empty() ? "" : " ")
                << rest.front() << "'; see pms-agent " << joinWords(words)
                << (words.empty() ? "" : " ") << "--help\n";
      return kExitUsage;
    }
    printListing(help ? std::cout : std::cerr, table, words);
    return help ? kExitOk : kExitUsage;
  }

  po::options_description options("Options");
  options.add_options()("help,h", "show this help")("config,c", po::value<std::string>(),
                                                     "agent config file");
  po::positional_options_description positional;
  if (command->define) {
    command->define(options, positional);
  }
  auto usage = [&](std::ostream& out) {
    out << "usage: pms-agent " << command->words << (command->args.empty() ? "" : " " + command->args)
        << " [OPTIONS]\n\n"
        << command->summary << "\n";
    if (!command->help.empty()) {
      out << "\n" << command->help << "\n";
    }
    out << "\n" << options;
  };
  if (help) {
    usage(std::cout);
    return kExitOk;
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(rest).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pms-agent " << command->words << ": " << e.what() << "\n\n";
    usage(std::cerr);
    return kExitUsage;
  }
  // Technician commands keep stderr for their own messages; `run` sets the config's level.
  log::setLevel(log::Level::warn);
  CommandContext ctx{configPath(config_option), false, std::cout, std::cerr};
  ctx.config_given = !config_option.empty() || std::getenv("PMS_AGENT_CONFIG") != nullptr;
  // A command (the service included) that throws broke an invariant: one logged line with the
  // place, never the exception's text, and exit code 70 (fatal.h).
  std::string place = "cli." + command->words;
  std::replace(place.begin(), place.end(), ' ', '.');
  return guardInvariant(place, [&] { return command->run(vm, ctx); });
}

}  // namespace psa::agent
