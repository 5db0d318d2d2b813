// commandOutput and runProgram on POSIX: fork, exec, read through a pipe until the deadline.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "command_output.h"

namespace psa::agent {

namespace {

using Clock = std::chrono::steady_clock;

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
};

// Starts argv in its own process group with stdout (and stderr if `with_stderr`) on a pipe.
Child spawn(const std::vector<std::string>& argv, bool with_stderr, const std::string& cwd) {
  int fds[2];
  if (argv.empty() || ::pipe2(fds, O_CLOEXEC) != 0) {
    return {};
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {};
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      ::_exit(127);
    }
    ::dup2(fds[1], STDOUT_FILENO);
    const int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, STDIN_FILENO);
    ::dup2(with_stderr ? fds[1] : devnull, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  return Child{pid, fds[0]};
}

// Reads until EOF, `max_bytes` or the deadline; true when EOF was reached.
bool drain(int fd, Clock::time_point deadline, size_t max_bytes, std::string& out) {
  char buf[65536];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) {
      return true;
    }
    if (n < 0) {
      return false;
    }
    // Past max_bytes the rest is read and dropped, so the child never blocks on a full pipe.
    if (out.size() < max_bytes) {
      out.append(buf, std::min(static_cast<size_t>(n), max_bytes - out.size()));
    }
  }
}

// Kills the child and whatever it started (its process group; the child itself too, in case it
// had not yet made the group).
void killTree(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
}

}  // namespace

std::string commandOutput(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          size_t max_bytes) {
  const Child c = spawn(argv, false, {});
  if (c.pid < 0) {
    return {};
  }
  std::string out;
  drain(c.out_fd, Clock::now() + timeout, max_bytes, out);
  ::close(c.out_fd);
  killTree(c.pid);
  int st = 0;
  ::waitpid(c.pid, &st, 0);
  return out;
}

ProgramRun runProgram(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                      size_t max_bytes, const std::string& cwd) {
  ProgramRun run;
  const Child c = spawn(argv, true, cwd);
  if (c.pid < 0) {
    return run;
  }
  run.started = true;
  const auto deadline = Clock::now() + timeout;
  drain(c.out_fd, deadline, max_bytes, run.output);
  ::close(c.out_fd);
  int st = 0;
  for (;;) {
    const pid_t r = ::waitpid(c.pid, &st, WNOHANG);
    if (r == c.pid) {
      break;
    }
    if (r < 0 || Clock::now() >= deadline) {
      run.timed_out = r >= 0;
      killTree(c.pid);
      ::waitpid(c.pid, &st, 0);
      return run;
    }
    ::usleep(20'000);
  }
  if (WIFEXITED(st)) {
    run.exit_code = WEXITSTATUS(st);
    run.started = run.exit_code != 127 || !run.output.empty();
  }
  return run;
}

}  // namespace psa::agent
