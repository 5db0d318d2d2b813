#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "psa/store/os/system_error.h"
#include "psa/store/os/tcp_probe.h"
#include "tcp_probe_os.h"

namespace psa::os {

namespace detail {

Lookup lookupTcp(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  Lookup got;
  got.rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  for (addrinfo* p = res; got.rc == 0 && p != nullptr; p = p->ai_next) {
    ResolvedAddress a;
    const auto* bytes = reinterpret_cast<const unsigned char*>(p->ai_addr);
    a.sockaddr_bytes.assign(bytes, bytes + p->ai_addrlen);
    a.family = p->ai_family;
    char buf[INET6_ADDRSTRLEN] = {};
    const void* src =
        p->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr);
    ::inet_ntop(p->ai_family, src, buf, sizeof buf);
    a.text = buf;
    got.addrs.push_back(std::move(a));
  }
  if (res != nullptr) {
    ::freeaddrinfo(res);
  }
  return got;
}

std::string resolverErrorText(int rc) { return ::gai_strerror(rc); }

}  // namespace detail

SocketHandle connectTcp(const ResolvedAddress& a, std::chrono::milliseconds timeout,
                        std::string& error) {
  const int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = errnoText(errno);
    return -1;
  }
  const auto* sa = reinterpret_cast<const sockaddr*>(a.sockaddr_bytes.data());
  if (::connect(fd, sa, static_cast<socklen_t>(a.sockaddr_bytes.size())) != 0 &&
      errno != EINPROGRESS) {
    error = errnoText(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) {
    error = n == 0 ? "timed out after " + std::to_string(timeout.count() / 1000) + " s"
                   : errnoText(errno);
    ::close(fd);
    return -1;
  }
  int soerr = 0;
  socklen_t len = sizeof soerr;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr != 0) {
    error = errnoText(soerr);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool waitSocket(SocketHandle socket, bool for_write, int timeout_ms) {
  pollfd p{static_cast<int>(socket), static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
  return timeout_ms > 0 && ::poll(&p, 1, timeout_ms) > 0;
}

void closeSocket(SocketHandle socket) {
  if (socket >= 0) {
    ::close(static_cast<int>(socket));
  }
}

}  // namespace psa::os
