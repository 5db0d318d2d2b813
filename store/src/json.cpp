#include "psa/store/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "psa/store/text.h"

namespace psa::json {

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::boolean;
  v.bool_ = b;
  return v;
}

Value Value::number(double d) {
  Value v;
  v.type_ = Type::number;
  v.num_ = d;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.type_ = Type::number;
  v.is_int_ = true;
  v.int_ = i;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::string;
  v.str_ = std::move(s);
  return v;
}

Value Value::array(std::vector<Value> items) {
  Value v;
  v.type_ = Type::array;
  v.items_ = std::move(items);
  return v;
}

Value Value::object(std::vector<Member> members) {
  Value v;
  v.type_ = Type::object;
  v.members_ = std::move(members);
  return v;
}

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::object) {
    return nullptr;
  }
  for (const auto& m : members_) {
    if (m.first == key) {
      return &m.second;
    }
  }
  return nullptr;
}

Value* Value::find(std::string_view key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->find(key));
}

std::string Value::getString(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  return (v != nullptr && v->isString()) ? v->str_ : fallback;
}

int64_t Value::getInt(std::string_view key, int64_t fallback) const {
  const Value* v = find(key);
  return (v != nullptr && v->isNumber()) ? v->asInt() : fallback;
}

bool Value::getBool(std::string_view key, bool fallback) const {
  const Value* v = find(key);
  return (v != nullptr && v->isBool()) ? v->bool_ : fallback;
}

Value& Value::set(std::string key, Value v) {
  if (type_ == Type::null) {
    type_ = Type::object;
  }
  for (auto& m : members_) {
    if (m.first == key) {
      m.second = std::move(v);
      return m.second;
    }
  }
  members_.emplace_back(std::move(key), std::move(v));
  return members_.back().second;
}

Value& Value::push(Value v) {
  if (type_ == Type::null) {
    type_ = Type::array;
  }
  items_.push_back(std::move(v));
  return items_.back();
}

bool Value::erase(std::string_view key) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->first == key) {
      members_.erase(it);
      return true;
    }
  }
  return false;
}

std::string_view Value::typeName(Type t) {
  switch (t) {
    case Type::null: return "null";
    case Type::boolean: return "boolean";
    case Type::number: return "number";
    case Type::string: return "string";
    case Type::array: return "array";
    case Type::object: return "object";
  }
  return "?";
}

bool operator==(const Value& a, const Value& b) {
  if (a.type_ != b.type_) {
    return false;
  }
  switch (a.type_) {
    case Value::Type::null: return true;
    case Value::Type::boolean: return a.bool_ == b.bool_;
    case Value::Type::number:
      if (a.is_int_ && b.is_int_) {
        return a.int_ == b.int_;
      }
      return a.asNumber() == b.asNumber();
    case Value::Type::string: return a.str_ == b.str_;
    case Value::Type::array: return a.items_ == b.items_;
    case Value::Type::object: return a.members_ == b.members_;
  }
  return false;
}

// Recursive-descent parser. Depth is bounded by Limits::max_depth, so recursion is bounded.
class Parser {
 public:
  Parser(std::string_view text, const Limits& limits) : s_(text), limits_(limits) {}

  Result<Value> parseDocument() {
    if (s_.size() > limits_.max_bytes) {
      return Error(Errc::limit, "document is " + std::to_string(s_.size()) +
                                    " bytes, more than the limit of " +
                                    std::to_string(limits_.max_bytes));
    }
    if (s_.size() >= 3 && static_cast<unsigned char>(s_[0]) == 0xEF &&
        static_cast<unsigned char>(s_[1]) == 0xBB && static_cast<unsigned char>(s_[2]) == 0xBF) {
      i_ = 3;
      col_start_ = 3;
    }
    skipWs();
    Value v;
    if (!parseValue(v, 0)) {
      return fail();
    }
    skipWs();
    if (i_ != s_.size()) {
      err_ = "unexpected data after the JSON value";
      return fail();
    }
    return v;
  }

 private:
  Error fail() const {
    return Error(code_, "line " + std::to_string(err_line_ ? err_line_ : line_) + " column " +
                            std::to_string(err_line_ ? err_col_ : col()) + ": " + err_);
  }

  uint32_t col() const { return static_cast<uint32_t>(i_ - col_start_ + 1); }

  Position here() const { return Position{line_, col(), i_}; }

  bool error(std::string msg, Errc code = Errc::invalid_input) {
    if (err_.empty()) {
      err_ = std::move(msg);
      code_ = code;
      err_line_ = line_;
      err_col_ = col();
    }
    return false;
  }

