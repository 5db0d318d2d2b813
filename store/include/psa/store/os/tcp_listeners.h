// Who listens on a local TCP port: `pms-agent check` must tell the agent from another program
// that holds an adapter's port. One implementation per OS: tcp_listeners_posix.cpp (Linux: the
// LISTEN sockets of /proc/net/tcp and /proc/net/tcp6, their inodes found among /proc/PID/fd)
// and tcp_listeners_win.cpp (GetExtendedTcpTable with the owning process ids, the image name
// through QueryFullProcessImageNameW). Thread-safe, blocking (reads OS tables: milliseconds).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "psa/store/result.h"

namespace psa::os {

/// One listening socket.
struct TcpListener {
  std::string address;  ///< local address: "0.0.0.0", "127.0.0.1", "::", "::1"
  bool v6 = false;
  /// The owning process; -1 when it cannot be seen (on Linux another user's process, unless
  /// this one runs as root; under Wine always).
  int64_t pid = -1;
  std::string process;  ///< its executable's name ("pms-agent", "nc"); empty when unknown
  std::string user;     ///< POSIX: the socket's owner ("pms-agent", or "uid 998"); Windows: empty
};

/// The sockets in LISTEN state on TCP `port` on any local address, IPv4 and IPv6 (one entry
/// per socket). Empty when nothing listens there. Errors: Errc::io when the OS's tables cannot
/// be read, in words.
Result<std::vector<TcpListener>> tcpListenersOnPort(uint16_t port);

/// This process's executable name, as tcpListenersOnPort() names processes.
std::string currentProcessName();

}  // namespace psa::os
