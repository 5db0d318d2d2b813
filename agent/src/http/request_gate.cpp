#include "http/request_gate.h"

#include <openssl/crypto.h>

#include <boost/asio/ip/address.hpp>

#include "psa/store/text.h"

namespace psa::agent::http {
namespace {

constexpr size_t kMaxTarget = 2048;

bool sameSecret(std::string_view a, std::string_view b) {
  // Constant time over the token, so response timing does not leak its prefix.
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string Request::path() const { return target.substr(0, target.find('?')); }

bool isLoopbackHost(std::string_view host) {
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    const size_t close = name.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    name = name.substr(1, close - 1);
  } else if (const size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (text::asciiUpper(name) == "LOCALHOST") {
    return true;
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(name), ec);
  return !ec && address.is_loopback();
}

Verdict admit(const Request& r, const AccessPolicy& policy) {
  if (r.method != "GET" && r.method != "HEAD") {
    return {405, "read-only endpoint: only GET and HEAD"};
  }
  if (r.target.empty() || r.target.front() != '/' || r.target.size() > kMaxTarget) {
    return {400, "bad request target"};
  }
  if (r.host.empty()) {
    return {400, "missing Host header"};
  }
  if (policy.loopback_hosts_only && !isLoopbackHost(r.host)) {
    return {421, "this endpoint answers only to localhost, 127.0.0.1 or [::1]"};
  }
  if (!policy.bearer_token.empty()) {
    constexpr std::string_view kScheme = "Bearer ";
    const std::string_view auth = r.authorization;
    if (auth.size() <= kScheme.size() ||
        text::asciiUpper(auth.substr(0, kScheme.size())) != "BEARER " ||
        !sameSecret(auth.substr(kScheme.size()), policy.bearer_token)) {
      return {401, "a valid bearer token is required"};
    }
  }
  return {};
}

}  // namespace psa::agent::http