  void skipWs() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '\n') {
        ++line_;
        ++i_;
        col_start_ = i_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++i_;
      } else {
        break;
      }
    }
  }

  bool parseValue(Value& v, size_t depth) {
    if (i_ >= s_.size()) {
      return error("unexpected end of input, expected a value");
    }
    v.pos_ = here();
    const char c = s_[i_];
    bool ok;
    switch (c) {
      case '{': ok = parseObject(v, depth + 1); break;
      case '[': ok = parseArray(v, depth + 1); break;
      case '"':
        v.type_ = Value::Type::string;
        ok = parseString(v.str_);
        break;
      case 't': ok = literal("true", v, Value::Type::boolean, true); break;
      case 'f': ok = literal("false", v, Value::Type::boolean, false); break;
      case 'n': ok = literal("null", v, Value::Type::null, false); break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          ok = parseNumber(v);
        } else {
          ok = error(std::string("unexpected character ") + describeChar(c) + ", expected a value");
        }
    }
    v.end_ = i_;
    return ok;
  }

  static std::string describeChar(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      return std::string("'") + c + "'";
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%02x", u);
    return buf;
  }

  bool literal(std::string_view word, Value& v, Value::Type t, bool b) {
    if (s_.substr(i_, word.size()) != word) {
      return error("invalid literal, expected '" + std::string(word) + "'");
    }
    i_ += word.size();
    v.type_ = t;
    v.bool_ = b;
    return true;
  }

  bool parseNumber(Value& v) {
    const size_t start = i_;
    bool integral = true;
    if (s_[i_] == '-') {
      ++i_;
    }
    if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') {
      return error("invalid number");
    }
    if (s_[i_] == '0') {
      ++i_;
      if (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        return error("invalid number: leading zero");
      }
    } else {
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        ++i_;
      }
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      integral = false;
      ++i_;
      if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') {
        return error("invalid number: digit expected after '.'");
      }
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        ++i_;
      }
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integral = false;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) {
        ++i_;
      }
      if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '9') {
        return error("invalid number: digit expected in exponent");
      }
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        ++i_;
      }
    }
    if (i_ - start > 64) {
      return error("number too long", Errc::limit);
    }
    char buf[72];
    std::memcpy(buf, s_.data() + start, i_ - start);
    buf[i_ - start] = '\0';
    v.type_ = Value::Type::number;
    if (integral) {
      errno = 0;
      char* end = nullptr;
      long long ll = std::strtoll(buf, &end, 10);
      if (errno == 0) {
        v.is_int_ = true;
        v.int_ = ll;
        return true;
      }
    }
    v.num_ = std::strtod(buf, nullptr);
    // 1e400 is valid JSON grammar but no double holds it; infinity would not survive a round trip.
    if (!std::isfinite(v.num_)) {
      i_ = start;
      return error("number out of range (does not fit a double)");
    }
    return true;
  }

  bool parseHex4(uint32_t& out) {
    if (i_ + 4 > s_.size()) {
      return error("truncated \\u escape");
    }
    out = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        out |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        out |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return error("invalid hex digit in \\u escape");
      }
    }
    return true;
  }

  // Length of a valid UTF-8 sequence starting at i_, or 0.
  size_t utf8Length() const {
    const auto* p = reinterpret_cast<const unsigned char*>(s_.data()) + i_;
    const size_t left = s_.size() - i_;
    const unsigned char c = p[0];
    auto cont = [&](size_t k) { return k < left && (p[k] & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF) {
      return cont(1) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
      if (!cont(1) || !cont(2)) {
        return 0;
      }
      if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)) {
        return 0;  // overlong or surrogate
      }
      return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) {
        return 0;
      }
      if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)) {
        return 0;
      }
      return 4;
    }
    return 0;
  }

  bool parseString(std::string& out) {
    ++i_;  // opening quote
    while (true) {
      // Fast path: copy a run of plain bytes.
      size_t run = i_;
      while (run < s_.size()) {
        unsigned char c = static_cast<unsigned char>(s_[run]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) {
          break;
        }
        ++run;
      }
      out.append(s_.data() + i_, run - i_);
      i_ = run;
      if (out.size() > limits_.max_string) {
        return error("string longer than " + std::to_string(limits_.max_string) + " bytes",
                     Errc::limit);
      }
      if (i_ >= s_.size()) {
        return error("unterminated string");
      }
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) {
        return error("control character " + describeChar(static_cast<char>(c)) +
                     " in string (must be escaped)");
      }
      if (c >= 0x80) {
        size_t n = utf8Length();
        if (n == 0) {
          return error("invalid UTF-8 in string");
        }
        out.append(s_.data() + i_, n);
        i_ += n;
        continue;
      }
      // backslash
      ++i_;
      if (i_ >= s_.size()) {
        return error("unterminated escape");
      }
      char e = s_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!parseHex4(cp)) {
            return false;
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') {
              return error("unpaired surrogate in \\u escape");
            }
            i_ += 2;
            if (!parseHex4(lo)) {
              return false;
            }
            if (lo < 0xDC00 || lo > 0xDFFF) {
              return error("invalid low surrogate in \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return error("unpaired surrogate in \\u escape");
          }
          text::appendUtf8(out, cp);
          break;
        }
        default:
          --i_;
          return error("invalid escape \\" + std::string(1, e));
      }
    }
  }

  bool parseArray(Value& v, size_t depth) {
    if (depth > limits_.max_depth) {
      return error("nesting deeper than " + std::to_string(limits_.max_depth), Errc::limit);
    }
    v.type_ = Value::Type::array;
    ++i_;
    skipWs();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    while (true) {
      skipWs();
      v.items_.emplace_back();
      if (!parseValue(v.items_.back(), depth)) {
        return false;
      }
      skipWs();
      if (i_ >= s_.size()) {
        return error("unterminated array, expected ',' or ']'");
      }
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == ']') {
        ++i_;
        return true;
      }
      return error("expected ',' or ']' in array, found " + describeChar(s_[i_]));
    }
  }

  bool parseObject(Value& v, size_t depth) {
    if (depth > limits_.max_depth) {
      return error("nesting deeper than " + std::to_string(limits_.max_depth), Errc::limit);
    }
    v.type_ = Value::Type::object;
    ++i_;
    skipWs();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    while (true) {
      skipWs();
      if (i_ >= s_.size()) {
        return error("unterminated object, expected a key");
      }
      if (s_[i_] != '"') {
        return error("expected a quoted key in object, found " + describeChar(s_[i_]));
      }
      std::string key;
      const Position key_pos = here();
      if (!parseString(key)) {
        return false;
      }
      if (!limits_.allow_duplicate_keys && v.find(key) != nullptr) {
        line_ = key_pos.line;  // report at the key
        i_ = key_pos.offset;
        col_start_ = key_pos.offset - (key_pos.column - 1);
        return error("duplicate key \"" + key + "\"");
      }
      skipWs();
      if (i_ >= s_.size() || s_[i_] != ':') {
        return error("expected ':' after key \"" + key + "\"");
      }
      ++i_;
      skipWs();
      v.members_.emplace_back(std::move(key), Value());
      if (!parseValue(v.members_.back().second, depth)) {
        return false;
      }
      skipWs();
      if (i_ >= s_.size()) {
        return error("unterminated object, expected ',' or '}'");
      }
      if (s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (s_[i_] == '}') {
        ++i_;
        return true;
      }
      return error("expected ',' or '}' in object, found " + describeChar(s_[i_]));
    }
  }

  std::string_view s_;
  const Limits& limits_;
  size_t i_ = 0;
  uint32_t line_ = 1;
  size_t col_start_ = 0;
  std::string err_;
  Errc code_ = Errc::invalid_input;
  uint32_t err_line_ = 0;
  uint32_t err_col_ = 0;
};

