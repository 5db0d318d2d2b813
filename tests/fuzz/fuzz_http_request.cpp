// libFuzzer target: the local HTTP endpoint's request path up to the handlers: Beast's parser
// with the server's limits (http/request_reader.h), the mapping to our Request, then admit()
// under each access policy the server can run with. The input is split at its first byte so
// the bytes also arrive in two reads, as they may from a socket.
// Invariants: never crash; a refusal of unparsable bytes is 400, 413 or 431; whatever admit()
// lets through is a GET or HEAD of an absolute path with a Host, and under a token policy it
// carried the token; a refusal never echoes the request (its reason is one of a few texts).
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/request_gate.h"
#include "http/request_reader.h"

namespace http = psa::agent::http;

namespace {

constexpr std::string_view kToken = "fuzz-token-0123456789abcdef";

void check(const http::Request& request) {
  http::AccessPolicy open;
  open.loopback_hosts_only = false;
  http::AccessPolicy loopback;
  http::AccessPolicy token;
  token.loopback_hosts_only = false;
  token.bearer_token = std::string(kToken);
  for (const http::AccessPolicy* policy : {&open, &loopback, &token}) {
    const http::Verdict v = http::admit(request, *policy);
    if (v.status == 0) {
      if ((request.method != "GET" && request.method != "HEAD") || request.target.empty() ||
          request.target.front() != '/' || request.host.empty()) {
        __builtin_trap();
      }
      if (policy == &loopback && !http::isLoopbackHost(request.host)) {
        __builtin_trap();
      }
      if (policy == &token && request.authorization.find(kToken) == std::string::npos) {
        __builtin_trap();
      }
      (void)request.path();
    } else {
      if (v.status != 400 && v.status != 401 && v.status != 405 && v.status != 421) {
        __builtin_trap();
      }
      if (!request.target.empty() && request.target.size() > 8 &&
          v.reason.find(request.target) != std::string::npos) {
        __builtin_trap();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const size_t split = data[0] % 64;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  http::RequestParser parser;
  http::applyLimits(parser);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  // Two reads: Beast must give the same answer whatever the packet boundaries.
  const std::string_view first = bytes.substr(0, std::min(split, bytes.size()));
  if (!first.empty()) {
    used = parser.put(boost::asio::buffer(first.data(), first.size()), ec);
    if (ec == boost::beast::http::error::need_more) {
      ec = {};
    }
  }
  std::string rest(bytes.substr(used));
  while (!ec && !parser.is_done() && !rest.empty()) {
    const size_t n = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec == boost::beast::http::error::need_more) {
      ec = {};
      break;
    }
    if (n == 0) {
      break;
    }
    rest.erase(0, n);
  }
  if (!ec && !parser.is_done()) {
    if (!parser.got_some()) {
      return 0;  // no bytes: the server's read just times out
    }
    parser.put_eof(ec);
  }
  if (ec) {
    const int status = http::parseRefusal(ec);
    if (status != 0 && status != 400 && status != 413 && status != 431) {
      __builtin_trap();
    }
    return 0;
  }
  if (parser.is_done()) {
    check(http::toRequest(parser.get()));
  }
  return 0;
}
