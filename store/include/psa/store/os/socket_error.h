// Names for the socket and resolver error codes that libraries hand back as plain ints
// (libmosquitto leaves errno, or on Windows a WSA code, behind a MOSQ_ERR_ERRNO / MOSQ_ERR_EAI),
// so messages for technicians read the same on every OS. One implementation per OS:
// socket_error_posix.cpp (errno, EAI_*) and socket_error_win.cpp (WSAE*, WSAHOST_NOT_FOUND).
#pragma once

#include <string>

namespace psa::os {

enum class SocketError {
  none,
  refused,  ///< nothing listens there
  timed_out,
  network_unreachable,
  host_unreachable,
  reset,     ///< the peer reset the connection
  protocol,  ///< EPROTO: what TLS libraries leave after a failed handshake
  other,
};

/// Classifies an errno (POSIX) / WSA error (Windows) value left by a socket call.
SocketError classifySocketError(int code);

/// The OS's words for such a value.
std::string socketErrorText(int code);

enum class ResolveError { temporary, not_found, other };

/// Classifies a getaddrinfo() result code.
ResolveError classifyResolveError(int code);

/// The resolver's words for it (gai_strerror).
std::string resolveErrorText(int code);

}  // namespace psa::os
