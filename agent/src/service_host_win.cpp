// The Windows Service Control Manager host: `pms-agent run --service` is what the service entry
// runs. StartServiceCtrlDispatcherW hands the main thread to the SCM, which calls ServiceMain
// on a thread of its own; the agent runs there and reports its state through SetServiceStatus.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "psa/agent/service_host.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"
#include "psa/store/os/system_log.h"
#include "psa/store/os/win32.h"

namespace psa::agent {

namespace {

constexpr wchar_t kServiceName[] = L"pms-agent";
// The SCM waits this long between checkpoints before it calls a start or stop hung; the agent
// stops within 30 s (the cloud link's drain is bounded by that).
constexpr DWORD kWaitHintMs = 30000;

// Shared between the SCM's control handler and the agent's threads.
class ScmState {
 public:
  void attach(SERVICE_STATUS_HANDLE handle) {
    std::lock_guard lock(mu_);
    handle_ = handle;
  }

  void report(DWORD state, DWORD exit_code = NO_ERROR, DWORD service_code = 0) {
    std::lock_guard lock(mu_);
    reportLocked(state, exit_code, service_code);
  }

  // Pending states need a moving checkpoint, or the SCM gives up on us.
  void tick() {
    std::lock_guard lock(mu_);
    if (status_.dwCurrentState == SERVICE_START_PENDING ||
        status_.dwCurrentState == SERVICE_STOP_PENDING) {
      status_.dwCheckPoint++;
      ::SetServiceStatus(handle_, &status_);
    }
  }

  void setStopHandler(std::function<void()> fn) {
    bool call_now = false;
    {
      std::lock_guard lock(mu_);
      stop_handler_ = std::move(fn);
      call_now = stop_requested_;
    }
    if (call_now && stop_handler_) {
      stop_handler_();
    }
  }

  void requestStop() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      if (stop_requested_) {
        return;
      }
      stop_requested_ = true;
      reportLocked(SERVICE_STOP_PENDING, NO_ERROR, 0);
      fn = stop_handler_;
    }
    log::Logger("service").info("scm_stop_requested");
    if (fn) {
      fn();
    }
  }

 private:
  void reportLocked(DWORD state, DWORD exit_code, DWORD service_code) {
    if (handle_ == nullptr) {
      return;
    }
    status_.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    if (state != status_.dwCurrentState) {
      status_.dwCheckPoint = 0;
    }
    status_.dwCurrentState = state;
    status_.dwWin32ExitCode = exit_code;
    status_.dwServiceSpecificExitCode = service_code;
    status_.dwControlsAccepted =
        state == SERVICE_RUNNING
            ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PRESHUTDOWN
            : 0;
    status_.dwWaitHint =
        (state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING) ? kWaitHintMs : 0;
    ::SetServiceStatus(handle_, &status_);
  }

  std::mutex mu_;
  SERVICE_STATUS_HANDLE handle_ = nullptr;
  SERVICE_STATUS status_{};
  std::function<void()> stop_handler_;
  bool stop_requested_ = false;
};

ScmState& scm() {
  static auto* s = new ScmState();  // never destroyed: the SCM may call in during exit
  return *s;
}

class ScmHost final : public ServiceHost {
 public:
  void ready() override { scm().report(SERVICE_RUNNING); }
  void status(std::string_view) override {}
  void stopping() override { scm().report(SERVICE_STOP_PENDING); }
  void watchdog() override {}
  long watchdogIntervalUs() const override { return 0; }
  void onStopRequest(std::function<void()> request_stop) override {
    scm().setStopHandler(std::move(request_stop));
  }
};

DWORD WINAPI controlHandler(DWORD control, DWORD, LPVOID, LPVOID) {
  switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
    case SERVICE_CONTROL_PRESHUTDOWN:
      // Finish pending commits and ACKs, then stop: the agent's ordered shutdown.
      scm().requestStop();
      return NO_ERROR;
    case SERVICE_CONTROL_INTERROGATE:
      return NO_ERROR;
    default:
      return ERROR_CALL_NOT_IMPLEMENTED;
  }
}

// What ServiceMain runs, set before the dispatcher starts, and what it returned.
const std::function<int(ServiceHostPtr)>* g_body = nullptr;
std::atomic<int> g_exit_code{0};

void WINAPI serviceMain(DWORD, LPWSTR*) {
  SERVICE_STATUS_HANDLE handle =
      ::RegisterServiceCtrlHandlerExW(kServiceName, &controlHandler, nullptr);
  if (handle == nullptr) {
    return;
  }
  scm().attach(handle);
  scm().report(SERVICE_START_PENDING);
  // A service has no console: warnings and errors go to the Event Log as well as the file.
  os::enableSystemLog(true);
  std::atomic<bool> done{false};
  std::thread ticker([&done] {
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      scm().tick();
    }
  });
  // An exception out of the agent is a broken invariant: the process exits without reporting
  // SERVICE_STOPPED, which the SCM counts as a crash and answers with its recovery actions.
  const int code =
      guardInvariant("service.main", [] { return (*g_body)(std::make_unique<ScmHost>()); });
  done = true;
  ticker.join();
  g_exit_code = code;
  // A non-zero exit is a failure the SCM's recovery actions act on (restart with back-off).
  scm().report(SERVICE_STOPPED, code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR,
               static_cast<DWORD>(code));
}

// Console runs: Ctrl+C and friends stop the agent cleanly, as SIGTERM does on POSIX.
class ConsoleHost final : public ServiceHost {
 public:
  ConsoleHost() { ::SetConsoleCtrlHandler(&ConsoleHost::onConsoleEvent, TRUE); }
  ~ConsoleHost() override {
    ::SetConsoleCtrlHandler(&ConsoleHost::onConsoleEvent, FALSE);
    std::lock_guard lock(mu());
    handler() = nullptr;
  }
  ConsoleHost(const ConsoleHost&) = delete;
  ConsoleHost& operator=(const ConsoleHost&) = delete;

  void ready() override {}
  void status(std::string_view) override {}
  void stopping() override {}
  void watchdog() override {}
  long watchdogIntervalUs() const override { return 0; }
  void onStopRequest(std::function<void()> request_stop) override {
    std::lock_guard lock(mu());
    handler() = std::move(request_stop);
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::function<void()>& handler() {
    static std::function<void()> h;
    return h;
  }
  static BOOL WINAPI onConsoleEvent(DWORD event) {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu());
      fn = handler();
    }
    if (!fn) {
      return FALSE;
    }
    fn();
    if (event == CTRL_CLOSE_EVENT || event == CTRL_LOGOFF_EVENT || event == CTRL_SHUTDOWN_EVENT) {
      // Windows ends the process when this handler returns: give the shutdown its time.
      std::this_thread::sleep_for(std::chrono::seconds(5));
    }
    return TRUE;
  }
};

}  // namespace

ServiceHostPtr makeForegroundHost() { return std::make_unique<ConsoleHost>(); }

int runService(bool as_service, const std::function<int(ServiceHostPtr)>& body, std::ostream& err) {
  if (!as_service) {
    return body(makeForegroundHost());
  }
  g_body = &body;
  SERVICE_TABLE_ENTRYW table[] = {{const_cast<LPWSTR>(kServiceName), &serviceMain},
                                  {nullptr, nullptr}};
  if (!::StartServiceCtrlDispatcherW(table)) {
    const DWORD e = ::GetLastError();
    err << "pms-agent run --service: not started by the Service Control Manager ("
        << os::win::errorText(e) << "); to run in this console, leave out --service\n";
    return 1;
  }
  return g_exit_code.load();
}

}  // namespace psa::agent
