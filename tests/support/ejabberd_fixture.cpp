#include "ejabberd_fixture.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

namespace psa::test {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kErl = "/usr/bin/erl";
constexpr const char* kEpmd = "/usr/bin/epmd";
constexpr const char* kEjabberdctl = "/usr/sbin/ejabberdctl";
constexpr const char* kHost = "localhost";  // the ejabberd (XMPP) host: JIDs are <user>@localhost

/// The directory that holds ejabberd-<version>/ebin (what ejabberdctl puts in ERL_LIBS): read
/// from the installed ejabberdctl, else looked for under /usr/lib. Empty if not found.
std::string findErlLibs() {
  std::ifstream script(kEjabberdctl);
  std::string line;
  while (std::getline(script, line)) {
    const std::string key = "ERL_LIBS='";
    if (line.rfind(key, 0) == 0) {
      const std::string dir = line.substr(key.size(), line.find('\'', key.size()) - key.size());
      if (fs::is_directory(dir)) {
        return dir;
      }
    }
  }
  std::error_code ec;
  for (const fs::path& base : {fs::path("/usr/lib"), fs::path("/usr/local/lib")}) {
    std::vector<fs::path> candidates = {base};
    for (const auto& e : fs::directory_iterator(base, ec)) {
      if (e.is_directory(ec) && e.path().filename().string().find("-linux-") != std::string::npos) {
        candidates.push_back(e.path());
      }
    }
    for (const auto& dir : candidates) {
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().filename().string().rfind("ejabberd-", 0) == 0 &&
            fs::exists(e.path() / "ebin" / "ejabberd.app", ec)) {
          return dir.string();
        }
      }
    }
  }
  return {};
}

std::string randomCookie() {
  std::random_device rd;
  std::ostringstream s;
  s << "psa" << std::hex << rd() << rd();
  return s.str();
}

/// Parent pid of `pid` from /proc/<pid>/stat, and whether it is a zombie; -1 if it is gone.
pid_t parentOf(pid_t pid, bool* zombie = nullptr) {
  const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos || close + 4 >= stat.size()) {
    return -1;
  }
  std::istringstream rest(stat.substr(close + 2));
  char state = '?';
  pid_t ppid = -1;
  rest >> state >> ppid;
  if (zombie != nullptr) {
    *zombie = state == 'Z';
  }
  return ppid;
}

/// Every process below `root` (children, grandchildren, ...), from /proc.
std::vector<pid_t> descendantsOf(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      const long pid = std::strtol(e->d_name, &end, 10);
      if (pid > 0 && end != nullptr && *end == '\0') {
        const pid_t ppid = parentOf(static_cast<pid_t>(pid));
        if (ppid > 0) {
          children.emplace(ppid, static_cast<pid_t>(pid));
        }
      }
    }
    closedir(d);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    auto [begin, end] = children.equal_range(p);
    for (auto it = begin; it != end; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

/// True while `pid` exists and is not a zombie waiting for its (new) parent to reap it.
bool alive(pid_t pid) {
  bool zombie = false;
  return parentOf(pid, &zombie) >= 0 && !zombie;
}

std::string ctlName() {
  static std::atomic<unsigned> seq{0};
  return "psactl" + std::to_string(getpid()) + "x" + std::to_string(seq++) + "@" + kHost;
}

}  // namespace

std::string EjabberdCluster::unavailableReason() {
  if (!fs::exists(kErl) || !fs::exists(kEpmd)) {
    return "erl/epmd missing: install Debian's ejabberd package (it pulls in erlang-base)";
  }
  if (findErlLibs().empty()) {
    return "ejabberd is not installed (Debian package ejabberd)";
  }
  return {};
}

