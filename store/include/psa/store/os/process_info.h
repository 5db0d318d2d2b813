// Facts about this process and host for status, check, bundles and the audit trail. One
// implementation per OS: process_info_posix.cpp (/proc, getrusage, uname) and
// process_info_win.cpp (GetProcessMemoryInfo, GetProcessTimes, RtlGetVersion). Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace psa::os {

int64_t currentProcessId();

/// The account this process runs as: "pms-agent", "root", "NT SERVICE\pms-agent",
/// "DOMAIN\user"; a numeric id when it has no name.
std::string currentUserName();

/// True for root (POSIX) or an elevated administrator token / SYSTEM (Windows).
bool runningPrivileged();

/// The hint a CLI prints when it lacks the rights for an act: "run as root or as the
/// pms-agent user" / "run from an elevated prompt (Run as administrator)".
std::string privilegeHint();

struct ResourceUsage {
  uint64_t rss_bytes = 0;     ///< resident set / working set
  double cpu_seconds = 0;     ///< user + system time since start
  int64_t open_handles = -1;  ///< open file descriptors / handles; -1 if unknown
};
ResourceUsage resourceUsage();

/// One line naming the OS, its version and the machine ("Linux 6.1.0 x86_64",
/// "Windows 10.0.20348 x86_64").
std::string describeSystem();

/// True when standard output is a terminal (a console on Windows).
bool stdoutIsTerminal();

/// Names the calling thread for top -H, perf, gdb and debuggers on Windows (at most 15
/// characters are kept on Linux). Best effort.
void setCurrentThreadName(const char* name);

/// Process-wide allocator settings for a long-running service (glibc: at most two malloc
/// arenas, or idle worker threads keep 64 MiB each); a no-op where not needed.
void tuneAllocatorForService();

}  // namespace psa::os
