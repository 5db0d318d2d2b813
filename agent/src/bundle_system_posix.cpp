// The system part of a support bundle on Linux: uname, /etc/os-release, the journal.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

#include "bundle_system.h"
#include "cli_support.h"
#include "psa/store/clock.h"

namespace psa::agent {
namespace {

// Runs argv with a deadline and returns its stdout (empty on any failure).
std::string runCapture(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                       size_t max_bytes) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return {};
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {};
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (out.size() < max_bytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return out;
}

}  // namespace

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
  return {"journal.txt", runCapture({"/usr/bin/journalctl", "-u", "pms-agent", "-n",
                                     std::to_string(lines), "--no-pager", "-o", "short-iso"},
                                    std::chrono::seconds(10), 8u << 20)};
}

}  // namespace psa::agent
