#include <winsock2.h>
#include <ws2tcpip.h>

#include "psa/store/os/system_error.h"
#include "psa/store/os/tcp_probe.h"
#include "tcp_probe_os.h"

namespace psa::os {

namespace {

void startWinsock() {
  static const bool started = [] {
    WSADATA data{};
    return ::WSAStartup(MAKEWORD(2, 2), &data) == 0;
  }();
  (void)started;
}

}  // namespace

namespace detail {

Lookup lookupTcp(const std::string& host, int port) {
  startWinsock();
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
    DWORD len = sizeof buf;
    ::WSAAddressToStringA(p->ai_addr, static_cast<DWORD>(p->ai_addrlen), nullptr, buf, &len);
    a.text = buf;
    if (const auto colon = a.text.rfind(':');
        colon != std::string::npos && a.text.find('.') != std::string::npos) {
      a.text.resize(colon);  // "192.0.2.7:8883" -> the address alone
    }
    got.addrs.push_back(std::move(a));
  }
  if (res != nullptr) {
    ::freeaddrinfo(res);
  }
  return got;
}

std::string resolverErrorText(int rc) { return errorText(rc); }

}  // namespace detail

SocketHandle connectTcp(const ResolvedAddress& a, std::chrono::milliseconds timeout,
                        std::string& error) {
  startWinsock();
  const SOCKET s = ::socket(a.family, SOCK_STREAM, IPPROTO_TCP);
  if (s == INVALID_SOCKET) {
    error = errorText(::WSAGetLastError());
    return -1;
  }
  u_long nonblocking = 1;
  ::ioctlsocket(s, FIONBIO, &nonblocking);
  const auto* sa = reinterpret_cast<const sockaddr*>(a.sockaddr_bytes.data());
  if (::connect(s, sa, static_cast<int>(a.sockaddr_bytes.size())) != 0 &&
      ::WSAGetLastError() != WSAEWOULDBLOCK) {
    error = errorText(::WSAGetLastError());
    ::closesocket(s);
    return -1;
  }
  WSAPOLLFD p{s, POLLWRNORM, 0};
  const int n = ::WSAPoll(&p, 1, static_cast<INT>(timeout.count()));
  if (n <= 0) {
    error = n == 0 ? "timed out after " + std::to_string(timeout.count() / 1000) + " s"
                   : errorText(::WSAGetLastError());
    ::closesocket(s);
    return -1;
  }
  int soerr = 0;
  int len = sizeof soerr;
  ::getsockopt(s, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&soerr), &len);
  if (soerr != 0 || (p.revents & (POLLERR | POLLHUP)) != 0) {
    error = errorText(soerr != 0 ? soerr : WSAECONNREFUSED);
    ::closesocket(s);
    return -1;
  }
  return static_cast<SocketHandle>(s);
}

bool waitSocket(SocketHandle socket, bool for_write, int timeout_ms) {
  WSAPOLLFD p{static_cast<SOCKET>(socket), static_cast<SHORT>(for_write ? POLLWRNORM : POLLRDNORM),
              0};
  return timeout_ms > 0 && ::WSAPoll(&p, 1, timeout_ms) > 0;
}

void closeSocket(SocketHandle socket) {
  if (socket != -1) {
    ::closesocket(static_cast<SOCKET>(socket));
  }
}

}  // namespace psa::os
