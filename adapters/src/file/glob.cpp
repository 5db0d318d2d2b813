#include "psa/adapters/file/glob.h"

#include <array>
#include <vector>

namespace psa::adapters::file {

namespace {

char fold(char c, bool ignore_case) {
  if (ignore_case && c >= 'A' && c <= 'Z') {
    return static_cast<char>(c - 'A' + 'a');
  }
  return c;
}

// One pattern element.
struct Token {
  enum class Type : uint8_t {
    literal,
    any_one,
    star,
    globstar,
    globstar_dir,
    set
  } type = Type::literal;
  char ch = 0;
  bool negate = false;
  std::string_view set;  // set body between '[' (after '!'/'^') and ']'
};

// Parses the class starting at pattern[i] == '['; returns the index one past ']' or npos.
size_t classEnd(std::string_view pattern, size_t i) {
  size_t j = i + 1;
  if (j < pattern.size() && (pattern[j] == '!' || pattern[j] == '^')) {
    ++j;
  }
  if (j < pattern.size() && pattern[j] == ']') {
    ++j;  // a leading ']' is a member
  }
  while (j < pattern.size() && pattern[j] != ']') {
    ++j;
  }
  return j < pattern.size() ? j + 1 : std::string_view::npos;
}

bool inSet(std::string_view set, char c, bool ignore_case) {
  const char fc = fold(c, ignore_case);
  for (size_t k = 0; k < set.size(); ++k) {
    if (k + 2 < set.size() && set[k + 1] == '-') {
      char lo = fold(set[k], ignore_case);
      char hi = fold(set[k + 2], ignore_case);
      if (static_cast<unsigned char>(fc) >= static_cast<unsigned char>(lo) &&
          static_cast<unsigned char>(fc) <= static_cast<unsigned char>(hi)) {
        return true;
      }
      // Also compare the unfolded character for ranges of upper-case letters.
      if (static_cast<unsigned char>(c) >= static_cast<unsigned char>(set[k]) &&
          static_cast<unsigned char>(c) <= static_cast<unsigned char>(set[k + 2])) {
        return true;
      }
      k += 2;
      continue;
    }
    if (fold(set[k], ignore_case) == fc) {
      return true;
    }
  }
  return false;
}

void tokenize(std::string_view pattern, std::vector<Token>& out) {
  for (size_t i = 0; i < pattern.size();) {
    const char c = pattern[i];
    Token t;
    if (c == '*') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '*') {
        t.type = Token::Type::globstar;
        i += 2;
        while (i < pattern.size() && pattern[i] == '*') {
          ++i;
        }
        if (i < pattern.size() && pattern[i] == '/') {
          t.type = Token::Type::globstar_dir;  // "**/": zero or more whole directories
          ++i;
        }
      } else {
        t.type = Token::Type::star;
        ++i;
      }
    } else if (c == '?') {
      t.type = Token::Type::any_one;
      ++i;
    } else if (c == '[') {
      const size_t end = classEnd(pattern, i);
      if (end == std::string_view::npos) {
        t.type = Token::Type::literal;
        t.ch = c;
        ++i;
      } else {
        size_t body = i + 1;
        t.type = Token::Type::set;
        if (pattern[body] == '!' || pattern[body] == '^') {
          t.negate = true;
          ++body;
        }
        t.set = pattern.substr(body, end - 1 - body);
        i = end;
      }
    } else {
      t.ch = c;
      ++i;
    }
    out.push_back(t);
  }
}

bool matchOne(const Token& t, char c, bool ignore_case) {
  switch (t.type) {
    case Token::Type::literal:
      return fold(t.ch, ignore_case) == fold(c, ignore_case);
    case Token::Type::any_one:
      return c != '/';
    case Token::Type::set:
      return c != '/' && inSet(t.set, c, ignore_case) != t.negate;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string> globProblem(std::string_view pattern) {
  if (pattern.empty()) {
    return "empty pattern";
  }
  if (pattern.size() > kMaxGlobBytes) {
    return "pattern longer than " + std::to_string(kMaxGlobBytes) + " bytes";
  }
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '[') {
      const size_t end = classEnd(pattern, i);
      if (end == std::string_view::npos) {
        return "unterminated '[' at column " + std::to_string(i + 1);
      }
      i = end - 1;
    } else if (pattern[i] == '\0') {
      return "NUL byte in pattern";
    }
  }
  if (pattern.front() == '/') {
    return "patterns are relative to the watched directory (no leading '/')";
  }
  return std::nullopt;
}

bool globMatch(std::string_view pattern, std::string_view text, bool ignore_case) {
  std::vector<Token> tokens;
  tokens.reserve(pattern.size());
  tokenize(pattern, tokens);
  // Dynamic programming over text positions: cur[j] = tokens[0..i) can match text[0..j).
  const size_t n = text.size();
  std::vector<char> cur(n + 1, 0);
  std::vector<char> next(n + 1, 0);
  cur[0] = 1;
  for (const Token& t : tokens) {
    std::fill(next.begin(), next.end(), 0);
    if (t.type == Token::Type::globstar_dir) {
      // next[j]: cur[j], or some k < j with cur[k] and text[j-1] == '/'.
      bool any = false;
      for (size_t j = 0; j <= n; ++j) {
        next[j] = (cur[j] || (any && j > 0 && text[j - 1] == '/')) ? 1 : 0;
        if (cur[j]) {
          any = true;
        }
      }
    } else if (t.type == Token::Type::star || t.type == Token::Type::globstar) {
      // next[j]: some k <= j with cur[k], and text[k..j) free of '/' unless '**'.
      bool reach = false;
      for (size_t j = 0; j <= n; ++j) {
        if (j > 0 && reach && t.type == Token::Type::star && text[j - 1] == '/') {
          reach = false;
        }
        if (cur[j]) {
          reach = true;
        }
        next[j] = reach ? 1 : 0;
      }
    } else {
      for (size_t j = 0; j < n; ++j) {
        if (cur[j] && matchOne(t, text[j], ignore_case)) {
          next[j + 1] = 1;
        }
      }
    }
    cur.swap(next);
  }
  return cur[n] != 0;
}

bool globMatchPath(std::string_view pattern, std::string_view relative_path, bool ignore_case) {
  if (pattern.find('/') != std::string_view::npos) {
    return globMatch(pattern, relative_path, ignore_case);
  }
  const size_t slash = relative_path.rfind('/');
  const std::string_view name =
      slash == std::string_view::npos ? relative_path : relative_path.substr(slash + 1);
  return globMatch(pattern, name, ignore_case);
}

}  // namespace psa::adapters::file
