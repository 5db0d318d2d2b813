// Child processes for tests (fork/exec): POSIX only, like the integration tests that use them.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "test_support.h"

namespace psa::test {
namespace fs = std::filesystem;

Process::Process(Options options) {
  int in_pipe[2] = {-1, -1};
  if (options.stdin_data && pipe(in_pipe) != 0) {
    throw std::runtime_error("pipe failed");
  }
  pid_ = fork();
  if (pid_ < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    setpgid(0, 0);
    if (options.stdin_data) {
      dup2(in_pipe[0], 0);
      close(in_pipe[0]);
      close(in_pipe[1]);
    } else {
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      close(devnull);
    }
    const std::string out =
        options.stdout_file.empty() ? "/dev/null" : options.stdout_file.string();
    const std::string err = options.stderr_file.empty() ? out : options.stderr_file.string();
    int ofd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int efd = err == out ? ofd : open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(ofd, 1);
    dup2(efd, 2);
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) {
      _exit(126);
    }
    for (const auto& [k, v] : options.env) {
      setenv(k.c_str(), v.c_str(), 1);
    }
    std::vector<char*> args;
    for (auto& a : options.argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (options.stdin_data) {
    close(in_pipe[0]);
    const std::string& data = *options.stdin_data;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(in_pipe[1], data.data() + off, data.size() - off);
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    close(in_pipe[1]);
  }
}

Process::Process(Process&& other) noexcept : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    kill();
  }
}

bool Process::running() {
  if (pid_ <= 0 || status_) {
    return false;
  }
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, sig);
  }
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status_;
}

void Process::kill() {
  if (pid_ <= 0 || status_) {
    return;
  }
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

CommandResult runCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string>& env,
                         const std::optional<std::string>& stdin_data) {
  TempDir tmp("psa-cmd");
  Process::Options opts;
  opts.argv = argv;
  opts.env = env;
  opts.stdout_file = tmp / "out";
  opts.stdin_data = stdin_data;
  Process p(std::move(opts));
  CommandResult r;
  auto st = p.wait(timeout);
  if (!st) {
    p.kill();
    r.exit_code = -1;
  } else {
    r.exit_code = *st;
  }
  r.output = readFile(tmp / "out");
  return r;
}

Process holdTcpPort(int port) {
  Process::Options po;
  po.argv = {"/usr/bin/python3", "-c",
             "import socket, time\n"
             "s = socket.socket()\n"
             "s.bind(('127.0.0.1', " +
                 std::to_string(port) +
                 "))\n"
                 "s.listen()\n"
                 "time.sleep(120)\n"};
  return Process(std::move(po));
}

}  // namespace psa::test
