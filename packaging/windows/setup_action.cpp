// pms-agent-setup.dll: the MSI's deferred custom action. It runs the installed
// `pms-agent.exe service configure ...` (the command line arrives as CustomActionData), forwards
// every line the command prints to the MSI log (an EXE custom action's output would be lost), and
// fails the install (rolled back) when the command exits non-zero, e.g. for an invalid CONFIG.
// StopServiceAndWait runs before the MSI's own StopServices on uninstall and upgrade: it stops
// the service and waits until its process has exited, so RemoveFiles never meets a pms-agent.exe
// still mapped by a process that reported STOPPED but has not quite ended (a "file in use" that
// would otherwise be left for a reboot). Kept free of the agent's libraries.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// After <windows.h>:
#include <msi.h>
#include <msiquery.h>

#include <string>
#include <string_view>

namespace {

constexpr DWORD kTimeoutMs = 5 * 60 * 1000;

// Owns a HANDLE.
class Handle {
 public:
  Handle() = default;
  explicit Handle(HANDLE h) : h_(h) {}
  ~Handle() { reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  HANDLE get() const { return h_; }
  HANDLE* out() { return &h_; }
  void reset() {
    if (h_ != nullptr && h_ != INVALID_HANDLE_VALUE) {
      ::CloseHandle(h_);
    }
    h_ = nullptr;
  }

 private:
  HANDLE h_ = nullptr;
};

// One line into the MSI log. The template "[1]" keeps MSI from formatting [brackets] in the text.
void logLine(MSIHANDLE install, const std::wstring& text) {
  PMSIHANDLE rec = ::MsiCreateRecord(1);
  ::MsiRecordSetStringW(rec, 0, L"[1]");
  ::MsiRecordSetStringW(rec, 1, text.c_str());
  ::MsiProcessMessage(install, INSTALLMESSAGE_INFO, rec);
}

void logOutput(MSIHANDLE install, std::string_view bytes) {
  while (!bytes.empty() && (bytes.back() == '\r' || bytes.back() == '\n')) {
    bytes.remove_suffix(1);
  }
  // The agent prints UTF-8.
  const int n =
      ::MultiByteToWideChar(CP_UTF8, 0, bytes.data(), static_cast<int>(bytes.size()), nullptr, 0);
  std::wstring text(static_cast<size_t>(n > 0 ? n : 0), L'\0');
  if (n > 0) {
    ::MultiByteToWideChar(CP_UTF8, 0, bytes.data(), static_cast<int>(bytes.size()), text.data(), n);
  }
  logLine(install, L"pms-agent: " + text);
}

std::wstring customActionData(MSIHANDLE install) {
  DWORD len = 0;
  wchar_t empty[1] = L"";
  ::MsiGetPropertyW(install, L"CustomActionData", empty, &len);  // ERROR_MORE_DATA, length
  std::wstring value(len + 1, L'\0');
  len += 1;
  ::MsiGetPropertyW(install, L"CustomActionData", value.data(), &len);
  value.resize(len);
  return value;
}

}  // namespace

extern "C" __declspec(dllexport) UINT __stdcall RunConfigure(MSIHANDLE install) {
  std::wstring command = customActionData(install);
  if (command.empty()) {
    logLine(install, L"pms-agent-setup: no command line in CustomActionData");
    return ERROR_INSTALL_FAILURE;
  }
  SECURITY_ATTRIBUTES inherit{sizeof inherit, nullptr, TRUE};
  Handle read_end;
  Handle write_end;
  if (!::CreatePipe(read_end.out(), write_end.out(), &inherit, 0)) {
    logLine(install, L"pms-agent-setup: cannot create a pipe");
    return ERROR_INSTALL_FAILURE;
  }
  ::SetHandleInformation(read_end.get(), HANDLE_FLAG_INHERIT, 0);
  Handle nul(::CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &inherit,
                           OPEN_EXISTING, 0, nullptr));
  STARTUPINFOW si{};
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul.get();
  si.hStdOutput = write_end.get();
  si.hStdError = write_end.get();
  PROCESS_INFORMATION pi{};
  const BOOL started = ::CreateProcessW(nullptr, command.data(), nullptr, nullptr, TRUE,
                                        CREATE_NO_WINDOW, nullptr, nullptr, &si, &pi);
  const DWORD start_error = ::GetLastError();
  write_end.reset();  // ours: the read below ends when the child's copy closes
  if (!started) {
    logLine(install, L"pms-agent-setup: cannot start pms-agent.exe (error " +
                         std::to_wstring(start_error) + L")");
    return ERROR_INSTALL_FAILURE;
  }
  Handle process(pi.hProcess);
  Handle thread(pi.hThread);
  std::string pending;
  char buf[4096];
  DWORD got = 0;
  while (::ReadFile(read_end.get(), buf, sizeof buf, &got, nullptr) && got > 0) {
    pending.append(buf, got);
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      logOutput(install, std::string_view(pending).substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) {
    logOutput(install, pending);
  }
  if (::WaitForSingleObject(process.get(), kTimeoutMs) == WAIT_TIMEOUT) {
    ::TerminateProcess(process.get(), 1460);
    logLine(install, L"pms-agent-setup: service configure did not finish in 5 minutes");
  }
  DWORD code = 1;
  ::GetExitCodeProcess(process.get(), &code);
  logLine(install, L"pms-agent-setup: service configure exited with code " + std::to_wstring(code));
  return code == 0 ? ERROR_SUCCESS : ERROR_INSTALL_FAILURE;
}

extern "C" __declspec(dllexport) UINT __stdcall StopServiceAndWait(MSIHANDLE install) {
  SC_HANDLE scm = ::OpenSCManagerW(nullptr, nullptr, SC_MANAGER_CONNECT);
  if (scm == nullptr) {
    logLine(install, L"pms-agent-setup: cannot open the Service Control Manager");
    return ERROR_SUCCESS;  // StopServices tries again
  }
  SC_HANDLE svc = ::OpenServiceW(scm, L"pms-agent", SERVICE_STOP | SERVICE_QUERY_STATUS);
  if (svc == nullptr) {
    ::CloseServiceHandle(scm);
    return ERROR_SUCCESS;  // not installed: nothing to stop
  }
  SERVICE_STATUS_PROCESS st{};
  DWORD needed = 0;
  ::QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&st), sizeof st,
                         &needed);
  Handle process(st.dwProcessId != 0
                     ? ::OpenProcess(SYNCHRONIZE, FALSE, st.dwProcessId)
                     : nullptr);
  if (st.dwCurrentState != SERVICE_STOPPED) {
    SERVICE_STATUS ignored{};
    ::ControlService(svc, SERVICE_CONTROL_STOP, &ignored);
    logLine(install, L"pms-agent-setup: stopping the service (it finishes pending commits first)");
  }
  // The agent stops within 30 s; allow a margin before giving up to StopServices.
  for (int i = 0; i < 600; ++i) {
    if (!::QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&st),
                                sizeof st, &needed) ||
        st.dwCurrentState == SERVICE_STOPPED) {
      break;
    }
    ::Sleep(100);
  }
  if (process.get() != nullptr &&
      ::WaitForSingleObject(process.get(), 30000) != WAIT_OBJECT_0) {
    logLine(install, L"pms-agent-setup: the service process did not exit within 30 s");
  }
  ::CloseServiceHandle(svc);
  ::CloseServiceHandle(scm);
  return ERROR_SUCCESS;
}
