// HTTP dates and Retry-After (RFC 9110 §5.6.7, §10.2.3): the throttle signals the REST/FHIR
// pollers honour. Pure functions; no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace psa::adapters::api {

/// Parses an HTTP date in any of the three RFC 9110 forms (IMF-fixdate
/// "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", asctime
/// "Sun Nov  6 08:49:37 1994"). Returns Unix milliseconds, or nullopt for anything else.
std::optional<int64_t> parseHttpDate(std::string_view text);

/// IMF-fixdate of `unix_ms` (milliseconds are dropped).
std::string formatHttpDate(int64_t unix_ms);

/// The delay a Retry-After value asks for: delay-seconds ("120") or an HTTP date. A date is
/// measured against `reference_ms`, which should be the server's own `Date` header when the
/// response has one (the server clock may be skewed against ours), else our wall clock.
/// The result is clamped to [0, max]. nullopt when the value is neither form.
std::optional<std::chrono::milliseconds> parseRetryAfter(
    std::string_view value, int64_t reference_ms,
    std::chrono::milliseconds max = std::chrono::hours(1));

}  // namespace psa::adapters::api
