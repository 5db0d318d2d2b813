// ServiceHost: the small interface between the agent and the service manager that runs it.
// One implementation per OS: service_host_posix.cpp (systemd's sd_notify protocol) and
// service_host_win.cpp (the Windows Service Control Manager).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string_view>

namespace psa::agent {

class ServiceHost {
 public:
  virtual ~ServiceHost() = default;
  /// Start-up finished: listeners bound, store open.
  virtual void ready() = 0;
  /// One-line human status ("3 adapters, cloud connected, 12 pending").
  virtual void status(std::string_view text) = 0;
  /// Shutdown began (the SCM is told STOP_PENDING with a wait hint).
  virtual void stopping() = 0;
  /// Liveness ping; sent from the event loop so a hung loop stops the pings.
  virtual void watchdog() = 0;
  /// How often watchdog() must be called, or 0 if the manager does not watch us.
  virtual long watchdogIntervalUs() const = 0;
  /// What a stop request from the service manager does (the SCM's STOP, SHUTDOWN and
  /// PRESHUTDOWN, or Ctrl+C in a console on Windows). systemd stops us with SIGTERM instead, so
  /// on POSIX it is never called. Called on the manager's thread; must not block.
  virtual void onStopRequest(std::function<void()> request_stop) = 0;
};

using ServiceHostPtr = std::unique_ptr<ServiceHost>;

/// The host of a process the service manager did not start through runService(true): systemd's
/// notify protocol on POSIX (a no-op when $NOTIFY_SOCKET is unset: foreground runs, tests), the
/// console's Ctrl+C / Ctrl+Break / close events on Windows.
ServiceHostPtr makeForegroundHost();

/// Runs `body` (the service: load the config, start the agent, serve, shut down; it returns the
/// process exit code) under the OS's service manager and returns its exit code.
/// `as_service`: the service manager started us (Windows: `pms-agent run --service`, which the
/// SCM's service entry runs; the body then runs on the service's own thread and its exit code
/// is reported to the SCM, so a non-zero one triggers the recovery actions). Otherwise, and
/// always on POSIX, `body` runs on this thread with a host for systemd (a no-op when
/// $NOTIFY_SOCKET is unset) or for a Windows console (Ctrl+C, Ctrl+Break and closing the
/// window stop it cleanly). Errors starting under the SCM are printed to `err` and return 1.
int runService(bool as_service, const std::function<int(ServiceHostPtr)>& body, std::ostream& err);

}  // namespace psa::agent