EjabberdCluster::EjabberdCluster(EjabberdOptions options) : options_(std::move(options)) {
  const std::string missing = unavailableReason();
  if (!missing.empty()) {
    throw std::runtime_error(missing);
  }
  erl_libs_ = findErlLibs();
  cookie_ = randomCookie();
  fs::create_directories(options_.dir);
  for (size_t k = 0; k < std::max<size_t>(options_.nodes, 1); ++k) {
    Node n;
    n.name = "ejabberd" + std::to_string(k + 1) + "@" + kHost;
    n.port = freePort();
    n.dir = options_.dir / ("ejabberd" + std::to_string(k + 1));
    n.config = n.dir / "ejabberd.yml";
    n.spool = n.dir / "spool";
    n.log_file = n.dir / "logs" / "ejabberd.log";
    n.out_file = n.dir / "console.out";
    fs::create_directories(n.spool);
    fs::create_directories(n.log_file.parent_path());
    writeConfig(n);
    nodes_.push_back(std::move(n));
  }

  // A private epmd in the foreground (a child we can kill), on loopback and a free port; the
  // nodes are told not to start one of their own.
  epmd_port_ = freePort();
  Process::Options e;
  e.argv = {kEpmd, "-port", std::to_string(epmd_port_), "-address", "127.0.0.1"};
  e.stdout_file = options_.dir / "epmd.out";
  epmd_ = std::make_unique<Process>(std::move(e));
  if (!waitFor([&] { return !epmd_->running() || canConnect("127.0.0.1", epmd_port_); }, 10s) ||
      !epmd_->running()) {
    fail("epmd did not start: " + readFile(options_.dir / "epmd.out"));
  }

  // Start every node at once (each takes a few seconds of CPU), then wait for all.
  for (auto& n : nodes_) {
    launch(n);
  }
  for (auto& n : nodes_) {
    waitStarted(n, 0, 60s);
  }
  join();
}

std::unique_ptr<EjabberdCluster> EjabberdCluster::withMaterial(const TlsMaterial& tls,
                                                               const fs::path& dir,
                                                               EjabberdOptions overrides) {
  overrides.dir = dir;
  if (overrides.cafile.empty()) {
    overrides.cafile = tls.ca().cert;
  }
  if (overrides.certfile.empty()) {
    overrides.certfile = tls.server().cert;
    overrides.keyfile = tls.server().key;
  }
  return std::make_unique<EjabberdCluster>(std::move(overrides));
}

EjabberdCluster::~EjabberdCluster() { killAll(); }

void EjabberdCluster::killAll() noexcept {
  for (size_t k = 0; k < nodes_.size(); ++k) {
    try {
      kill(k);
    } catch (const std::exception&) {
      // A port program that outlives its node for 10 s: nothing more to do here.
    }
  }
  if (epmd_) {
    epmd_->kill();
  }
}

std::string EjabberdCluster::nodeName(size_t node) const { return nodes_.at(node).name; }

int EjabberdCluster::port(size_t node) const { return nodes_.at(node).port; }

std::string EjabberdCluster::url(size_t node) const {
  return "mqtts://localhost:" + std::to_string(port(node));
}

std::vector<std::string> EjabberdCluster::urls() const {
  std::vector<std::string> out;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    out.push_back(url(k));
  }
  return out;
}

int EjabberdCluster::nodeOf(const std::string& u) const {
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (url(k) == u) {
      return static_cast<int>(k);
    }
  }
  return -1;
}

bool EjabberdCluster::running(size_t node) {
  auto& p = nodes_.at(node).process;
  return p && p->running();
}

pid_t EjabberdCluster::pid(size_t node) const {
  const auto& p = nodes_.at(node).process;
  return p ? p->pid() : -1;
}

const fs::path& EjabberdCluster::logFile(size_t node) const { return nodes_.at(node).log_file; }

std::string EjabberdCluster::log(size_t node) const { return readFile(logFile(node)); }

