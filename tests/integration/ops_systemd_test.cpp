// Service integration: the unit file passes `systemd-analyze verify`, rates 2.0 or better in
// `systemd-analyze security --offline=true` and has the directives the issue requires; the real
// `pms-agent run` speaks sd_notify (READY, STATUS, WATCHDOG pings, STOPPING) over
// $NOTIFY_SOCKET.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kUnit = fs::path(PSA_SOURCE_DIR) / "systemd" / "pms-agent.service";

std::string systemdAnalyze() {
  for (const char* p : {"/usr/bin/systemd-analyze", "/bin/systemd-analyze"}) {
    if (::access(p, X_OK) == 0) {
      return p;
    }
  }
  return {};
}

// key -> every value it has in [Service] (keys may repeat).
std::multimap<std::string, std::string> serviceSection(const std::string& text) {
  std::multimap<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  bool service = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    if (line[0] == '[') {
      service = line == "[Service]";
      continue;
    }
    auto eq = line.find('=');
    if (service && eq != std::string::npos) {
      out.emplace(line.substr(0, eq), line.substr(eq + 1));
    }
  }
  return out;
}

TEST(OpsSystemd, UnitHasTheRequiredDirectives) {
  const auto s = serviceSection(readFile(kUnit));
  auto one = [&](const std::string& key) {
    auto range = s.equal_range(key);
    EXPECT_EQ(std::distance(range.first, range.second), 1) << key;
    return range.first == range.second ? std::string() : range.first->second;
  };
  EXPECT_EQ(one("Type"), "notify");
  EXPECT_EQ(one("Restart"), "on-failure");
  EXPECT_EQ(one("User"), "pms-agent");
  EXPECT_EQ(one("Group"), "pms-agent");
  EXPECT_EQ(one("StateDirectory"), "pms-agent");
  EXPECT_EQ(one("RuntimeDirectory"), "pms-agent");
  EXPECT_EQ(one("ConfigurationDirectory"), "pms-agent");
  EXPECT_EQ(one("NoNewPrivileges"), "yes");
  EXPECT_EQ(one("ProtectSystem"), "strict");
  EXPECT_EQ(one("ProtectHome"), "yes");
  EXPECT_EQ(one("PrivateTmp"), "yes");
  EXPECT_EQ(one("PrivateDevices"), "yes");
  EXPECT_EQ(one("RestrictAddressFamilies"), "AF_UNIX AF_INET AF_INET6");
  EXPECT_EQ(one("CapabilityBoundingSet"), "CAP_NET_BIND_SERVICE");
  EXPECT_FALSE(one("WatchdogSec").empty());
  EXPECT_EQ(one("ExecStart"), "/usr/bin/pms-agent run --config /etc/pms-agent/agent.json");
  std::set<std::string> filters;
  for (auto [it, end] = s.equal_range("SystemCallFilter"); it != end; ++it) {
    filters.insert(it->second);
  }
  EXPECT_TRUE(filters.count("@system-service")) << "SystemCallFilter=@system-service missing";
}

TEST(OpsSystemd, UnitVerifiesAndRatesTwoOrBetter) {
  const std::string analyze = systemdAnalyze();
  if (analyze.empty()) {
    GTEST_SKIP() << "systemd-analyze is not installed (Debian package 'systemd'; "
                    "packaging/install-deps.sh installs it)";
  }
  TempDir tmp("psa-unit");
  // verify checks that ExecStart exists: point it at the built binary, nothing else changes.
  std::string text = readFile(kUnit);
  const std::string exec = "/usr/bin/pms-agent";
  text.replace(text.find(exec), exec.size(), binary("pms-agent").string());
  const fs::path unit = tmp / "pms-agent.service";
  writeFile(unit, text);

  auto v = runCommand({analyze, "verify", "--man=no", unit.string()});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_EQ(v.output, "") << "systemd-analyze verify complained";

  auto sec = runCommand({analyze, "security", "--offline=true", "--no-pager", unit.string()});
  EXPECT_EQ(sec.exit_code, 0) << sec.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(sec.output, m,
                                std::regex("Overall exposure level for pms-agent.service: ([0-9.]+)")))
      << sec.output;
  const double score = std::stod(m[1]);
  std::printf("systemd-analyze security --offline=true: exposure %.1f\n", score);
  EXPECT_LE(score, 2.0) << sec.output;
}

