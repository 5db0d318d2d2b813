// The dead-letter fallback: a payload no parser understood may still hold an SSN, so anything
// shaped like one is masked to its last four before the dead letter is stored.
#include "policy/policy_internal.h"

namespace psa::adapters::policy {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }

bool digitsAt(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) {
    return false;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!digit(s[at + i])) {
      return false;
    }
  }
  return true;
}

// 123-45-6789 with no digit on either side.
bool hyphenatedSsnAt(std::string_view s, size_t i) {
  return (i == 0 || !digit(s[i - 1])) && digitsAt(s, i, 3) && i + 11 <= s.size() &&
         s[i + 3] == '-' && digitsAt(s, i + 4, 2) && s[i + 6] == '-' && digitsAt(s, i + 7, 4) &&
         (i + 11 == s.size() || !digit(s[i + 11]));
}

void maskSpan(std::string& s, size_t begin, size_t end, Counts& counts) {
  bool changed = false;
  for (size_t i = begin; i + 4 < end; ++i) {
    if (s[i] != '*') {
      s[i] = '*';
      changed = true;
    }
  }
  if (changed) {
    ++counts.masked;
  }
}

// "PID|...": field 19 (the separator is the character after the id) when it is 9 digits.
void maskPid19(std::string& s, Counts& counts) {
  size_t line = 0;
  while (line < s.size()) {
    size_t end = s.find_first_of("\r\n", line);
    if (end == std::string::npos) {
      end = s.size();
    }
    if (end - line > 4 && s.compare(line, 3, "PID") == 0) {
      const char sep = s[line + 3];
      size_t at = line + 3;  // the separator before field 1
      int field = 1;
      while (at < end && field < 19) {
        at = s.find(sep, at + 1);
        if (at == std::string::npos || at >= end) {
          at = end;
          break;
        }
        ++field;  // `at` is now the separator before field `field`
      }
      if (field == 19 && at < end) {
        size_t stop = s.find(sep, at + 1);
        stop = stop == std::string::npos || stop > end ? end : stop;
        if (stop - at - 1 == 9 && digitsAt(s, at + 1, 9)) {
          maskSpan(s, at + 1, stop, counts);
        }
      }
    }
    line = end + 1;
  }
}

}  // namespace

Outcome maskSsnShapes(std::string_view payload) {
  Outcome out;
  std::string s(payload);
  for (size_t i = 0; i + 11 <= s.size(); ++i) {
    if (hyphenatedSsnAt(s, i)) {
      maskSpan(s, i, i + 11, out.counts);
      i += 10;
    }
  }
  maskPid19(s, out.counts);
  if (out.counts.total() > 0) {
    out.changed = true;
    out.payload = std::move(s);
  }
  return out;
}

}  // namespace psa::adapters::policy
