// Where an HTTP request goes, parsed from its absolute URL: scheme, host, port, the Host
// header and the request target (RFC 3986). Used by the HTTP transport; no I/O.
#pragma once

#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::api {

/// The parts of an absolute http(s) URL a transport needs.
struct HttpTarget {
  bool tls = false;         ///< https
  std::string host;         ///< for DNS and the certificate check: no brackets, lower case
  std::string port;         ///< decimal; the scheme's default when the URL has none
  std::string authority;    ///< host:port for messages: "epic.local:443", "[::1]:8443"
  std::string host_header;  ///< host, plus ":port" when it is not the scheme's default
  std::string origin;       ///< scheme://host:port, the key of a connection cache
  std::string path;         ///< origin-form request target (path and query, no fragment)
};

/// Parses an absolute, percent-encoded http(s) URL. Characters RFC 3986 does not allow in the
/// target (a "|" or space in a vendor's next link) get percent-encoded; everything legal,
/// including existing %XX, stays untouched. Errors: Errc::invalid_argument (not absolute, not
/// http(s), no or bad host, bad port, user info); messages never quote the path or query.
Result<HttpTarget> parseHttpTarget(const std::string& url);

/// Percent-encodes the characters RFC 3986 does not allow in a request target.
std::string legalizeTarget(std::string_view target);

}  // namespace psa::adapters::api
