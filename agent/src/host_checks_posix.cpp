// The host checks of `pms-agent check` on Linux: file modes and owners, the kernel's NTP state.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli_support.h"
#include "host_checks.h"
#include "psa/store/clock.h"

namespace psa::agent {
namespace {

using Level = CheckResult::Level;
namespace fs = std::filesystem;

std::string ownerName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string modeText(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

CheckResult keyFileCheck(const Config& cfg, const store::QueueStats* stats, bool db_exists) {
  const fs::path& key = cfg.store.key_file;
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0) {
    const int err = errno;
    if (err == EACCES) {
      return {Level::warn, "key file",
              key.string() + ": cannot look at it as " + ownerName(::geteuid()) + " ▸ run as root"};
    }
    return missingKeyFileCheck(key, stats, db_exists);
  }
  if (!S_ISREG(st.st_mode)) {
    return {Level::fail, "key file", key.string() + " is not a regular file"};
  }
  if ((st.st_mode & 077) != 0) {
    return {Level::fail, "key file",
            key.string() + " mode " + modeText(st.st_mode) +
                ": other users can read the data key ▸ chmod 600 " + key.string() +
                " (the agent refuses to start until then)"};
  }
  struct stat dir {};
  if (::stat(cfg.state_dir.c_str(), &dir) == 0 && dir.st_uid != st.st_uid) {
    return {Level::warn, "key file",
            key.string() + " belongs to " + ownerName(st.st_uid) + " but the state dir to " +
                ownerName(dir.st_uid) + " ▸ chown " + ownerName(dir.st_uid) + " " + key.string()};
  }
  return {Level::ok, "key file",
          key.string() + " " + modeText(st.st_mode) + " " + ownerName(st.st_uid)};
}

CheckResult stateDirCheck(const Config& cfg) {
  const fs::path& dir = cfg.state_dir;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return {Level::warn, "state dir",
              dir.string() + " does not exist yet (the agent creates it at start)"};
    }
    return {Level::fail, "state dir", dir.string() + ": " + std::strerror(errno)};
  }
  if (!S_ISDIR(st.st_mode)) {
    return {Level::fail, "state dir", dir.string() + " is not a directory"};
  }
  const std::string desc =
      "(owner " + ownerName(st.st_uid) + ", mode " + modeText(st.st_mode) + ")";
  if (::geteuid() != 0 && ::geteuid() != st.st_uid) {
    return {Level::warn, "state dir",
            dir.string() + " " + desc + ": cannot test writing as " + ownerName(::geteuid()) +
                " ▸ run as root"};
  }
  const fs::path probe = dir / (".pms-agent-check-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return {Level::fail, "state dir",
            dir.string() + " is not writable: " + std::strerror(errno) +
                " ▸ read-only file system or wrong owner? chown -R pms-agent:pms-agent " +
                dir.string()};
  }
  const bool wrote = ::write(fd, "x", 1) == 1 && ::fsync(fd) == 0;
  ::close(fd);
  ::unlink(probe.c_str());
  if (!wrote) {
    return {Level::fail, "state dir",
            dir.string() + ": writing failed (" + std::strerror(errno) + ")"};
  }
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
