// pms-cloud-sim: plays the Practice Studio cloud for development, tests and the quickstart.
//
//   pms-cloud-sim listen --url mqtts://localhost:8883 --ca ca.pem --cert cloud.pem --key cloud.key
//                        [--receipts] [--out received.jsonl] [--payloads] [--exit-after N]
//                        [--reports] [--reports-out reports.jsonl] ...
//   pms-cloud-sim keygen --out PREFIX
//   pms-cloud-sim push-config FILE --tenant T --agent A --key PREFIX.key [--version N] [--wait S]
//   ... pms-cloud-sim command NAME [KEY=VALUE...] --tenant T --agent A --key PREFIX.key [--wait S]
//   ... pms-cloud-sim write --target NAME --tenant T --agent A --key PREFIX.key [--wait S] ...
//
// New subcommands register in kCommands below.
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"

namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"listen", "receive agents' records (ps/+/+/up/#), verify, de-duplicate, send receipts",
     &psa::sim::runListen},
    {"keygen", "Ed25519 key pair for signing configs and commands (prints the key id)",
     &psa::sim::runKeygen},
    {"push-config",
     "sign a config document and publish it on P/config/set (--wait: print the answer)",
     &psa::sim::runPushConfig},
    {"command", "sign a command and publish it on P/cmd/NAME (--wait: print the result)",
     &psa::sim::runCommand},
    {"upgrade", "roll a package out: signed upgrade command, then chunks; print the stages",
     &psa::sim::runUpgrade},
    {"write", "sign a write-back request and publish it on P/down/KIND (--wait: print results)",
     &psa::sim::runWrite},
};

int usage(std::ostream& os, int code) {
  os << "usage: pms-cloud-sim COMMAND [options]   (COMMAND --help for its options)\n\ncommands:\n";
  for (const Command& c : kCommands) {
    os << "  " << c.name << "  " << c.summary << "\n";
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    return usage(std::cerr, 2);
  }
  const std::string_view name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    return usage(std::cout, 0);
  }
  for (const Command& c : kCommands) {
    if (c.name == name) {
      try {
        return c.run(std::vector<std::string>(argv + 2, argv + argc));
      } catch (const std::exception& e) {
        std::cerr << "pms-cloud-sim " << name << ": " << e.what() << "\n";
        return 1;
      }
    }
  }
  std::cerr << "pms-cloud-sim: unknown command '" << name << "'\n";
  return usage(std::cerr, 2);
}
