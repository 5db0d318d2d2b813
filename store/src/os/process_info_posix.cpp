#include <pthread.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <filesystem>
#include <fstream>

#include "psa/store/os/process_info.h"

namespace psa::os {

int64_t currentProcessId() { return static_cast<int64_t>(::getpid()); }

std::string currentUserName() {
  const uid_t uid = ::geteuid();
  char buf[1024];
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return "uid " + std::to_string(uid);
}

bool runningPrivileged() { return ::geteuid() == 0; }

std::string privilegeHint() { return "run as root or as the pms-agent user"; }

ResourceUsage resourceUsage() {
  ResourceUsage u;
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0, resident = 0;
  if (statm >> pages >> resident) {
    u.rss_bytes = resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  }
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    u.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  std::error_code ec;
  int64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  u.open_handles = ec ? -1 : n;
  return u;
}

std::string describeSystem() {
  utsname u{};
  if (::uname(&u) != 0) {
    return "unknown";
  }
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}

bool stdoutIsTerminal() { return ::isatty(STDOUT_FILENO) != 0; }

void setCurrentThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

void tuneAllocatorForService() {
#if defined(__GLIBC__)
  // glibc gives every thread that allocates its own 64 MiB arena; a service with a handful of
  // worker threads then reports hundreds of MB of mostly idle RSS.
  mallopt(M_ARENA_MAX, 2);
#endif
}

}  // namespace psa::os
