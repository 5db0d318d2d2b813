#include "service_admin.h"

namespace psa::agent {

Status configureService(const ServiceConfigureOptions&, std::ostream&) {
  return Error(Errc::unavailable,
               "on Linux the package does this (systemd/pms-agent.service, the .deb's postinst "
               "and `pms-agent keys init`); nothing to configure here");
}

}  // namespace psa::agent
