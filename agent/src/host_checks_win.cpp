// The host checks of `pms-agent check` on Windows: the key file's ACL and DPAPI protection, the
// state directory, the Windows Time service.
#include <fstream>

#include "host_checks.h"
#include "psa/store/clock.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/win32.h"

namespace psa::agent {

namespace {

using Level = CheckResult::Level;
namespace fs = std::filesystem;

bool dpapiProtected(const fs::path& key) {
  std::ifstream in(key, std::ios::binary);
  std::string first;
  std::getline(in, first);
  return first == "pms-agent-dpapi-v1";
}

}  // namespace

CheckResult keyFileCheck(const Config& cfg, const store::QueueStats* stats, bool db_exists) {
  const fs::path& key = cfg.store.key_file;
  const os::SecretFileInfo info = os::describeSecretFile(key);
  if (!info.present) {
    if (info.problem != "missing") {
      return {Level::warn, "key file",
              key.string() + ": " + info.problem + " as " + os::currentUserName() + " ▸ " +
                  os::privilegeHint()};
    }
    return missingKeyFileCheck(key, stats, db_exists);
  }
  if (info.problem == "not a regular file") {
    return {Level::fail, "key file", key.string() + " is not a regular file"};
  }
  if (!info.problem.empty() && info.problem != "empty") {
    return {Level::fail, "key file",
            key.string() + ": " + info.problem + " ▸ " + info.fix +
                " (the agent refuses to start until then)"};
  }
  if (!dpapiProtected(key)) {
    return {Level::warn, "key file",
            key.string() +
                " is not DPAPI-protected (a copy of the disk would decrypt the queue) "
                "▸ pms-agent keys rotate rewrites it protected"};
  }
  return {Level::ok, "key file",
          key.string() + " " + info.permissions + " (owner " + info.owner + ", DPAPI)"};
}

CheckResult stateDirCheck(const Config& cfg) {
  const fs::path& dir = cfg.state_dir;
  if (auto problem = stateDirShapeProblem(dir)) {
    return *problem;
  }
  const os::SecretFileInfo info = os::describeSecretFile(dir);
  const std::string desc = "(owner " + info.owner + "; " + info.permissions + ")";
  const fs::path probe = dir / (".pms-agent-check-" + std::to_string(os::currentProcessId()));
  if (Status st = os::writeFileDurably(probe, "x", os::FileAccess::owner_only); !st) {
    return {Level::fail, "state dir",
            dir.string() + " is not writable: " + st.error().message + " ▸ " + os::privilegeHint() +
                "; the service account needs full control of it"};
  }
  std::error_code ec;
  fs::remove(probe, ec);
  return {Level::ok, "state dir", dir.string() + " writable " + desc};
}

CheckResult timeSyncCheck(int64_t now) {
  SC_HANDLE scm = ::OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT);
  if (scm == nullptr) {
    return {Level::ok, "clock", formatRfc3339(now) + " (cannot ask the Windows Time service)"};
  }
  SC_HANDLE svc = ::OpenServiceW(scm, L"W32Time", SERVICE_QUERY_STATUS);
  SERVICE_STATUS st{};
  const bool known = svc != nullptr && ::QueryServiceStatus(svc, &st);
  if (svc != nullptr) {
    ::CloseServiceHandle(svc);
  }
  ::CloseServiceHandle(scm);
  if (!known) {
    return {Level::warn, "clock",
            formatRfc3339(now) + ": the Windows Time service is not installed ▸ " + timeSyncHint()};
  }
  if (st.dwCurrentState != SERVICE_RUNNING) {
    return {Level::warn, "clock",
            formatRfc3339(now) + " not synchronised (the Windows Time service is not running) ▸ " +
                timeSyncHint()};
  }
  return {Level::ok, "clock", formatRfc3339(now) + " (Windows Time service running)"};
}

std::string timeSyncHint() { return "net start w32time && w32tm /resync"; }

std::string startServiceHint() {
  return "net start pms-agent; see the log under %ProgramData%\\PracticeStudio\\Agent\\logs "
         "and Event Viewer (Application, source pms-agent)";
}

}  // namespace psa::agent
