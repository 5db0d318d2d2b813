// Blocking TCP primitives with deadlines for the diagnostics (`pms-agent check` probes a broker
// step by step: DNS, TCP, TLS, MQTT, so each failure can be named). Not for the data paths, which
// use Asio. One implementation per OS: tcp_probe_posix.cpp (getaddrinfo, non-blocking connect,
// poll) and tcp_probe_win.cpp (the same through Winsock, WSAPoll). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace psa::os {

/// One address of a resolved host (opaque bytes of a sockaddr) and its text form.
struct ResolvedAddress {
  std::vector<unsigned char> sockaddr_bytes;
  int family = 0;
  std::string text;  ///< "192.0.2.7", "2001:db8::7"
};

/// Resolves host:port for TCP within `timeout` (the lookup runs on a detached thread that owns
/// its state, so a hung resolver cannot hold the caller). False with `error` in words.
bool resolveTcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                std::vector<ResolvedAddress>& out, std::string& error);

/// A connected socket (an fd, or a SOCKET on Windows, usable with SSL_set_fd), or -1.
using SocketHandle = intptr_t;

/// Connects within `timeout`; the socket is left non-blocking. -1 with `error` in words.
SocketHandle connectTcp(const ResolvedAddress& address, std::chrono::milliseconds timeout,
                        std::string& error);

/// Waits until the socket is readable (or writable) or `timeout_ms` passed. False on timeout.
bool waitSocket(SocketHandle socket, bool for_write, int timeout_ms);

void closeSocket(SocketHandle socket);

}  // namespace psa::os
