// What the HTTP endpoint admits before any handler runs: the part of request handling we own
// (Beast parses the bytes). Pure and fuzzed (tests/fuzz/fuzz_http_request.cpp).
#pragma once

#include <string>
#include <string_view>

namespace psa::agent::http {

/// The request fields the gate and the handlers look at.
struct Request {
  std::string method;         ///< "GET"
  std::string target;         ///< "/metrics?x=1" as sent
  std::string host;           ///< the Host header
  std::string authorization;  ///< the Authorization header
  std::string path() const;   ///< target without the query
};

struct AccessPolicy {
  /// Bound to loopback: the Host header must name a loopback host, so a web page elsewhere
  /// cannot read the endpoint through a DNS name rebound to 127.0.0.1.
  bool loopback_hosts_only = true;
  std::string bearer_token;  ///< empty: no token asked for
};

/// A refusal: status 0 admits the request.
struct Verdict {
  int status = 0;
  std::string reason;  ///< for the response body and the log; never echoes the request
};

Verdict admit(const Request& request, const AccessPolicy& policy);

/// Whether `host` (a Host header: name or address, optional port) names this machine's
/// loopback: localhost, 127.0.0.0/8, [::1].
bool isLoopbackHost(std::string_view host);

}  // namespace psa::agent::http
