// URL and form helpers for the API adapters (RFC 3986 percent-encoding).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace psa::adapters::api {

using Params = std::vector<std::pair<std::string, std::string>>;

/// Percent-encodes everything except RFC 3986 unreserved characters and those in `keep`.
std::string percentEncode(std::string_view s, std::string_view keep = {});
/// Decodes %XX and (form style) '+' as space. Invalid escapes are kept as they are.
std::string percentDecode(std::string_view s, bool plus_is_space = true);
/// "a=1&b=x%20y"
std::string encodeParams(const Params& params);
/// Appends params to a URL (with '?' or '&').
std::string withQuery(std::string url, const Params& params);
/// "https://host:port" of an absolute URL ("" if not absolute).
std::string originOf(std::string_view url);
/// Resolves `ref` against `base`: absolute URLs stay, "/path" takes base's origin, "?q" keeps
/// base's path, anything else is appended to base's directory.
std::string resolveUrl(std::string_view base, std::string_view ref);
/// The value of query parameter `name` in `url` (decoded), "" if absent.
std::string queryParam(std::string_view url, std::string_view name);

/// `url` without trailing slashes (a configured base URL, before paths are appended).
std::string trimSlash(std::string url);

}  // namespace psa::adapters::api
