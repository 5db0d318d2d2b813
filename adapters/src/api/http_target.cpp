#include "http_target.h"

#include <cctype>

#include "url.h"

namespace psa::adapters::api {
namespace {

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

}  // namespace

Result<HttpTarget> parseHttpTarget(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return Error(Errc::invalid_argument, "not an absolute URL");
  }
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme != "https" && scheme != "http") {
    return Error(Errc::invalid_argument, "unsupported URL scheme " + scheme);
  }
  HttpTarget t;
  t.tls = scheme == "https";
  const size_t auth_start = scheme_end + 3;
  const size_t path_start = url.find_first_of("/?#", auth_start);
  const std::string authority = url.substr(
      auth_start, path_start == std::string::npos ? std::string::npos : path_start - auth_start);
  if (authority.find('@') != std::string::npos) {
    return Error(Errc::invalid_argument, "URLs with user info are not supported");
  }
  std::string host_literal;  // as written in the URL, brackets kept
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) {
      return Error(Errc::invalid_argument, "URL with a bad IPv6 host");
    }
    t.host = authority.substr(1, close - 1);
    host_literal = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        return Error(Errc::invalid_argument, "URL with a bad IPv6 host");
      }
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    t.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port = authority.substr(colon + 1);
    }
    host_literal = t.host;
  }
  if (t.host.empty()) {
    return Error(Errc::invalid_argument, "URL without host");
  }
  for (char ch : t.host) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f ||
        std::string_view("/?#[]@\"<>\\^`{|}").find(ch) != std::string_view::npos) {
      return Error(Errc::invalid_argument, "URL with a bad host name");
    }
  }
  t.host = lower(t.host);
  host_literal = lower(host_literal);
  const unsigned default_port = t.tls ? 443 : 80;
  unsigned port_number = default_port;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
      return Error(Errc::invalid_argument, "URL with a bad port");
    }
    port_number = static_cast<unsigned>(std::stoul(port));
    if (port_number == 0 || port_number > 65535) {
      return Error(Errc::invalid_argument, "URL with a bad port");
    }
  }
  t.port = std::to_string(port_number);
  t.authority = host_literal + ":" + t.port;
  t.host_header = port_number == default_port ? host_literal : t.authority;
  t.origin = scheme + "://" + t.authority;
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (const size_t hash = path.find('#'); hash != std::string::npos) {
    path.resize(hash);
  }
  if (path.empty() || path[0] == '?') {
    path.insert(0, "/");
  }
  t.path = legalizeTarget(path);
  return t;
}

std::string legalizeTarget(std::string_view s) {
  // RFC 3986 reserved and '%' pass: the target is already a URL, only the rest is escaped.
  return percentEncode(s, "!$&'()*+,;=:@/?%[]");
}

}  // namespace psa::adapters::api
