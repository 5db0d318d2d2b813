// HL7 v2 text encoding: delimiters, escape sequences and character sets (MSH-18).
//
// Decoding turns the raw bytes of one element into UTF-8 for inspection: escape sequences
// first (\F\ \S\ \T\ \R\ \E\ \P\ \Xhh..\ \.br\), then the message character set. Everything
// here is pure, allocation-bounded and thread-safe; nothing ever modifies its input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace psa::adapters::hl7 {

/// The delimiters of one message, taken from MSH-1 (field) and MSH-2 (encoding characters:
/// component, repetition, escape, sub-component, and since v2.7 optionally truncation).
/// A value of 0 means "not defined" (MSH-2 shorter than four characters).
struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = 0;  ///< v2.7+: fifth character of MSH-2 (usually '#'); 0 when absent

  /// `|^~\&` without truncation character.
  static constexpr Delimiters standard() { return Delimiters{}; }

  /// True when all five of field/component/repetition/escape/sub-component (and truncation,
  /// if set) are defined, pairwise distinct, printable ASCII and not letters or digits: the
  /// message can be echoed and split unambiguously.
  bool usable() const;

  /// The MSH-2 text for these delimiters ("^~\&" or "^~\&#").
  std::string encodingCharacters() const;

  friend bool operator==(const Delimiters&, const Delimiters&) = default;
};

/// Character sets of HL7 table 0211 the decoder understands.
enum class Charset : uint8_t {
  ascii,        ///< empty MSH-18, "ASCII"; bytes >= 0x80 are decoded heuristically (see toUtf8)
  latin1,       ///< "8859/1"
  latin9,       ///< "8859/15"
  windows1252,  ///< "WINDOWS-1252", "CP1252" (not in table 0211, but common)
  utf8,         ///< "UNICODE UTF-8", also "UNICODE", "UTF-8", "UTF8"
  unknown,      ///< anything else; decoded heuristically
};

/// Maps an MSH-18 value (one repetition, raw) to a Charset. Case-insensitive; surrounding
/// spaces ignored; accepts the table 0211 spellings and common aliases ("ISO-8859-1",
/// "LATIN1", "UTF-8", "UNICODE"). Empty means ASCII.
Charset charsetFromName(std::string_view name);

/// A display name ("ASCII", "8859/1", "8859/15", "WINDOWS-1252", "UNICODE UTF-8", "unknown").
std::string_view charsetName(Charset charset);

/// Appends `raw` with its escape sequences resolved, using delimiters `d`:
/// \F\ \S\ \T\ \R\ \E\ become the field/component/sub-component/repetition/escape character,
/// \P\ the truncation character (when defined), \Xhhhh..\ the bytes hhhh.. (even number of hex
/// digits), \.br\ a line feed. Highlighting (\H\ \N\), character-set switches (\C..\ \M..\),
/// other formatting commands, local escapes (\Z..\), malformed and unterminated sequences are
/// passed through unchanged. The result is in the message's character set.
void unescapeTo(std::string_view raw, const Delimiters& d, std::string& out);

/// Appends `bytes` (in `charset`) converted to UTF-8. The output is always valid UTF-8:
/// - utf8: invalid sequences become U+FFFD;
/// - latin1: bytes map to U+0000..U+00FF, except 0x80..0x9F which are read as Windows-1252
///   (senders declaring 8859/1 mostly mean Windows-1252);
/// - latin9, windows1252: their tables;
/// - ascii and unknown: valid UTF-8 is kept as is, anything else is read as Windows-1252.
void toUtf8To(std::string_view bytes, Charset charset, std::string& out);

/// unescapeTo + toUtf8To into a new string.
std::string decodeText(std::string_view raw, const Delimiters& d, Charset charset);

/// Appends `text` escaped for use as one element value with delimiters `d`: the five
/// delimiter characters become \F\ \S\ \T\ \R\ \E\, CR and LF become \X0D\ and \X0A\, other
/// control characters \Xhh\.
void escapeTo(std::string_view text, const Delimiters& d, std::string& out);

/// Appends `raw` (an element encoded with delimiters `from`) re-encoded for delimiters `to`:
/// structure (repetition, component, sub-component separators) and escape sequences are kept,
/// data characters that are delimiters in `to` are escaped, segment terminators dropped.
/// When `from == to` this is a plain copy.
void transcodeTo(std::string_view raw, const Delimiters& from, const Delimiters& to,
                 std::string& out);

}  // namespace psa::adapters::hl7