void EjabberdCluster::writeConfig(const Node& n) const {
  std::ofstream c(n.config, std::ios::trunc);
  c << "# Written by psa::test::EjabberdCluster for " << n.name << "\n"
    << "hosts:\n  - " << kHost << "\n"
    << "loglevel: " << (options_.debug_log ? "debug" : "info") << "\n"
    << "log_rotate_count: 0\n"
    // The broker certificate and key (ejabberd picks the certificate for the host), the CA that
    // signed it (so it validates), and the CA client certificates are verified against.
    << "certfiles:\n"
    << "  - \"" << options_.certfile.string() << "\"\n"
    << "  - \"" << options_.keyfile.string() << "\"\n"
    << "ca_file: \"" << options_.cafile.string() << "\"\n"
    << "c2s_cafile: \"" << options_.cafile.string() << "\"\n"
    << "listen:\n"
    << "  -\n"
    << "    port: " << n.port << "\n"
    << "    ip: \"127.0.0.1\"\n"
    << "    module: mod_mqtt\n"
    << "    backlog: 1024\n"
    << "    tls: true\n"
    << "    tls_verify: " << (options_.certificate_auth ? "true" : "false") << "\n";
  for (const auto& line : options_.listener_options) {
    c << "    " << line << "\n";
  }
  c << "acl:\n  cloud:\n    user:\n";
  for (const auto& id : options_.cloud_identities) {
    c << "      - \"" << id << "\"\n";
  }
  c << "access_rules:\n  cloud_only:\n    allow: cloud\n"
    << "modules:\n"
    << "  mod_mqtt:\n"
    << "    session_expiry: " << options_.session_expiry.count()
    << "\n"
    // Topic rules (acl:match_rule on access rule names): %u is the client's user name.
    << "    access_publish:\n"
    << "      \"ps/+/%u/#\": all\n"
    << "      \"ps/#\": cloud_only\n"
    << "    access_subscribe:\n"
    << "      \"ps/+/%u/#\": all\n"
    << "      \"ps/#\": cloud_only\n";
  for (const auto& line : options_.mqtt_options) {
    c << "    " << line << "\n";
  }
}

void EjabberdCluster::launch(Node& n) {
  // What `ejabberdctl foreground` runs, without its su to the ejabberd user and without the
  // system's config, spool and log paths.
  Process::Options p;
  p.argv = {kErl,
            "-sname",
            n.name,
            "-setcookie",
            cookie_,
            "-start_epmd",
            "false",
            "-noinput",
            "-noshell",
            "-kernel",
            "inet_dist_use_interface",
            "{127,0,0,1}",
            "-mnesia",
            "dir",
            "\"" + n.spool.string() + "\"",
            "-s",
            "ejabberd"};
  p.env = {{"ERL_EPMD_PORT", std::to_string(epmd_port_)},
           {"ERL_LIBS", erl_libs_},
           {"EJABBERD_CONFIG_PATH", n.config.string()},
           {"EJABBERD_LOG_PATH", n.log_file.string()},
           {"ERL_CRASH_DUMP", (n.dir / "erl_crash.dump").string()},
           {"ERL_CRASH_DUMP_BYTES", "0"},
           {"HOME", n.dir.string()}};
  p.stdout_file = n.out_file;
  p.cwd = n.spool;
  n.process = std::make_unique<Process>(std::move(p));
}

void EjabberdCluster::waitStarted(Node& n, size_t log_offset, std::chrono::milliseconds timeout) {
  const std::string listening =
      "Start accepting TLS connections at 127.0.0.1:" + std::to_string(n.port) + " for mod_mqtt";
  const bool ok = waitFor(
      [&] {
        if (!n.process->running()) {
          return true;
        }
        const std::string text = readFile(n.log_file);
        const std::string_view fresh =
            log_offset < text.size() ? std::string_view(text).substr(log_offset) : "";
        return fresh.find("is started in the node") != std::string_view::npos &&
               fresh.find(listening) != std::string_view::npos && canConnect("127.0.0.1", n.port);
      },
      timeout);
  if (!ok || !n.process->running()) {
    fail(n.name + (n.process->running() ? " did not start within the deadline" : " exited"));
  }
}

std::vector<std::string> EjabberdCluster::clusterView(size_t node) const {
  const CommandResult r = ctl(node, {"list_cluster"}, 30s);
  std::vector<std::string> out;
  if (r.exit_code != 0) {
    return out;
  }
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool EjabberdCluster::viewIsComplete(size_t node) {
  std::vector<std::string> want;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (running(k)) {
      want.push_back(nodes_[k].name);
    }
  }
  std::sort(want.begin(), want.end());
  return clusterView(node) == want;
}

