// Installing the agent as an OS service beyond what the package itself does. On Windows the
// MSI (whose table-driven installer cannot set ACLs, delayed start or recovery actions) runs
// `pms-agent service configure` as a deferred custom action: the logic lives here, in tested
// C++. One implementation per OS: service_admin_win.cpp (SCM, ACLs, Event Log source, the
// config copy) and service_admin_posix.cpp (the .deb's maintainer scripts and the systemd unit
// already do all of it: the commands say so).
#pragma once

#include <filesystem>
#include <ostream>

#include "psa/store/result.h"

namespace psa::agent {

struct ServiceConfigureOptions {
  /// A config file to validate and install as the service's config (the MSI's CONFIG
  /// property); empty: keep whatever config is in place (or none).
  std::filesystem::path config_source;
  /// Start the service when a valid config is in place (the installer's default).
  bool start = true;
};

/// Sets up the installed service: the data folders with their ACLs (SYSTEM, Administrators and
/// NT SERVICE\pms-agent only), the service's delayed automatic start, recovery actions (restart
/// after 5 s, 30 s, then every 60 s; also after a non-zero exit), its own service SID and a 30 s
/// pre-shutdown, the Event Log source; then validates and installs `config_source` (an invalid
/// config is an error naming every problem, and nothing is copied), creates the data key
/// (DPAPI-protected) and the queue, and starts the service if a config is in place. Progress
/// goes to `log` one line per step. Idempotent: an upgrade runs it again. Errors:
/// Errc::invalid_input (the config), Errc::unavailable (not on this OS), Errc::io and others.
Status configureService(const ServiceConfigureOptions& options, std::ostream& log);

}  // namespace psa::agent
