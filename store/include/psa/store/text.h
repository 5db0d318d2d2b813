// Small text helpers that several parsers share (JSON, HL7, CSV): one implementation each.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace psa::text {

/// Appends code point `cp` (at most 0x10FFFF, not a surrogate: the caller checks) as UTF-8.
void appendUtf8(std::string& out, uint32_t cp);

/// `s` with ASCII a-z upper-cased; every other byte unchanged (no locale).
std::string asciiUpper(std::string_view s);

}  // namespace psa::text