void EjabberdCluster::join() {
  for (size_t k = 1; k < nodes_.size(); ++k) {
    Node& n = nodes_[k];
    // join_cluster restarts ejabberd on the joining node (its mnesia takes the cluster's
    // schema): wait for its second "started" and its listener again.
    const size_t offset = readFile(n.log_file).size();
    const CommandResult r = ctl(k, {"join_cluster", nodes_[0].name}, 60s);
    if (r.exit_code != 0) {
      fail(n.name + " join_cluster " + nodes_[0].name + " failed (" + std::to_string(r.exit_code) +
           "): " + r.output);
    }
    waitStarted(n, offset, 60s);
  }
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (!waitFor([&] { return viewIsComplete(k); }, 30s)) {
      fail(nodes_[k].name + " does not list every node in its cluster");
    }
  }
  joined_ = true;
}

void EjabberdCluster::kill(size_t node) {
  Node& n = nodes_.at(node);
  if (!n.process || !n.process->running()) {
    return;
  }
  // The whole node at once: beam.smp (our child) and what it started (erl_child_setup, which
  // runs each port program such as eimp and inet_gethost in a session of its own).
  const std::vector<pid_t> family = descendantsOf(n.process->pid());
  ::kill(n.process->pid(), SIGKILL);
  for (const pid_t p : family) {
    ::kill(p, SIGKILL);
  }
  n.process->kill();  // reaps it
  if (!waitFor(
          [&] {
            return std::none_of(family.begin(), family.end(), [](pid_t p) { return alive(p); });
          },
          10s)) {
    throw std::runtime_error(n.name + ": processes of the killed node are still running");
  }
}

void EjabberdCluster::start(size_t node) {
  Node& n = nodes_.at(node);
  if (running(node)) {
    return;
  }
  const size_t offset = readFile(n.log_file).size();
  launch(n);
  waitStarted(n, offset, 60s);
  if (joined_ && !waitFor([&] { return viewIsComplete(node); }, 30s)) {
    fail(n.name + " did not rejoin the cluster");
  }
}

CommandResult EjabberdCluster::ctl(size_t node, const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {
      kErl,          "-sname",       ctlName(), "-setcookie",        cookie_,
      "-start_epmd", "false",        "-hidden", "-noinput",          "-noshell",
      "-s",          "ejabberd_ctl", "-extra",  nodes_.at(node).name};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, timeout,
                    {{"ERL_EPMD_PORT", std::to_string(epmd_port_)},
                     {"ERL_LIBS", erl_libs_},
                     {"ERL_CRASH_DUMP_BYTES", "0"},
                     {"HOME", options_.dir.string()}});
}

void EjabberdCluster::registerUser(const std::string& user, const std::string& password) {
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (!running(k)) {
      continue;
    }
    const CommandResult r = ctl(k, {"register", user, kHost, password});
    if (r.exit_code != 0) {
      throw std::runtime_error("ejabberdctl register " + user + " failed (" +
                               std::to_string(r.exit_code) + "): " + r.output);
    }
    return;
  }
  throw std::runtime_error("registerUser: no ejabberd node is running");
}

std::string EjabberdCluster::tail(const fs::path& file, size_t lines) const {
  const std::string text = readFile(file);
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') {
    --pos;
  }
  size_t seen = 0;
  while (pos > 0 && !(text[pos - 1] == '\n' && ++seen == lines)) {
    --pos;
  }
  return text.substr(pos);
}

std::string EjabberdCluster::logTails(size_t lines) {
  std::string out;
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const Node& n = nodes_[k];
    out += "---- " + n.name + " (" + url(k) + ", " + (running(k) ? "running" : "not running") +
           ") log tail:\n" + tail(n.log_file, lines);
    const std::string console = tail(n.out_file, 10);
    if (!console.empty()) {
      out += "---- " + n.name + " console tail:\n" + console;
    }
  }
  return out;
}

void EjabberdCluster::fail(const std::string& what) {
  const std::string message = "ejabberd cluster: " + what + "\n" + logTails();
  killAll();
  throw std::runtime_error(message);
}

}  // namespace psa::test
