// A tiny length-prefixed token format for parser checkpoints ("3:csv1:9:...").
// Each token is `<decimal length>:<bytes>`; numbers are tokens holding decimal digits.
// Private to the file codecs.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace psa::adapters::file::detail {

class TokenWriter {
 public:
  void str(std::string_view s) {
    out_ += std::to_string(s.size());
    out_.push_back(':');
    out_.append(s);
  }
  void num(uint64_t n) { str(std::to_string(n)); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class TokenReader {
 public:
  explicit TokenReader(std::string_view in) : in_(in) {}

  /// Next token; false if malformed or absent.
  bool str(std::string_view& out) {
    const size_t colon = in_.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 10) {
      return false;
    }
    uint64_t len = 0;
    if (!parseDigits(in_.substr(0, colon), len) || len > in_.size() - colon - 1) {
      return false;
    }
    out = in_.substr(colon + 1, len);
    in_.remove_prefix(colon + 1 + len);
    return true;
  }
  bool num(uint64_t& out) {
    std::string_view s;
    return str(s) && parseDigits(s, out);
  }
  bool done() const { return in_.empty(); }

  static bool parseDigits(std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 19) {
      return false;
    }
    for (char c : s) {
      if (c < '0' || c > '9') {
        return false;
      }
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }

 private:
  std::string_view in_;
};

}  // namespace psa::adapters::file::detail
