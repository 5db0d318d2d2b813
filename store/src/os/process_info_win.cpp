#include "psa/store/os/process_info.h"
#include "psa/store/os/win32.h"

namespace psa::os {

int64_t currentProcessId() { return static_cast<int64_t>(::GetCurrentProcessId()); }

std::string currentUserName() {
  const std::string sid = win::currentUserSid();
  return sid.empty() ? "unknown" : win::accountName(sid);
}

bool runningPrivileged() {
  if (win::currentUserSid() == "S-1-5-18") {
    return true;  // LocalSystem
  }
  SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
  PSID admins = nullptr;
  if (!::AllocateAndInitializeSid(&nt, 2, SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS, 0,
                                  0, 0, 0, 0, 0, &admins)) {
    return false;
  }
  // True only when the group is enabled in the token: an elevated prompt, not a filtered one.
  BOOL member = FALSE;
  const bool ok = ::CheckTokenMembership(nullptr, admins, &member) != 0;
  ::FreeSid(admins);
  return ok && member != FALSE;
}

std::string privilegeHint() { return "run from an elevated prompt (Run as administrator)"; }

ResourceUsage resourceUsage() {
  ResourceUsage u;
  const HANDLE self = ::GetCurrentProcess();
  PROCESS_MEMORY_COUNTERS pmc{};
  if (::K32GetProcessMemoryInfo(self, &pmc, sizeof pmc)) {
    u.rss_bytes = pmc.WorkingSetSize;
  }
  FILETIME created{}, exited{}, kernel{}, user{};
  if (::GetProcessTimes(self, &created, &exited, &kernel, &user)) {
    auto ticks = [](const FILETIME& f) {
      return (static_cast<uint64_t>(f.dwHighDateTime) << 32) | f.dwLowDateTime;
    };
    u.cpu_seconds = static_cast<double>(ticks(kernel) + ticks(user)) / 1e7;  // 100 ns units
  }
  DWORD handles = 0;
  if (::GetProcessHandleCount(self, &handles)) {
    u.open_handles = handles;
  }
  return u;
}

std::string describeSystem() {
  // GetVersionEx lies to programs without a compatibility manifest; RtlGetVersion does not.
  using RtlGetVersionFn = LONG(WINAPI*)(OSVERSIONINFOW*);
  OSVERSIONINFOW v{};
  v.dwOSVersionInfoSize = sizeof v;
  const HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  auto fn = ntdll != nullptr ? reinterpret_cast<RtlGetVersionFn>(reinterpret_cast<void*>(
                                   ::GetProcAddress(ntdll, "RtlGetVersion")))
                             : nullptr;
  if (fn == nullptr || fn(&v) != 0) {
    return "Windows x86_64";
  }
  return "Windows " + std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) +
         "." + std::to_string(v.dwBuildNumber) + " x86_64";
}

bool stdoutIsTerminal() {
  DWORD mode = 0;
  return ::GetConsoleMode(::GetStdHandle(STD_OUTPUT_HANDLE), &mode) != 0;
}

void setCurrentThreadName(const char* name) {
  // SetThreadDescription exists from Windows 10 1607 on: look it up rather than link it.
  using SetThreadDescriptionFn = HRESULT(WINAPI*)(HANDLE, PCWSTR);
  const HMODULE kernel = ::GetModuleHandleW(L"kernel32.dll");
  auto fn = kernel != nullptr ? reinterpret_cast<SetThreadDescriptionFn>(reinterpret_cast<void*>(
                                    ::GetProcAddress(kernel, "SetThreadDescription")))
                              : nullptr;
  if (fn != nullptr) {
    fn(::GetCurrentThread(), win::widen(name).c_str());
  }
}

// The Windows heap needs no tuning.
void tuneAllocatorForService() {}

}  // namespace psa::os
