// Where things live when the config does not say: the OS's conventions for a system service.
// One implementation per OS: platform_defaults_posix.cpp (/etc/pms-agent, /var/lib/pms-agent,
// /run/pms-agent/control.sock; logs go to the journal) and platform_defaults_win.cpp
// (%ProgramData%\PracticeStudio\Agent\{agent.json,state,logs}, \\.\pipe\pms-agent).
#pragma once

#include <filesystem>

namespace psa::agent {

struct PlatformDefaults {
  std::filesystem::path config_file;      ///< the CLI's and the service's config
  std::filesystem::path state_dir;        ///< agent.state_dir
  std::filesystem::path control_address;  ///< control.socket: socket path or pipe name
  std::filesystem::path log_file;         ///< agent.log_file; empty = standard error only
};

/// The defaults of this OS. Thread-safe; computed once.
const PlatformDefaults& platformDefaults();

}  // namespace psa::agent
