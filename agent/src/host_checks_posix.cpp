// The host checks of `pms-agent check` on Linux: file modes and owners, the kernel's NTP state.
#include <sys/timex.h>

#include <cstdio>
#include <cstdlib>

#include "cli_support.h"
#include "host_checks.h"
#include "psa/store/clock.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/secret_file.h"

namespace psa::agent {
namespace {

using Level = CheckResult::Level;
namespace fs = std::filesystem;

unsigned modeOf(const os::SecretFileInfo& info) {
  return static_cast<unsigned>(std::strtoul(info.permissions.c_str(), nullptr, 8));
}

}  // namespace

CheckResult keyFileCheck(const Config& cfg, const store::QueueStats* stats, bool db_exists) {
  const fs::path& key = cfg.store.key_file;
  const os::SecretFileInfo info = os::describeSecretFile(key);
  if (!info.present) {
    if (info.problem != "missing") {
      return {Level::warn, "key file",
              key.string() + ": cannot look at it as " + os::currentUserName() + " ▸ run as root"};
    }
    return missingKeyFileCheck(key, stats, db_exists);
  }
  if (info.problem == "not a regular file") {
    return {Level::fail, "key file", key.string() + " is not a regular file"};
  }
  if ((modeOf(info) & 077) != 0) {
    return {Level::fail, "key file",
            key.string() + " mode " + info.permissions +
                ": other users can read the data key ▸ chmod 600 " + key.string() +
                " (the agent refuses to start until then)"};
  }
  const os::SecretFileInfo dir = os::describeSecretFile(cfg.state_dir);
  if (dir.present && dir.owner_uid != info.owner_uid) {
    return {Level::warn, "key file",
            key.string() + " belongs to " + info.owner + " but the state dir to " + dir.owner +
                " ▸ chown " + dir.owner + " " + key.string()};
  }
  return {Level::ok, "key file", key.string() + " " + info.permissions + " " + info.owner};
}

CheckResult stateDirCheck(const Config& cfg) {
  const fs::path& dir = cfg.state_dir;
  if (auto problem = stateDirShapeProblem(dir)) {
    return *problem;
  }
  const os::SecretFileInfo info = os::describeSecretFile(dir);
  const std::string desc = "(owner " + info.owner + ", mode " + info.permissions + ")";
  if (!os::runningPrivileged() && os::currentUserName() != info.owner) {
    return {Level::warn, "state dir",
            dir.string() + " " + desc + ": cannot test writing as " + os::currentUserName() +
                " ▸ run as root"};
  }
  const fs::path probe = dir / (".pms-agent-check-" + std::to_string(os::currentProcessId()));
  if (Status st = os::writeFileDurably(probe, "x", os::FileAccess::owner_only); !st) {
    return {Level::fail, "state dir",
            dir.string() + " is not writable: " + st.error().message +
                " ▸ read-only file system or wrong owner? chown -R pms-agent:pms-agent " +
                dir.string()};
  }
  std::error_code ec;
  fs::remove(probe, ec);
  return {Level::ok, "state dir", dir.string() + " writable " + desc};
}

CheckResult timeSyncCheck(int64_t now) {
  timex tx{};
  const int state = ::adjtimex(&tx);
  if (state < 0) {
    return {Level::ok, "clock", formatRfc3339(now) + " (cannot query the kernel's NTP state)"};
  }
  if (state == TIME_ERROR || (tx.status & STA_UNSYNC) != 0) {
    return {Level::warn, "clock",
            formatRfc3339(now) +
                " not synchronised (the kernel reports no NTP sync) ▸ enable time sync: "
                "timedatectl set-ntp true (or check chrony/ntpd)"};
  }
  char est[64];
  std::snprintf(est, sizeof est, "synchronised (estimated error %.1f ms)",
                static_cast<double>(tx.esterror) / 1000.0);
  return {Level::ok, "clock", est};
}

std::string timeSyncHint() { return "timedatectl set-ntp true"; }

std::string startServiceHint() {
  return "systemctl start pms-agent; journalctl -u pms-agent -n 50";
}

}  // namespace psa::agent