class NotifySocket {
 public:
  explicit NotifySocket(fs::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("bind notify socket");
    }
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }
  // Reads every datagram that arrives within the poll interval.
  void drain() {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) {
      messages.emplace_back(buf, static_cast<size_t>(n));
    }
  }
  size_t count(const std::string& m) {
    drain();
    return static_cast<size_t>(std::count(messages.begin(), messages.end(), m));
  }
  std::vector<std::string> messages;

 private:
  fs::path path_;
  int fd_ = -1;
};

TEST(OpsSystemd, RunSpeaksSdNotifyWithWatchdogPings) {
  TempDir tmp("psa-notify");
  NotifySocket notify(tmp / "notify.sock");
  AgentProcess agent(tmp / "state", baseConfig());
  writeFile(agent.configFile(), json::serialize(agent.config(), true));
  Process::Options po;
  po.argv = {binary("pms-agent").string(), "run", "--config", agent.configFile().string()};
  po.env = {{"NOTIFY_SOCKET", (tmp / "notify.sock").string()}, {"WATCHDOG_USEC", "300000"}};
  po.stdout_file = tmp / "run.log";
  Process p(std::move(po));
  ASSERT_TRUE(waitFor([&] { return notify.count("READY=1") == 1; }, 20s)) << readFile(tmp / "run.log");
  EXPECT_EQ(notify.count("STATUS=running"), 1u);
  // Pings at half the interval from the event loop.
  ASSERT_TRUE(waitFor([&] { return notify.count("WATCHDOG=1") >= 4; }, 10s));
  p.signal(SIGTERM);
  auto st = p.wait(30s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 0);
  EXPECT_EQ(notify.count("STOPPING=1"), 1u);
}


// The upgrade helper's units (README "Self-upgrade"): a path unit that starts a oneshot
// service when the agent leaves a request; both verify, and the privileged helper rates 2.0 or
// better too.
TEST(OpsSystemd, UpgradeUnitsVerifyAndRateTwoOrBetter) {
  const std::string analyze = systemdAnalyze();
  if (analyze.empty()) {
    GTEST_SKIP() << "systemd-analyze is not installed (Debian package 'systemd')";
  }
  const fs::path dir = fs::path(PSA_SOURCE_DIR) / "systemd";
  const auto svc = serviceSection(readFile(dir / "pms-agent-upgrade.service"));
  auto one = [&](const std::string& key) {
    auto it = svc.find(key);
    return it == svc.end() ? std::string() : it->second;
  };
  EXPECT_EQ(one("Type"), "oneshot");
  EXPECT_EQ(one("StateDirectory"), "pms-agent-upgrade");
  EXPECT_EQ(one("ExecStart"),
            "/usr/lib/pms-agent/upgrade-helper --config /etc/pms-agent/agent.json");
  EXPECT_EQ(one("PrivateNetwork"), "yes");
  const std::string path_unit = readFile(dir / "pms-agent-upgrade.path");
  EXPECT_NE(path_unit.find("PathExists=/var/lib/pms-agent/upgrade/request.json"),
            std::string::npos);
  EXPECT_NE(path_unit.find("Unit=pms-agent-upgrade.service"), std::string::npos);

  TempDir tmp("psa-upgrade-units");
  // verify checks that ExecStart exists: point it at the shipped script, nothing else changes.
  std::string text = readFile(dir / "pms-agent-upgrade.service");
  const std::string exec = "/usr/lib/pms-agent/upgrade-helper";
  text.replace(text.find(exec), exec.size(),
               (fs::path(PSA_SOURCE_DIR) / "packaging" / "upgrade" / "upgrade-helper").string());
  writeFile(tmp / "pms-agent-upgrade.service", text);
  writeFile(tmp / "pms-agent-upgrade.path", path_unit);
  for (const char* unit : {"pms-agent-upgrade.service", "pms-agent-upgrade.path"}) {
    auto v = runCommand({analyze, "verify", "--man=no", (tmp / unit).string()});
    EXPECT_EQ(v.exit_code, 0) << unit << ": " << v.output;
    EXPECT_EQ(v.output, "") << unit << ": systemd-analyze verify complained";
  }
  auto sec = runCommand({analyze, "security", "--offline=true", "--no-pager",
                         (tmp / "pms-agent-upgrade.service").string()});
  EXPECT_EQ(sec.exit_code, 0) << sec.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      sec.output, m, std::regex("Overall exposure level for pms-agent-upgrade.service: ([0-9.]+)")))
      << sec.output;
  const double score = std::stod(m[1]);
  std::printf("upgrade helper: systemd-analyze security --offline=true: exposure %.1f\n", score);
  EXPECT_LE(score, 2.0) << sec.output;
}

}  // namespace
}  // namespace psa::test
