// The system part of a support bundle on Windows: the OS version, host name, uptime, and the
// Application event log entries of source pms-agent (the agent's warnings and errors).
#include <deque>
#include <sstream>
#include <vector>

#include "bundle_system.h"
#include "cli_support.h"
#include "psa/store/clock.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/win32.h"

namespace psa::agent {

std::string systemInfo() {
  std::ostringstream s;
  s << "os          " << os::describeSystem() << "\n";
  wchar_t host[256];
  DWORD host_len = 256;
  if (::GetComputerNameExW(ComputerNameDnsFullyQualified, host, &host_len)) {
    s << "hostname    " << os::win::narrow(std::wstring_view(host, host_len)) << "\n";
  }
  s << "uptime      " << humanSeconds(static_cast<double>(::GetTickCount64()) / 1000.0) << "\n";
  s << "time        " << formatRfc3339(Clock::system()->nowMs()) << "\n";
  s << "cli user    " << os::currentUserName() << (os::runningPrivileged() ? " (elevated)" : "")
    << "\n";
  return s.str();
}

ServiceLogExtract serviceLogExtract(size_t lines) {
  HANDLE log = ::OpenEventLogW(nullptr, L"Application");
  if (log == nullptr) {
    return {};
  }
  std::deque<std::string> kept;
  std::vector<unsigned char> buf(64 * 1024);
  for (;;) {
    DWORD read = 0;
    DWORD needed = 0;
    if (!::ReadEventLogW(log, EVENTLOG_SEQUENTIAL_READ | EVENTLOG_FORWARDS_READ, 0, buf.data(),
                         static_cast<DWORD>(buf.size()), &read, &needed)) {
      if (::GetLastError() == ERROR_INSUFFICIENT_BUFFER && needed > buf.size()) {
        buf.resize(needed);
        continue;
      }
      break;  // ERROR_HANDLE_EOF, or the log cannot be read
    }
    for (DWORD off = 0; off + sizeof(EVENTLOGRECORD) <= read;) {
      const auto* rec = reinterpret_cast<const EVENTLOGRECORD*>(buf.data() + off);
      if (rec->Length == 0) {
        break;
      }
      const auto* source = reinterpret_cast<const wchar_t*>(rec + 1);
      if (std::wstring_view(source) == L"pms-agent" && rec->NumStrings > 0) {
        const auto* text = reinterpret_cast<const wchar_t*>(buf.data() + off + rec->StringOffset);
        const char* type = rec->EventType == EVENTLOG_ERROR_TYPE     ? "error"
                           : rec->EventType == EVENTLOG_WARNING_TYPE ? "warning"
                                                                     : "info";
        kept.push_back(formatRfc3339(static_cast<int64_t>(rec->TimeGenerated) * 1000) + " " + type +
                       " " + os::win::narrow(text));
        if (kept.size() > lines) {
          kept.pop_front();
        }
      }
      off += rec->Length;
    }
  }
  ::CloseEventLog(log);
  std::string out;
  for (const auto& l : kept) {
    out += l + "\n";
  }
  return {"eventlog.txt", out};
}

}  // namespace psa::agent
