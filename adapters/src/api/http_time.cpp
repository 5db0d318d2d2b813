#include "psa/adapters/api/http_time.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "psa/store/clock.h"

namespace psa::adapters::api {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

// A tiny cursor over the text.
struct Scan {
  std::string_view s;
  size_t pos = 0;
  bool lit(std::string_view l) {
    if (s.substr(pos, l.size()) != l) {
      return false;
    }
    pos += l.size();
    return true;
  }
  bool num(size_t min_digits, size_t max_digits, int& out) {
    size_t n = 0;
    int v = 0;
    while (pos < s.size() && n < max_digits && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      v = v * 10 + (s[pos] - '0');
      ++pos;
      ++n;
    }
    out = v;
    return n >= min_digits;
  }
  bool month(int& out) {
    for (size_t i = 0; i < kMonths.size(); ++i) {
      if (lit(kMonths[i])) {
        out = static_cast<int>(i) + 1;
        return true;
      }
    }
    return false;
  }
  bool time(int& h, int& m, int& sec) {
    return num(2, 2, h) && lit(":") && num(2, 2, m) && lit(":") && num(2, 2, sec);
  }
  bool skipWord() {  // day name up to ',' or ' '
    const size_t start = pos;
    while (pos < s.size() && std::isalpha(static_cast<unsigned char>(s[pos]))) {
      ++pos;
    }
    return pos > start;
  }
};

std::optional<int64_t> assemble(int y, int mo, int d, int h, int mi, int se) {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970 ||
      y > 9999) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  return unixFromUtcCalendar(tm) * 1000;
}

}  // namespace

std::optional<int64_t> parseHttpDate(std::string_view text) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  while (!text.empty() && text.back() == ' ') {
    text.remove_suffix(1);
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  {  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    Scan sc{text};
    if (sc.skipWord() && sc.lit(", ") && sc.num(2, 2, d) && sc.lit(" ") && sc.month(mo) &&
        sc.lit(" ") && sc.num(4, 4, y) && sc.lit(" ") && sc.time(h, mi, se) && sc.lit(" GMT") &&
        sc.pos == text.size()) {
      return assemble(y, mo, d, h, mi, se);
    }
  }
  {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    Scan sc{text};
    if (sc.skipWord() && sc.lit(", ") && sc.num(2, 2, d) && sc.lit("-") && sc.month(mo) &&
        sc.lit("-") && sc.num(2, 2, y) && sc.lit(" ") && sc.time(h, mi, se) && sc.lit(" GMT") &&
        sc.pos == text.size()) {
      // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
      y += y < 70 ? 2000 : 1900;
      return assemble(y, mo, d, h, mi, se);
    }
  }
  {  // asctime: Sun Nov  6 08:49:37 1994
    Scan sc{text};
    if (sc.skipWord() && sc.lit(" ") && sc.month(mo) && sc.lit(" ")) {
      if (sc.pos < text.size() && text[sc.pos] == ' ') {
        ++sc.pos;
      }
      if (sc.num(1, 2, d) && sc.lit(" ") && sc.time(h, mi, se) && sc.lit(" ") && sc.num(4, 4, y) &&
          sc.pos == text.size()) {
        return assemble(y, mo, d, h, mi, se);
      }
    }
  }
  return std::nullopt;
}

std::string formatHttpDate(int64_t unix_ms) {
  const std::tm tm = utcCalendar(unix_ms / 1000);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                std::string(kDays[static_cast<size_t>(tm.tm_wday)]).c_str(), tm.tm_mday,
                std::string(kMonths[static_cast<size_t>(tm.tm_mon)]).c_str(), tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value,
                                                         int64_t reference_ms,
                                                         std::chrono::milliseconds max) {
  while (!value.empty() && value.front() == ' ') {
    value.remove_prefix(1);
  }
  while (!value.empty() && value.back() == ' ') {
    value.remove_suffix(1);
  }
  if (value.empty()) {
    return std::nullopt;
  }
  if (std::all_of(value.begin(), value.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (value.size() > 9) {
      return max;
    }
    int64_t secs = 0;
    for (char c : value) {
      secs = secs * 10 + (c - '0');
    }
    return std::min(std::chrono::milliseconds(secs * 1000), max);
  }
  const auto when = parseHttpDate(value);
  if (!when) {
    return std::nullopt;
  }
  const int64_t delta = *when - reference_ms;
  if (delta <= 0) {
    return std::chrono::milliseconds(0);
  }
  return std::min(std::chrono::milliseconds(delta), max);
}

}  // namespace psa::adapters::api
