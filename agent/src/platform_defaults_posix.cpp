#include "psa/agent/platform_defaults.h"

namespace psa::agent {

const PlatformDefaults& platformDefaults() {
  // No default log file: systemd's journal keeps standard error.
  static const PlatformDefaults d{
      "/etc/pms-agent/agent.json", "/var/lib/pms-agent", "/run/pms-agent/control.sock", {}};
  return d;
}

}  // namespace psa::agent
