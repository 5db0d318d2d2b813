// Helpers for tests and benchmarks: real temp dirs, real child processes, free ports,
// condition waits with deadlines (no fixed sleeps), file scans for PHI markers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace psa::test {

/// A fresh directory under $TMPDIR (or /tmp), removed on destruction unless PSA_KEEP_TMP=1.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "psa-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// A child process started with fork/exec; stdout and stderr go to files. Killed (SIGKILL)
/// on destruction if still running.
class Process {
 public:
  struct Options {
    std::vector<std::string> argv;
    std::map<std::string, std::string> env;  ///< added to the inherited environment
    std::filesystem::path stdout_file;       ///< default: /dev/null
    std::filesystem::path stderr_file;       ///< default: same as stdout_file
    std::filesystem::path cwd;
    std::optional<std::string> stdin_data;  ///< written to the child's stdin, then closed
  };
  explicit Process(Options options);
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&&) = delete;
  Process(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  /// Sends `sig` (SIGTERM, SIGKILL, SIGSTOP, ...).
  void signal(int sig);
  /// Waits up to `timeout` for exit; returns the exit status (128+signal if killed) or
  /// nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  /// SIGKILL and reap.
  void kill();

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

/// Another program (python3) listening on 127.0.0.1:`port` for two minutes, as a PMS interface
/// engine holding the MLLP port would. Not connectable at once: wait with canConnect().
Process holdTcpPort(int port);

/// Runs a command to completion; returns exit code and captures combined output.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult runCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::map<std::string, std::string>& env = {},
                         const std::optional<std::string>& stdin_data = std::nullopt);

/// Polls `condition` every few ms until true or the deadline passes.
bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

/// A TCP port on 127.0.0.1 that was free a moment ago.
int freePort();
/// True once something accepts TCP connections on host:port.
bool canConnect(const std::string& host, int port);

std::string readFile(const std::filesystem::path& path);
void writeFile(const std::filesystem::path& path, std::string_view data);
/// Every regular file under `root` (recursive) whose bytes contain `needle`.
std::vector<std::filesystem::path> filesContaining(const std::filesystem::path& root,
                                                   std::string_view needle);

/// Path of a built program (build/bin/NAME).
std::filesystem::path binary(std::string_view name);
/// True for a Windows test program running under Wine (tests/windows/README.md lists what Wine
/// does differently from Windows); false everywhere else.
bool runningUnderWine();
/// Sets (or, with an empty value, removes) a variable of this process's environment; children
/// started afterwards (death-test children, Process) inherit it.
void setEnvironment(const std::string& name, const std::string& value);

/// A unique marker string for PHI tests, e.g. "PHIMARK7f3a9c1e".
std::string uniqueMarker();

}  // namespace psa::test
