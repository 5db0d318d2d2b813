// What tcp_probe.cpp needs from each OS (tcp_probe_posix.cpp, tcp_probe_win.cpp): one
// getaddrinfo call and the resolver's error text. The deadline around the lookup is common.
#pragma once

#include <string>
#include <vector>

#include "psa/store/os/tcp_probe.h"

namespace psa::os::detail {

struct Lookup {
  int rc = 0;  ///< getaddrinfo's result: 0 or an EAI_* / WSA error
  std::vector<ResolvedAddress> addrs;
};

/// Blocks in getaddrinfo (AF_UNSPEC, SOCK_STREAM) for host:port. Any thread.
Lookup lookupTcp(const std::string& host, int port);

/// The resolver's words for a non-zero Lookup::rc.
std::string resolverErrorText(int rc);

}  // namespace psa::os::detail
