#include "psa/adapters/hl7/encoding.h"

#include <array>
#include <cstring>

#include "psa/store/text.h"

namespace psa::adapters::hl7 {
namespace {

bool isAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool usableDelimiter(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f && !isAlnum(c);
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

constexpr char kHexDigits[] = "0123456789ABCDEF";

// Windows-1252 code points for 0x80..0x9F (0 = undefined; decoded as U+FFFD).
constexpr std::array<uint16_t, 32> kCp1252High = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

constexpr uint32_t kReplacement = 0xFFFD;

uint32_t cp1252(unsigned char b) {
  if (b >= 0x80 && b < 0xA0) {
    uint16_t cp = kCp1252High[b - 0x80];
    return cp != 0 ? cp : kReplacement;
  }
  return b;
}

uint32_t latin9(unsigned char b) {
  switch (b) {
    case 0xA4:
      return 0x20AC;
    case 0xA6:
      return 0x0160;
    case 0xA8:
      return 0x0161;
    case 0xB4:
      return 0x017D;
    case 0xB8:
      return 0x017E;
    case 0xBC:
      return 0x0152;
    case 0xBD:
      return 0x0153;
    case 0xBE:
      return 0x0178;
    default:
      return cp1252(b);
  }
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF).
size_t utf8SequenceLength(std::string_view s, size_t i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  size_t n = s.size() - i;
  auto cont = [&](size_t k) {
    return k < n && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  if (b0 < 0x80) {
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return cont(1) ? 2 : 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) {
      return 0;
    }
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 >= 0xA0)) {
      return 0;
    }
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) {
      return 0;
    }
    auto b1 = static_cast<unsigned char>(s[i + 1]);
    if ((b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 >= 0x90)) {
      return 0;
    }
    return 4;
  }
  return 0;
}

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8SequenceLength(s, i);
    if (len == 0) {
      return false;
    }
    i += len;
  }
  return true;
}

bool allAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return false;
    }
  }
  return true;
}

void utf8Repair(std::string_view s, std::string& out) {
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8SequenceLength(s, i);
    if (len == 0) {
      text::appendUtf8(out, kReplacement);
      ++i;
    } else {
      out.append(s.data() + i, len);
      i += len;
    }
  }
}

template <class Map>
void singleByte(std::string_view s, Map map, std::string& out) {
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out.push_back(c);
    } else {
      text::appendUtf8(out, map(b));
    }
  }
}

std::string upperTrimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return text::asciiUpper(s);
}

}  // namespace

bool Delimiters::usable() const {
  std::array<char, 6> all = {field, component, repetition, escape, subcomponent, truncation};
  size_t n = truncation != 0 ? 6 : 5;
  for (size_t i = 0; i < n; ++i) {
    if (!usableDelimiter(all[i])) {
      return false;
    }
    for (size_t j = 0; j < i; ++j) {
      if (all[i] == all[j]) {
        return false;
      }
    }
  }
  return true;
}

std::string Delimiters::encodingCharacters() const {
  std::string out;
  for (char c : {component, repetition, escape, subcomponent, truncation}) {
    if (c != 0) {
      out.push_back(c);
    }
  }
  return out;
}

Charset charsetFromName(std::string_view name) {
  if (name.size() > 64) {
    return Charset::unknown;
  }
  std::string n = upperTrimmed(name);
  if (n.empty() || n == "ASCII" || n == "US-ASCII" || n == "ISO IR6" || n == "ISO-IR6" ||
      n == "ISO_IR 6") {
    return Charset::ascii;
  }
  if (n == "8859/1" || n == "8859-1" || n == "ISO-8859-1" || n == "ISO8859-1" ||
      n == "ISO_8859-1" || n == "ISO 8859-1" || n == "LATIN1" || n == "LATIN-1" ||
      n == "ISO IR100" || n == "ISO_IR 100") {
    return Charset::latin1;
  }
  if (n == "8859/15" || n == "8859-15" || n == "ISO-8859-15" || n == "ISO8859-15" ||
      n == "ISO_8859-15" || n == "LATIN9" || n == "LATIN-9") {
    return Charset::latin9;
  }
  if (n == "WINDOWS-1252" || n == "CP1252" || n == "WIN1252" || n == "WINDOWS1252") {
    return Charset::windows1252;
  }
  if (n == "UNICODE UTF-8" || n == "UNICODE" || n == "UTF-8" || n == "UTF8" ||
      n == "UNICODE UTF8" || n == "UNICODE-UTF-8" || n == "ISO IR192" || n == "ISO_IR 192") {
    return Charset::utf8;
  }
  return Charset::unknown;
}

std::string_view charsetName(Charset charset) {
  switch (charset) {
    case Charset::ascii:
      return "ASCII";
    case Charset::latin1:
      return "8859/1";
    case Charset::latin9:
      return "8859/15";
    case Charset::windows1252:
      return "WINDOWS-1252";
    case Charset::utf8:
      return "UNICODE UTF-8";
    case Charset::unknown:
      return "unknown";
  }
  return "unknown";
}