Result<Value> parse(std::string_view text, const Limits& limits) {
  Parser p(text, limits);
  return p.parseDocument();
}

std::string quote(std::string_view s, QuoteStyle style) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        char buf[8];
        if (style == QuoteStyle::json && c == '\b') {
          out += "\\b";
        } else if (style == QuoteStyle::json && c == '\f') {
          out += "\\f";
        } else if (style == QuoteStyle::logfmt && (c < 0x20 || c == 0x7f)) {
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else if (c < 0x20) {
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
      }
    }
  }
  out.push_back('"');
  return out;
}

namespace {

void serializeTo(const Value& v, std::string& out, bool pretty, int indent) {
  auto newline = [&](int level) {
    if (pretty) {
      out.push_back('\n');
      out.append(static_cast<size_t>(level) * 2, ' ');
    }
  };
  switch (v.type()) {
    case Value::Type::null: out += "null"; break;
    case Value::Type::boolean: out += v.asBool() ? "true" : "false"; break;
    case Value::Type::number:
      if (v.isInteger()) {
        out += std::to_string(v.asInt());
      } else if (!std::isfinite(v.asNumber())) {
        out += "null";
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v.asNumber());
        out += buf;
      }
      break;
    case Value::Type::string: out += quote(v.asString()); break;
    case Value::Type::array:
      out.push_back('[');
      for (size_t k = 0; k < v.items().size(); ++k) {
        if (k > 0) {
          out.push_back(',');
        }
        newline(indent + 1);
        serializeTo(v.items()[k], out, pretty, indent + 1);
      }
      if (!v.items().empty()) {
        newline(indent);
      }
      out.push_back(']');
      break;
    case Value::Type::object:
      out.push_back('{');
      for (size_t k = 0; k < v.members().size(); ++k) {
        if (k > 0) {
          out.push_back(',');
        }
        newline(indent + 1);
        out += quote(v.members()[k].first);
        out += pretty ? ": " : ":";
        serializeTo(v.members()[k].second, out, pretty, indent + 1);
      }
      if (!v.members().empty()) {
        newline(indent);
      }
      out.push_back('}');
      break;
  }
}

}  // namespace

std::string serialize(const Value& v, bool pretty) {
  std::string out;
  serializeTo(v, out, pretty, 0);
  return out;
}

}  // namespace psa::json
