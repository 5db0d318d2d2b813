// The upgrade helper's OS on Debian: dpkg installs, dpkg-repack keeps a copy of a version that
// was installed by hand, systemctl stops and starts the agent.
#include <unistd.h>

#include <cstdlib>

#include "command_output.h"
#include "upgrade_system.h"

namespace psa::agent::upgrade {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPackage = "pms-agent";
constexpr const char* kUnit = "pms-agent.service";
constexpr auto kDpkgTimeout = std::chrono::minutes(10);
constexpr auto kSystemctlTimeout = std::chrono::minutes(2);
constexpr size_t kMaxOutput = 64 * 1024;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// The last lines of a tool's output, for an error message.
std::string tail(const std::string& out) {
  constexpr size_t kTail = 600;
  return out.size() <= kTail ? out : "..." + out.substr(out.size() - kTail);
}

Status ranOk(const ProgramRun& run, const std::string& what) {
  if (!run.started) {
    return Error(Errc::io, what + ": could not be started");
  }
  if (run.timed_out) {
    return Error(Errc::io, what + ": timed out");
  }
  if (run.exit_code != 0) {
    return Error(Errc::io,
                 what + ": exit status " + std::to_string(run.exit_code) + ": " + tail(run.output));
  }
  return {};
}

std::vector<std::string> dpkgRootArgs() {
  const std::string root = env("PSA_UPGRADE_DPKG_ROOT");
  if (root.empty()) {
    return {};
  }
  return {"--root=" + root, "--force-script-chrootless", "--force-depends"};
}

Status systemctl(const char* verb) {
  std::string program = env("PSA_UPGRADE_SYSTEMCTL");
  if (program.empty()) {
    program = "/usr/bin/systemctl";
  }
  return ranOk(runProgram({program, verb, kUnit}, kSystemctlTimeout, kMaxOutput),
               std::string("systemctl ") + verb + " " + kUnit);
}

}  // namespace

bool upgradeSupported() { return true; }

Result<std::string> installedVersion() {
  std::vector<std::string> argv = {"/usr/bin/dpkg-query"};
  const std::string root = env("PSA_UPGRADE_DPKG_ROOT");
  if (!root.empty()) {
    argv.push_back("--root=" + root);
  }
  argv.insert(argv.end(), {"--show", "--showformat=${db:Status-Abbrev}|${Version}", kPackage});
  const ProgramRun run = runProgram(argv, std::chrono::minutes(1), kMaxOutput);
  if (!run.started) {
    return Error(Errc::io, "dpkg-query could not be started");
  }
  // "ii |1.2.3": installed; anything else (not installed, half-configured) has no version we
  // could roll back to.
  const size_t bar = run.output.find('|');
  if (run.exit_code != 0 || bar == std::string::npos || run.output.rfind("ii", 0) != 0) {
    return std::string();
  }
  std::string version = run.output.substr(bar + 1);
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) {
    version.pop_back();
  }
  return version;
}

Status installPackage(const fs::path& package) {
  std::vector<std::string> argv = {"/usr/bin/dpkg"};
  for (auto& a : dpkgRootArgs()) {
    argv.push_back(std::move(a));
  }
  // The config file is a conffile the site may have edited: keep it, never ask.
  argv.insert(argv.end(), {"--force-confold", "--force-confdef", "--install", package.string()});
  return ranOk(runProgram(argv, kDpkgTimeout, kMaxOutput), "dpkg --install");
}

Status savePackageOfInstalled(const fs::path& file) {
  if (!fs::exists("/usr/bin/dpkg-repack")) {
    return Error(Errc::unavailable, "dpkg-repack is not installed");
  }
  const fs::path dir = file.parent_path() / "repack";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  std::vector<std::string> argv = {"/usr/bin/dpkg-repack"};
  const std::string root = env("PSA_UPGRADE_DPKG_ROOT");
  if (!root.empty()) {
    argv.push_back("--root=" + root);
  }
  argv.push_back(kPackage);
  if (Status st = ranOk(runProgram(argv, kDpkgTimeout, kMaxOutput, dir.string()), "dpkg-repack");
      !st) {
    return st;
  }
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".deb") {
      fs::rename(e.path(), file, ec);
      fs::remove_all(dir, ec);
      if (ec) {
        return Error(Errc::io, "cannot keep the repacked package: " + ec.message());
      }
      return {};
    }
  }
  return Error(Errc::io, "dpkg-repack wrote no package");
}

Status stopAgentService() { return systemctl("stop"); }
Status startAgentService() { return systemctl("start"); }

std::string localActor() { return "uid:" + std::to_string(::getuid()); }

Status copyRunningProgram(const fs::path& file) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return Error(Errc::io, "cannot find the running program: " + ec.message());
  }
  fs::path tmp = file;
  tmp += ".tmp";
  fs::copy_file(self, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) {
    fs::permissions(tmp, fs::perms::owner_all, ec);
  }
  if (!ec) {
    fs::rename(tmp, file, ec);
  }
  if (ec) {
    return Error(Errc::io, "cannot copy the helper to " + file.string() + ": " + ec.message());
  }
  return {};
}

}  // namespace psa::agent::upgrade