void unescapeTo(std::string_view raw, const Delimiters& d, std::string& out) {
  const char esc = d.escape;
  if (esc == 0) {
    out.append(raw);
    return;
  }
  size_t i = 0;
  while (i < raw.size()) {
    const void* hit = std::memchr(raw.data() + i, esc, raw.size() - i);
    if (hit == nullptr) {
      out.append(raw.data() + i, raw.size() - i);
      return;
    }
    size_t start = static_cast<size_t>(static_cast<const char*>(hit) - raw.data());
    out.append(raw.data() + i, start - i);
    const void* close_hit = std::memchr(raw.data() + start + 1, esc, raw.size() - start - 1);
    if (close_hit == nullptr) {
      out.append(raw.data() + start, raw.size() - start);  // unterminated: literal
      return;
    }
    size_t close = static_cast<size_t>(static_cast<const char*>(close_hit) - raw.data());
    std::string_view seq = raw.substr(start + 1, close - start - 1);
    bool handled = true;
    if (seq.size() == 1) {
      switch (seq[0]) {
        case 'F':
          out.push_back(d.field);
          break;
        case 'S':
          out.push_back(d.component);
          break;
        case 'T':
          out.push_back(d.subcomponent);
          break;
        case 'R':
          out.push_back(d.repetition);
          break;
        case 'E':
          out.push_back(d.escape);
          break;
        case 'P':
          if (d.truncation != 0) {
            out.push_back(d.truncation);
          } else {
            handled = false;
          }
          break;
        default:
          handled = false;
          break;
      }
      if (handled && out.back() == 0) {
        out.pop_back();  // an undefined delimiter: drop rather than emit NUL
      }
    } else if (seq.size() >= 3 && seq[0] == 'X' && (seq.size() - 1) % 2 == 0) {
      for (size_t k = 1; k < seq.size(); k += 2) {
        if (hexValue(seq[k]) < 0 || hexValue(seq[k + 1]) < 0) {
          handled = false;
          break;
        }
      }
      if (handled) {
        for (size_t k = 1; k < seq.size(); k += 2) {
          out.push_back(static_cast<char>(hexValue(seq[k]) * 16 + hexValue(seq[k + 1])));
        }
      }
    } else if (seq == ".br") {
      out.push_back('\n');
    } else {
      handled = false;
    }
    if (!handled) {
      out.append(raw.data() + start, close - start + 1);  // pass through, escapes included
    }
    i = close + 1;
  }
}

void toUtf8To(std::string_view bytes, Charset charset, std::string& out) {
  if (allAscii(bytes)) {
    out.append(bytes);
    return;
  }
  switch (charset) {
    case Charset::utf8:
      utf8Repair(bytes, out);
      return;
    case Charset::latin1:
    case Charset::windows1252:
      singleByte(bytes, cp1252, out);
      return;
    case Charset::latin9:
      singleByte(bytes, latin9, out);
      return;
    case Charset::ascii:
    case Charset::unknown:
      if (isValidUtf8(bytes)) {
        out.append(bytes);
      } else {
        singleByte(bytes, cp1252, out);
      }
      return;
  }
}

std::string decodeText(std::string_view raw, const Delimiters& d, Charset charset) {
  std::string out;
  if (d.escape == 0 || raw.find(d.escape) == std::string_view::npos) {
    toUtf8To(raw, charset, out);
    return out;
  }
  std::string bytes;
  unescapeTo(raw, d, bytes);
  toUtf8To(bytes, charset, out);
  return out;
}

void escapeTo(std::string_view text, const Delimiters& d, std::string& out) {
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c != 0 && c == d.field) {
      out.push_back(d.escape);
      out.push_back('F');
      out.push_back(d.escape);
    } else if (c != 0 && c == d.component) {
      out.push_back(d.escape);
      out.push_back('S');
      out.push_back(d.escape);
    } else if (c != 0 && c == d.subcomponent) {
      out.push_back(d.escape);
      out.push_back('T');
      out.push_back(d.escape);
    } else if (c != 0 && c == d.repetition) {
      out.push_back(d.escape);
      out.push_back('R');
      out.push_back(d.escape);
    } else if (c != 0 && c == d.escape) {
      out.push_back(d.escape);
      out.push_back('E');
      out.push_back(d.escape);
    } else if (u < 0x20 || u == 0x7f) {
      out.push_back(d.escape);
      out.push_back('X');
      out.push_back(kHexDigits[u >> 4]);
      out.push_back(kHexDigits[u & 0xF]);
      out.push_back(d.escape);
    } else {
      out.push_back(c);
    }
  }
}

void transcodeTo(std::string_view raw, const Delimiters& from, const Delimiters& to,
                 std::string& out) {
  if (from == to) {
    out.append(raw);
    return;
  }
  // Per byte: 0 = data (escape if it is a delimiter in `to`), else the replacement + 1.
  std::array<uint16_t, 256> map{};
  auto set = [&map](char src, char dst) {
    if (src != 0 && dst != 0) {
      map[static_cast<unsigned char>(src)] =
          static_cast<uint16_t>(static_cast<unsigned char>(dst)) + 1;
    }
  };
  set(from.subcomponent, to.subcomponent);
  set(from.component, to.component);
  set(from.repetition, to.repetition);
  set(from.escape, to.escape);
  for (char c : raw) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\r' || c == '\n') {
      continue;
    }
    if (map[u] != 0) {
      out.push_back(static_cast<char>(map[u] - 1));
    } else {
      escapeTo(std::string_view(&c, 1), to, out);
    }
  }
}

}  // namespace psa::adapters::hl7
