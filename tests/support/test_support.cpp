#include "test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace psa::test {
namespace fs = std::filesystem;

namespace {
std::string randomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(hex[rng() % 16]);
  }
  return s;
}
}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  fs::path root = base != nullptr ? base : "/tmp";
  for (int i = 0; i < 100; ++i) {
    fs::path p = root / (std::string(prefix) + "-" + randomHex(10));
    std::error_code ec;
    if (fs::create_directory(p, ec)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create temp dir");
}

TempDir::~TempDir() {
  const char* keep = std::getenv("PSA_KEEP_TMP");
  if (keep != nullptr && std::string(keep) == "1") {
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

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
    const std::string out = options.stdout_file.empty() ? "/dev/null" : options.stdout_file.string();
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

bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(1);
  while (true) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
}

int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool canConnect(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const fs::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<fs::path> filesContaining(const fs::path& root, std::string_view needle) {
  std::vector<fs::path> hits;
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    if (readFile(root).find(needle) != std::string::npos) {
      hits.push_back(root);
    }
    return hits;
  }
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) {
      break;
    }
    if (it->is_regular_file(ec) && readFile(it->path()).find(needle) != std::string::npos) {
      hits.push_back(it->path());
    }
  }
  return hits;
}

fs::path binary(std::string_view name) { return fs::path(PSA_BIN_DIR) / name; }

std::string uniqueMarker() { return "PHIMARK" + randomHex(12); }

}  // namespace psa::test
