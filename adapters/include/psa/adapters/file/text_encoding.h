// Text encodings of dropped files: UTF-8 validation, Windows-1252 -> UTF-8 conversion and
// JSON string escaping, shared by the CSV codec (and usable by other file codecs). Pure
// functions, no allocation beyond appending to the caller's buffer; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace psa::adapters::file {

/// How the bytes of a text file are to be read.
enum class TextEncoding : uint8_t {
  utf8,         ///< strict UTF-8; invalid sequences are errors. A leading BOM is skipped.
  windows1252,  ///< Windows-1252 ("ANSI"), converted to UTF-8. A UTF-8 BOM switches to utf8.
  /// UTF-8 when a record is valid UTF-8, otherwise that record is read as Windows-1252.
  /// Decided per record, so it needs no state across records (and none in a checkpoint).
  auto_detect,
};

/// "utf-8", "windows-1252", "auto".
std::string_view encodingName(TextEncoding encoding) noexcept;

/// Inverse of encodingName(); also accepts "utf8", "cp1252" and "windows1252" (any case).
/// ISO-8859-1 names are not accepted: it differs from Windows-1252 in 0x80-0x9F, and files
/// labelled "latin1" are nearly always 1252. nullopt if unknown.
std::optional<TextEncoding> parseEncoding(std::string_view name) noexcept;

/// Offset of the first byte of the first ill-formed UTF-8 sequence in `text` (overlong forms,
/// surrogates, code points above U+10FFFF and truncated sequences are ill-formed), or
/// std::string_view::npos when all of `text` is well-formed UTF-8.
size_t findInvalidUtf8(std::string_view text) noexcept;

/// The Unicode code point of one Windows-1252 byte. The five bytes Windows-1252 leaves
/// undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to the C1 controls of the same value, as
/// Windows' own converter and the WHATWG Encoding Standard do, so no input is rejected.
char32_t windows1252ToCodePoint(uint8_t byte) noexcept;

/// Appends `text` (Windows-1252) to `out` as UTF-8. Never fails.
void appendWindows1252AsUtf8(std::string& out, std::string_view text);

/// Appends `utf8` as a JSON string literal (RFC 8259) including the quotes: `"` and `\`
/// are escaped, control characters below U+0020 become \n, \r, \t, \b, \f or \u00XX, all
/// other bytes are copied. The caller guarantees `utf8` is well-formed UTF-8.
void appendJsonString(std::string& out, std::string_view utf8);

/// Like appendJsonString(), converting `text` from Windows-1252 to UTF-8 on the way.
void appendJsonStringFromWindows1252(std::string& out, std::string_view text);

}  // namespace psa::adapters::file
