// Network addresses as the config writes them: a listener's HOST:PORT and an allow-list
// network. Shared by the MLLP listeners and the agent's HTTP endpoint.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::net {

/// One `listen` entry: an IP literal ("0.0.0.0", "[::]", "127.0.0.1") or "localhost", and a
/// port (0 = any free port; tests use it).
struct ListenEndpoint {
  std::string host;  ///< without brackets: "0.0.0.0", "::", "127.0.0.1"
  uint16_t port = 0;
  bool v6 = false;
  std::string text;  ///< as configured, for messages
};

/// "HOST:PORT", "[V6]:PORT" or "localhost:PORT". Errors: Errc::invalid_argument, in words.
Result<ListenEndpoint> parseListenEndpoint(std::string_view text);

/// An allow-list entry: an IPv4 or IPv6 network. A single address is a /32 or /128.
struct CidrRange {
  std::array<uint8_t, 16> bytes{};  ///< network address (IPv4 uses the first 4 bytes)
  bool v6 = false;
  int prefix = 0;
  std::string text;

  /// Whether `addr` (4 or 16 bytes, network order) lies in the range. IPv4-mapped IPv6
  /// addresses (::ffff:a.b.c.d) are compared as IPv4.
  bool contains(const uint8_t* addr, bool addr_v6) const;
};

/// "10.0.0.0/8", "192.168.1.20", "fd00::/8", "::1". Host bits must be zero.
/// Errors: Errc::invalid_argument, in words.
Result<CidrRange> parseCidr(std::string_view text);

/// Whether the address `host` (as in ListenEndpoint::host) is a loopback address (127/8, ::1).
bool isLoopback(const ListenEndpoint& ep);

}  // namespace psa::adapters::net
