#include <winsock2.h>

#include "psa/store/os/socket_error.h"
#include "psa/store/os/system_error.h"

namespace psa::os {

SocketError classifySocketError(int code) {
  switch (code) {
    case 0:
      return SocketError::none;
    case WSAECONNREFUSED:
      return SocketError::refused;
    case WSAETIMEDOUT:
      return SocketError::timed_out;
    case WSAENETUNREACH:
      return SocketError::network_unreachable;
    case WSAEHOSTUNREACH:
      return SocketError::host_unreachable;
    case WSAECONNRESET:
    case WSAECONNABORTED:
      return SocketError::reset;
    default:
      return SocketError::other;
  }
}

// FormatMessage knows the WSA codes.
std::string socketErrorText(int code) { return errorText(code); }

ResolveError classifyResolveError(int code) {
  if (code == WSATRY_AGAIN) {
    return ResolveError::temporary;
  }
  if (code == WSAHOST_NOT_FOUND || code == WSANO_DATA) {
    return ResolveError::not_found;
  }
  return ResolveError::other;
}

std::string resolveErrorText(int code) { return errorText(code); }

}  // namespace psa::os
