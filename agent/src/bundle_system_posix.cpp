// The system part of a support bundle on Linux: uname, /etc/os-release, the journal.
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include "bundle_system.h"
#include "cli_support.h"
#include "command_output.h"
#include "psa/store/clock.h"

namespace psa::agent {

std::string systemInfo() {
  std::ostringstream s;
  utsname u{};
  if (::uname(&u) == 0) {
    s << "kernel      " << u.sysname << " " << u.release << " " << u.version << " " << u.machine
      << "\n";
    s << "hostname    " << u.nodename << "\n";
  }
  std::ifstream os("/etc/os-release");
  for (std::string line; std::getline(os, line);) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      s << "os          " << line.substr(12) << "\n";
    }
  }
  std::ifstream up("/proc/uptime");
  double uptime = 0;
  if (up >> uptime) {
    s << "uptime      " << humanSeconds(uptime) << "\n";
  }
  s << "time        " << formatRfc3339(Clock::system()->nowMs()) << "\n";
  s << "cli uid     " << ::geteuid() << "\n";
  return s.str();
}

ServiceLogExtract serviceLogExtract(size_t lines) {
  if (::access("/usr/bin/journalctl", X_OK) != 0) {
    return {};
  }
  return {"journal.txt", commandOutput({"/usr/bin/journalctl", "-u", "pms-agent", "-n",
                                        std::to_string(lines), "--no-pager", "-o", "short-iso"},
                                       std::chrono::seconds(10), 8u << 20)};
}

}  // namespace psa::agent
