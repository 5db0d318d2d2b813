// Network addresses as the config writes them: listen endpoints and allow-list networks.
#include "psa/adapters/net/address.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>

namespace psa::adapters::net {
namespace {

bool parsePort(std::string_view text, uint16_t& port) {
  if (text.empty() || text.size() > 5) {
    return false;
  }
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) {
    return false;
  }
  port = static_cast<uint16_t>(v);
  return true;
}

bool parseIp(const std::string& host, bool v6, uint8_t* out) {
  boost::system::error_code ec;
  if (v6) {
    const auto a = boost::asio::ip::make_address_v6(host, ec);
    if (!ec) {
      const auto bytes = a.to_bytes();
      std::copy(bytes.begin(), bytes.end(), out);
    }
  } else {
    const auto a = boost::asio::ip::make_address_v4(host, ec);
    if (!ec) {
      const auto bytes = a.to_bytes();
      std::copy(bytes.begin(), bytes.end(), out);
    }
  }
  return !ec;
}

}  // namespace

Result<ListenEndpoint> parseListenEndpoint(std::string_view text) {
  ListenEndpoint ep;
  ep.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "\"" + std::string(text) + "\": " + why);
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [IPV6]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    ep.v6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return bad("expected HOST:PORT (e.g. 0.0.0.0:2575 or [::]:2575)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad("an IPv6 address needs brackets: [ADDRESS]:PORT");
    }
  }
  if (!parsePort(port, ep.port)) {
    return bad("port must be a number 0..65535");
  }
  ep.host = std::string(host);
  if (!ep.v6 && ep.host == "localhost") {
    ep.host = "127.0.0.1";
  }
  uint8_t buf[16];
  if (!parseIp(ep.host, ep.v6, buf)) {
    return bad(ep.v6 ? "not an IPv6 address" : "not an IPv4 address (or localhost)");
  }
  return ep;
}

bool CidrRange::contains(const uint8_t* addr, bool addr_v6) const {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (addr_v6 && !v6 && std::equal(kMapped, kMapped + 12, addr)) {
    addr += 12;
    addr_v6 = false;
  }
  if (addr_v6 != v6) {
    return false;
  }
  int bits = prefix;
  for (size_t k = 0; bits > 0; ++k, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((addr[k] & mask) != bytes[k]) {
      return false;
    }
  }
  return true;
}

Result<CidrRange> parseCidr(std::string_view text) {
  CidrRange r;
  r.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "\"" + std::string(text) + "\": " + why);
  };
  const size_t slash = text.find('/');
  std::string host(text.substr(0, slash));
  r.v6 = host.find(':') != std::string::npos;
  if (!parseIp(host, r.v6, r.bytes.data())) {
    return bad("expected an IPv4 or IPv6 address or network (e.g. 10.0.0.0/8, fd00::/8)");
  }
  const int max_prefix = r.v6 ? 128 : 32;
  r.prefix = max_prefix;
  if (slash != std::string_view::npos) {
    uint16_t p = 0;
    if (!parsePort(text.substr(slash + 1), p) || p > max_prefix) {
      return bad("prefix length must be 0.." + std::to_string(max_prefix));
    }
    r.prefix = p;
  }
  for (int bit = r.prefix; bit < max_prefix; ++bit) {
    if (r.bytes[static_cast<size_t>(bit / 8)] & (0x80 >> (bit % 8))) {
      return bad("host bits set after /" + std::to_string(r.prefix) +
                 " (write the network address)");
    }
  }
  return r;
}

bool isLoopback(const ListenEndpoint& ep) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(ep.host, ec);
  return !ec && a.is_loopback();
}

}  // namespace psa::adapters::net
