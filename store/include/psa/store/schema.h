// A declarative schema for configuration objects (Fluent Bit config_map style): one table of
// fields with types, defaults, ranges and enumerations, used both to validate (every problem
// reported at once, each with its JSON path and line) and to mask secrets for display.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "psa/store/json.h"

namespace psa::schema {

enum class Type { string, integer, number, boolean, object, array, any };

std::string_view typeName(Type t);

/// One validation problem.
struct Issue {
  std::string path;  ///< e.g. "adapters[1].listen"
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;
  /// "line 12, column 7: adapters[1].listen: expected HOST:PORT"
  std::string format() const;
};

struct ObjectSchema;
using ObjectSchemaPtr = std::shared_ptr<const ObjectSchema>;

/// Extra check for a value that already has the right type: returns an error message or
/// nullopt.
using Check = std::function<std::optional<std::string>(const json::Value&)>;

struct Field {
  std::string name;
  Type type = Type::string;
  bool required = false;
  bool secret = false;              ///< masked by mask()
  std::optional<json::Value> default_value;
  std::optional<double> min;        ///< numbers: value; strings/arrays: length
  std::optional<double> max;
  std::vector<std::string> one_of;  ///< allowed string values
  ObjectSchemaPtr object;           ///< schema of an object, or of each array item object
  Type item_type = Type::any;       ///< arrays: type of each item
  Check check;
  std::string doc;

  // Fluent builders: Field::str("listen").req().check(hostPort).doc("...")
  static Field str(std::string name);
  static Field integer(std::string name);
  static Field number(std::string name);
  static Field boolean(std::string name);
  static Field obj(std::string name, ObjectSchemaPtr schema);
  static Field array(std::string name, Type item_type);
  static Field arrayOf(std::string name, ObjectSchemaPtr item_schema);
  static Field anyValue(std::string name);
  Field& req() { required = true; return *this; }
  Field& hide() { secret = true; return *this; }
  Field& def(json::Value v) { default_value = std::move(v); return *this; }
  Field& range(double lo, double hi) { min = lo; max = hi; return *this; }
  Field& atLeast(double lo) { min = lo; return *this; }
  Field& oneOf(std::vector<std::string> values) { one_of = std::move(values); return *this; }
  Field& verify(Check c) { check = std::move(c); return *this; }
  Field& describe(std::string d) { doc = std::move(d); return *this; }
};

struct ObjectSchema {
  std::vector<Field> fields;
  bool allow_unknown = false;
  /// Whole-object check after the fields (e.g. "either a or b"): appends issues.
  std::function<void(const json::Value&, const std::string& path, std::vector<Issue>&)> check;

  const Field* field(std::string_view name) const;
};

/// Validates `value` against `schema`, appending every problem to `issues`. `path` is the
/// path of `value` itself ("" for the document root).
void validate(const json::Value& value, const ObjectSchema& schema, const std::string& path,
              std::vector<Issue>& issues);

/// Validates one value against one field (type, range, enum, nested schema, check).
void validateField(const json::Value& value, const Field& field, const std::string& path,
                   std::vector<Issue>& issues);

/// A copy of `value` with defaults filled in for absent optional fields (recursively).
json::Value withDefaults(const json::Value& value, const ObjectSchema& schema);

/// A copy of `value` with every secret field's value replaced by "********".
json::Value mask(const json::Value& value, const ObjectSchema& schema);

/// "a.b" / "a[3]" path joining.
std::string childPath(const std::string& parent, std::string_view key);
std::string indexPath(const std::string& parent, size_t index);

}  // namespace psa::schema
