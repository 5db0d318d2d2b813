#include "psa/adapters/file/text_encoding.h"

#include <array>
#include <cctype>
#include <cstring>

namespace psa::adapters::file {

namespace {

// Windows-1252 0x80..0x9F (0xA0..0xFF equal their code points, 0x00..0x7F are ASCII).
// Undefined bytes map to the C1 control of the same value.
constexpr std::array<char16_t, 32> kHigh1252 = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 80-87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,  // 88-8F
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 90-97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,  // 98-9F
};

constexpr char32_t codePoint1252(uint8_t b) {
  return (b >= 0x80 && b <= 0x9F) ? kHigh1252[b - 0x80] : b;
}

/// The UTF-8 bytes of each Windows-1252 byte, computed at compile time.
struct Utf8Seq {
  uint8_t len = 0;
  std::array<char, 3> bytes{};
};

constexpr std::array<Utf8Seq, 256> make1252Table() {
  std::array<Utf8Seq, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    const char32_t cp = codePoint1252(static_cast<uint8_t>(i));
    Utf8Seq s;
    if (cp < 0x80) {
      s.len = 1;
      s.bytes[0] = static_cast<char>(cp);
    } else if (cp < 0x800) {
      s.len = 2;
      s.bytes[0] = static_cast<char>(0xC0 | (cp >> 6));
      s.bytes[1] = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s.len = 3;
      s.bytes[0] = static_cast<char>(0xE0 | (cp >> 12));
      s.bytes[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s.bytes[2] = static_cast<char>(0x80 | (cp & 0x3F));
    }
    t[i] = s;
  }
  return t;
}

constexpr std::array<Utf8Seq, 256> k1252Utf8 = make1252Table();

/// 1 for bytes that must be escaped inside a JSON string.
constexpr std::array<uint8_t, 256> makeJsonEscapeTable() {
  std::array<uint8_t, 256> t{};
  for (unsigned i = 0; i < 0x20; ++i) {
    t[i] = 1;
  }
  t['"'] = 1;
  t['\\'] = 1;
  return t;
}

constexpr std::array<uint8_t, 256> kJsonEscape = makeJsonEscapeTable();

void appendEscape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out.append("\\\"");
      break;
    case '\\':
      out.append("\\\\");
      break;
    case '\n':
      out.append("\\n");
      break;
    case '\r':
      out.append("\\r");
      break;
    case '\t':
      out.append("\\t");
      break;
    case '\b':
      out.append("\\b");
      break;
    case '\f':
      out.append("\\f");
      break;
    default: {
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(u, sizeof u);
      break;
    }
  }
}

bool asciiOnly8(const unsigned char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return (w & 0x8080808080808080ULL) == 0;
}

}  // namespace

std::string_view encodingName(TextEncoding encoding) noexcept {
  switch (encoding) {
    case TextEncoding::utf8:
      return "utf-8";
    case TextEncoding::windows1252:
      return "windows-1252";
    case TextEncoding::auto_detect:
      return "auto";
  }
  return "?";
}

std::optional<TextEncoding> parseEncoding(std::string_view name) noexcept {
  std::string lower;
  for (char c : name) {
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (lower == "utf-8" || lower == "utf8") {
    return TextEncoding::utf8;
  }
  if (lower == "windows-1252" || lower == "windows1252" || lower == "cp1252") {
    return TextEncoding::windows1252;
  }
  if (lower == "auto") {
    return TextEncoding::auto_detect;
  }
  return std::nullopt;
}

size_t findInvalidUtf8(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (n - i >= 8 && asciiOnly8(s + i)) {
      i += 8;
      continue;
    }
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) {
        lo = 0xA0;  // no overlongs
      } else if (c == 0xED) {
        hi = 0x9F;  // no surrogates
      }
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) {
        lo = 0x90;  // no overlongs
      } else if (c == 0xF4) {
        hi = 0x8F;  // nothing above U+10FFFF
      }
    } else {
      return i;  // continuation byte without lead, C0/C1 overlong leads, F5..FF
    }
    if (n - i < len) {
      return i;  // truncated
    }
    if (s[i + 1] < lo || s[i + 1] > hi) {
      return i;
    }
    for (size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        return i;
      }
    }
    i += len;
  }
  return std::string_view::npos;
}

char32_t windows1252ToCodePoint(uint8_t byte) noexcept { return codePoint1252(byte); }

void appendWindows1252AsUtf8(std::string& out, std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t run = 0;  // start of the pending ASCII run
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < 0x80) {
      continue;
    }
    out.append(text.data() + run, i - run);
    const Utf8Seq& u = k1252Utf8[s[i]];
    out.append(u.bytes.data(), u.len);
    run = i + 1;
  }
  out.append(text.data() + run, n - run);
}

void appendJsonString(std::string& out, std::string_view utf8) {
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  const size_t n = utf8.size();
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < n; ++i) {
    if (kJsonEscape[s[i]] == 0) {
      continue;
    }
    out.append(utf8.data() + run, i - run);
    appendEscape(out, s[i]);
    run = i + 1;
  }
  out.append(utf8.data() + run, n - run);
  out.push_back('"');
}

void appendJsonStringFromWindows1252(std::string& out, std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = s[i];
    if (c >= 0x80) {
      out.append(text.data() + run, i - run);
      const Utf8Seq& u = k1252Utf8[c];
      out.append(u.bytes.data(), u.len);
      run = i + 1;
    } else if (kJsonEscape[c] != 0) {
      out.append(text.data() + run, i - run);
      appendEscape(out, c);
      run = i + 1;
    }
  }
  out.append(text.data() + run, n - run);
  out.push_back('"');
}

}  // namespace psa::adapters::file
