// JSON values that remember where they came from: every value carries its line, column and
// byte span in the source text, so config errors can name the line and adapters can forward
// an entry's exact bytes ("payload exactly as the server sent it") without re-serialising.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/store/result.h"

namespace psa::json {

struct Position {
  uint32_t line = 1;    ///< 1-based
  uint32_t column = 1;  ///< 1-based, in bytes
  size_t offset = 0;    ///< 0-based byte offset
};

class Value;
using Member = std::pair<std::string, Value>;

/// A parsed or built JSON value. Objects keep member order (and duplicates, if the parser was
/// told to allow them).
class Value {
 public:
  enum class Type : uint8_t { null, boolean, number, string, array, object };

  Value() = default;
  static Value null() { return Value(); }
  static Value boolean(bool b);
  static Value number(double d);
  static Value integer(int64_t i);
  static Value string(std::string s);
  static Value array(std::vector<Value> items = {});
  static Value object(std::vector<Member> members = {});

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::null; }
  bool isBool() const { return type_ == Type::boolean; }
  bool isNumber() const { return type_ == Type::number; }
  /// A number written without fraction or exponent that fits in int64.
  bool isInteger() const { return type_ == Type::number && is_int_; }
  bool isString() const { return type_ == Type::string; }
  bool isArray() const { return type_ == Type::array; }
  bool isObject() const { return type_ == Type::object; }

  bool asBool() const { return bool_; }
  double asNumber() const { return is_int_ ? static_cast<double>(int_) : num_; }
  int64_t asInt() const { return is_int_ ? int_ : static_cast<int64_t>(num_); }
  const std::string& asString() const { return str_; }
  const std::vector<Value>& items() const { return items_; }
  std::vector<Value>& items() { return items_; }
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }

  /// First member named `key`, or nullptr (also when this is not an object).
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  /// Convenience lookups with a fallback when absent or of another type.
  std::string getString(std::string_view key, std::string fallback = {}) const;
  int64_t getInt(std::string_view key, int64_t fallback = 0) const;
  bool getBool(std::string_view key, bool fallback = false) const;

  /// Sets (replacing the first existing) member `key`. Turns null into an object.
  Value& set(std::string key, Value v);
  /// Appends to an array. Turns null into an array.
  Value& push(Value v);
  bool erase(std::string_view key);

  /// Where the value starts in the source text (default position for built values).
  const Position& pos() const { return pos_; }
  /// One past the value's last byte in the source text.
  size_t endOffset() const { return end_; }
  /// The exact source bytes of this value.
  std::string_view raw(std::string_view source) const {
    return source.substr(pos_.offset, end_ - pos_.offset);
  }

  static std::string_view typeName(Type t);

  friend bool operator==(const Value& a, const Value& b);

 private:
  friend class Parser;
  Type type_ = Type::null;
  bool bool_ = false;
  bool is_int_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  std::string str_;
  std::vector<Value> items_;
  std::vector<Member> members_;
  Position pos_;
  size_t end_ = 0;
};

struct Limits {
  size_t max_bytes = 64u << 20;  ///< whole document
  size_t max_depth = 64;         ///< nesting of arrays/objects
  size_t max_string = 16u << 20;  ///< one string, decoded bytes
  bool allow_duplicate_keys = true;
};

/// Parses one JSON document (RFC 8259, UTF-8; a leading BOM is skipped). Errors are
/// Errc::invalid_input or Errc::limit with "line L column C: what"; never throws.
Result<Value> parse(std::string_view text, const Limits& limits = {});

/// Compact (or 2-space indented) serialisation. Non-finite numbers become null.
std::string serialize(const Value& v, bool pretty = false);

/// How quote() writes control characters. One loop serves every quoting in the tree:
///   json     JSON with its short forms (\b \f \n \r \t), \u00XX for the other controls;
///   audit    JSON with \u00XX for every control but \n \r \t: the audit chain hashes these
///            bytes, so this form never changes;
///   logfmt   a log value: \xNN for controls and DEL (log lines are logfmt, not JSON).
enum class QuoteStyle { json, audit, logfmt };

/// `s` as a quoted string literal ('"' and '\' escaped, controls per `style`).
std::string quote(std::string_view s, QuoteStyle style = QuoteStyle::json);

}  // namespace psa::json
