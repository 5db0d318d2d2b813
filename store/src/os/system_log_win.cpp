#include <atomic>
#include <cstdio>
#include <mutex>

#include "psa/store/os/system_log.h"
#include "psa/store/os/win32.h"

namespace psa::os {

namespace {

// Event id 1 of the message table compiled into pms-agent.exe ("%1"): Event Viewer shows the
// line itself. The installer registers the source (pms-agent service configure).
constexpr DWORD kEventLine = 1;

struct EventSource {
  std::mutex mu;
  HANDLE handle = nullptr;
  std::atomic<bool> enabled{false};
};

EventSource& source() {
  static auto* s = new EventSource();  // never destroyed: loggers may run at exit
  return *s;
}

}  // namespace

void writeStandardError(std::string_view line) {
  const HANDLE err = ::GetStdHandle(STD_ERROR_HANDLE);
  if (err == nullptr || err == INVALID_HANDLE_VALUE) {
    return;  // a service has no console
  }
  DWORD wrote = 0;
  ::WriteFile(err, line.data(), static_cast<DWORD>(line.size()), &wrote, nullptr);
}

void enableSystemLog(bool enabled) {
  EventSource& s = source();
  std::lock_guard lock(s.mu);
  if (enabled && s.handle == nullptr) {
    s.handle = ::RegisterEventSourceW(nullptr, L"pms-agent");
  } else if (!enabled && s.handle != nullptr) {
    ::DeregisterEventSource(s.handle);
    s.handle = nullptr;
  }
  s.enabled = s.handle != nullptr;
}

void writeSystemLog(SystemLogLevel level, std::string_view line) {
  EventSource& s = source();
  if (!s.enabled.load(std::memory_order_relaxed)) {
    return;
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  const std::wstring text = win::widen(line);
  const wchar_t* strings[] = {text.c_str()};
  std::lock_guard lock(s.mu);
  if (s.handle != nullptr) {
    ::ReportEventW(s.handle,
                   level == SystemLogLevel::error ? EVENTLOG_ERROR_TYPE : EVENTLOG_WARNING_TYPE, 0,
                   kEventLine, nullptr, 1, 0, strings, nullptr);
  }
}

}  // namespace psa::os
