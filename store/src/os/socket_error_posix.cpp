#include <netdb.h>

#include <cerrno>

#include "psa/store/os/socket_error.h"
#include "psa/store/os/system_error.h"

namespace psa::os {

SocketError classifySocketError(int code) {
  switch (code) {
    case 0:
      return SocketError::none;
    case ECONNREFUSED:
      return SocketError::refused;
    case ETIMEDOUT:
      return SocketError::timed_out;
    case ENETUNREACH:
      return SocketError::network_unreachable;
    case EHOSTUNREACH:
      return SocketError::host_unreachable;
    case ECONNRESET:
      return SocketError::reset;
    case EPROTO:
      return SocketError::protocol;
    default:
      return SocketError::other;
  }
}

std::string socketErrorText(int code) { return errnoText(code); }

ResolveError classifyResolveError(int code) {
  if (code == EAI_AGAIN) {
    return ResolveError::temporary;
  }
  if (code == EAI_NONAME
#ifdef EAI_NODATA
      || code == EAI_NODATA
#endif
  ) {
    return ResolveError::not_found;
  }
  return ResolveError::other;
}

std::string resolveErrorText(int code) { return gai_strerror(code); }

}  // namespace psa::os
