// ServiceHost: the small interface between the agent and the service manager that runs it
// (systemd now; the Windows SCM host will be one more implementation in its own file).
#pragma once

#include <memory>
#include <string_view>

namespace psa::agent {

class ServiceHost {
 public:
  virtual ~ServiceHost() = default;
  /// Start-up finished: listeners bound, store open.
  virtual void ready() = 0;
  /// One-line human status ("3 adapters, cloud connected, 12 pending").
  virtual void status(std::string_view text) = 0;
  /// Shutdown began.
  virtual void stopping() = 0;
  /// Liveness ping; sent from the event loop so a hung loop stops the pings.
  virtual void watchdog() = 0;
  /// How often watchdog() must be called, or 0 if the manager does not watch us.
  virtual long watchdogIntervalUs() const = 0;
};

/// systemd's sd_notify protocol over $NOTIFY_SOCKET (no libsystemd needed); a no-op when the
/// variable is unset (foreground runs, tests).
std::unique_ptr<ServiceHost> makeSystemdHost();

}  // namespace psa::agent
