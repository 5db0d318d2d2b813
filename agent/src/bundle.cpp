#include "bundle.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include "cli_support.h"
#include "psa/store/clock.h"
#include "status_document.h"

namespace psa::agent {
namespace {

namespace fs = std::filesystem;

std::string pretty(const json::Value& v) { return json::serialize(v, true) + "\n"; }

// The last `n` lines of a text file (reads at most the last 4 MB).
std::vector<std::string> tailFile(const fs::path& file, size_t n) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return {};
  }
  in.seekg(0, std::ios::end);
  const auto size = static_cast<int64_t>(in.tellg());
  const int64_t start = std::max<int64_t>(0, size - (4 << 20));
  in.seekg(start);
  std::deque<std::string> lines;
  std::string line;
  bool first = start > 0;  // a partial first line is dropped
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      continue;
    }
    lines.push_back(std::move(line));
    if (lines.size() > n) {
      lines.pop_front();
    }
  }
  return {lines.begin(), lines.end()};
}

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

std::string systemInfo() {
  std::ostringstream s;
  utsname u{};
  if (::uname(&u) == 0) {
    s << "kernel      " << u.sysname << " " << u.release << " " << u.version << " " << u.machine << "\n";
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

std::string stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

std::vector<ArchiveFile> collectBundle(CommandContext& ctx, const BundleOptions& o,
                                       std::vector<std::string>& notes) {
  std::vector<ArchiveFile> files;
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = loadConfig(ctx.config_path, registry);
  const std::string agent_id = load.config ? load.config->agent_id : "unknown";
  const std::string dir = "pms-agent-bundle-" + agent_id + "-" + stamp() + "/";
  auto add = [&](const std::string& name, std::string data) {
    files.push_back(ArchiveFile{dir + name, std::move(data), 0600});
  };

  add("version.json", pretty(versionInfo()));
  add("system.txt", systemInfo());

  // Checks first: they also say what is wrong when the rest cannot be collected.
  CheckReport checks = runChecks(ctx.config_path, o.checks);
  add("check.txt", checkReportText(checks));
  add("check.json", pretty(checkReportJson(checks)));

  if (!load.config) {
    std::string problems = load.fatal.empty() ? "" : load.fatal + "\n";
    for (const auto& i : load.issues) {
      problems += ctx.config_path.string() + ":" + std::to_string(i.line) + ":" +
                  std::to_string(i.column) + ": " + (i.path.empty() ? "" : i.path + ": ") +
                  i.message + "\n";
    }
    add("config-problems.txt", problems);
    notes.push_back("the config is invalid: only version, system and check results are included");
    return files;
  }
  const Config& cfg = *load.config;
  add("config.json", pretty(maskedConfig(cfg, registry)));

  std::ostringstream quiet;
  CommandContext sub{ctx.config_path, ctx.config_given, quiet, quiet};
  json::Value status;
  bool running = false;
  if (fetchStatus(sub, cfg, status, running, true)) {
    add("status.json", pretty(status));
    std::ostringstream text;
    renderStatus(text, status);
    add("status.txt", text.str());
  } else {
    notes.push_back("status: " + quiet.str());
  }
  if (!running) {
    notes.push_back("the agent was not running: status, queue and audit come from its files");
  }

  json::Value args = json::Value::object();
  ControlResponse stats =
      readFromAgentOrFiles(sub, cfg, "queue.stats", json::Value::object(), &queueStatsOp);
  if (stats.ok) {
    add("queue-stats.json", pretty(stats.result));
  } else {
    notes.push_back("queue stats: " + stats.error);
  }
  json::Value dead_args = json::Value::object();
  dead_args.set("dead", json::Value::boolean(true));
  dead_args.set("limit", json::Value::integer(static_cast<int64_t>(std::min<size_t>(o.dead_letters, 1000))));
  ControlResponse dead = readFromAgentOrFiles(sub, cfg, "queue.list", dead_args, &queueListOp);
  if (dead.ok) {
    add("dead-letters.json", pretty(dead.result));
  }

  ControlResponse verify =
      readFromAgentOrFiles(sub, cfg, "audit.verify", json::Value::object(), &auditVerifyOp);
  if (verify.ok) {
    add("audit-verify.json", pretty(verify.result));
    json::Value a = json::Value::object();
    const int64_t last = verify.result.getInt("last_seq");
    a.set("after", json::Value::integer(std::max<int64_t>(0, last - static_cast<int64_t>(o.audit_entries))));
    a.set("limit", json::Value::integer(static_cast<int64_t>(std::min<size_t>(o.audit_entries, 1000))));
    ControlResponse entries = readFromAgentOrFiles(sub, cfg, "audit.entries", a, &auditEntriesOp);
    if (entries.ok) {
      add("audit-recent.json", pretty(entries.result));
    }
  } else {
    notes.push_back("audit: " + verify.error);
  }

  // Logs: the agent's own recent lines, else the log file.
  std::string log_text;
  if (running) {
    json::Value la = json::Value::object();
    la.set("lines", json::Value::integer(static_cast<int64_t>(std::min<size_t>(o.log_lines, 2000))));
    AgentReply lr = askAgent(cfg, "log.recent", la);
    if (lr.reach == AgentReach::answered && lr.response.ok) {
      for (const auto& l : lr.response.result.find("lines")->items()) {
        log_text += l.asString() + "\n";
      }
    }
  }
  if (log_text.empty() && !cfg.log_file.empty()) {
    for (const auto& l : tailFile(cfg.log_file, o.log_lines)) {
      log_text += l + "\n";
    }
  }
  if (!log_text.empty()) {
    add("log.txt", log_text);
  } else {
    notes.push_back("no log lines: the agent is not running and agent.log_file is not set (see "
                    "journal.txt)");
  }
  if (o.journal && ::access("/usr/bin/journalctl", X_OK) == 0) {
    std::string journal = runCapture({"/usr/bin/journalctl", "-u", "pms-agent", "-n",
                                      std::to_string(o.log_lines), "--no-pager", "-o", "short-iso"},
                                     std::chrono::seconds(10), 8u << 20);
    if (!journal.empty()) {
      add("journal.txt", journal);
    }
  }

  std::string readme =
      "Support bundle of the Practice Studio Edge Agent " + agent_id + "\n"
      "Created " + formatRfc3339(Clock::system()->nowMs()) + " from " + ctx.config_path.string() +
      "\n\nIt holds no patient data: payloads are never read, logs carry ids and counts only,\n"
      "and secrets in the config are masked.\n\nFiles:\n";
  for (const auto& f : files) {
    readme += "  " + f.name.substr(dir.size()) + "\n";
  }
  if (!notes.empty()) {
    readme += "\nNotes:\n";
    for (const auto& n : notes) {
      readme += "  - " + n + "\n";
    }
  }
  files.insert(files.begin(), ArchiveFile{dir + "README.txt", readme, 0600});
  return files;
}

Status writeBundle(const fs::path& out, const std::vector<ArchiveFile>& files) {
  const int64_t now_s = Clock::system()->nowMs() / 1000;
  auto tar = tarArchive(files, now_s);
  if (!tar) {
    return tar.error();
  }
  const std::string gz = gzipStored(*tar, now_s);
  fs::path tmp = out;
  tmp += ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Error(Errc::io, "cannot create " + tmp.string() + ": " + std::strerror(errno));
  }
  size_t off = 0;
  while (off < gz.size()) {
    const ssize_t n = ::write(fd, gz.data() + off, gz.size() - off);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Error(Errc::io, "cannot write " + tmp.string() + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Error(Errc::io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error(Errc::io, "cannot move the bundle to " + out.string() + ": " + std::strerror(err));
  }
  return {};
}

}  // namespace psa::agent
