#include "psa/store/schema.h"

#include <algorithm>
#include <cmath>

namespace psa::schema {

std::string_view typeName(Type t) {
  switch (t) {
    case Type::string: return "string";
    case Type::integer: return "integer";
    case Type::number: return "number";
    case Type::boolean: return "boolean";
    case Type::object: return "object";
    case Type::array: return "array";
    case Type::any: return "any value";
  }
  return "?";
}

std::string Issue::format() const {
  std::string out;
  if (line > 0) {
    out += "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
  }
  out += path.empty() ? std::string("(document)") : path;
  out += ": ";
  out += message;
  return out;
}

Field Field::str(std::string name) {
  Field f;
  f.name = std::move(name);
  f.type = Type::string;
  return f;
}
Field Field::integer(std::string name) {
  Field f = str(std::move(name));
  f.type = Type::integer;
  return f;
}
Field Field::number(std::string name) {
  Field f = str(std::move(name));
  f.type = Type::number;
  return f;
}
Field Field::boolean(std::string name) {
  Field f = str(std::move(name));
  f.type = Type::boolean;
  return f;
}
Field Field::obj(std::string name, ObjectSchemaPtr schema) {
  Field f = str(std::move(name));
  f.type = Type::object;
  f.object = std::move(schema);
  return f;
}
Field Field::array(std::string name, Type item_type) {
  Field f = str(std::move(name));
  f.type = Type::array;
  f.item_type = item_type;
  return f;
}
Field Field::arrayOf(std::string name, ObjectSchemaPtr item_schema) {
  Field f = str(std::move(name));
  f.type = Type::array;
  f.item_type = Type::object;
  f.object = std::move(item_schema);
  return f;
}
Field Field::anyValue(std::string name) {
  Field f = str(std::move(name));
  f.type = Type::any;
  return f;
}

const Field* ObjectSchema::field(std::string_view name) const {
  for (const auto& f : fields) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

std::string childPath(const std::string& parent, std::string_view key) {
  if (parent.empty()) {
    return std::string(key);
  }
  return parent + "." + std::string(key);
}

std::string indexPath(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

namespace {

void add(std::vector<Issue>& issues, const json::Value& at, const std::string& path,
         std::string message) {
  issues.push_back(Issue{path, at.pos().line, at.pos().column, std::move(message)});
}

bool typeMatches(const json::Value& v, Type t) {
  switch (t) {
    case Type::string: return v.isString();
    case Type::integer: return v.isInteger();
    case Type::number: return v.isNumber();
    case Type::boolean: return v.isBool();
    case Type::object: return v.isObject();
    case Type::array: return v.isArray();
    case Type::any: return true;
  }
  return false;
}

std::string describeValue(const json::Value& v) {
  if (v.isNumber() && !v.isInteger()) {
    return "a non-integer number";
  }
  return std::string("a ") + std::string(json::Value::typeName(v.type()));
}

std::string fmt(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e18) {
    return std::to_string(static_cast<int64_t>(d));
  }
  return std::to_string(d);
}

void checkRange(const json::Value& v, const Field& f, const std::string& path,
                std::vector<Issue>& issues) {
  if (!f.min && !f.max) {
    return;
  }
  double x;
  std::string what;
  if (v.isNumber()) {
    x = v.asNumber();
    what = "value";
  } else if (v.isString()) {
    x = static_cast<double>(v.asString().size());
    what = "length";
  } else if (v.isArray()) {
    x = static_cast<double>(v.items().size());
    what = "number of items";
  } else {
    return;
  }
  if (f.min && x < *f.min) {
    if (f.max) {
      add(issues, v, path, what + " " + fmt(x) + " out of range, expected " + fmt(*f.min) +
                               ".." + fmt(*f.max));
    } else {
      add(issues, v, path, what + " " + fmt(x) + " too small, expected at least " + fmt(*f.min));
    }
  } else if (f.max && x > *f.max) {
    if (f.min) {
      add(issues, v, path, what + " " + fmt(x) + " out of range, expected " + fmt(*f.min) +
                               ".." + fmt(*f.max));
    } else {
      add(issues, v, path, what + " " + fmt(x) + " too large, expected at most " + fmt(*f.max));
    }
  }
}

}  // namespace

void validateField(const json::Value& v, const Field& f, const std::string& path,
                   std::vector<Issue>& issues) {
  if (!typeMatches(v, f.type)) {
    add(issues, v, path,
        "expected " + std::string(f.type == Type::integer ? "an integer" : "a ") +
            (f.type == Type::integer ? "" : std::string(typeName(f.type))) + ", found " +
            describeValue(v));
    return;
  }
  checkRange(v, f, path, issues);
  if (!f.one_of.empty() && v.isString()) {
    bool found = false;
    for (const auto& s : f.one_of) {
      found = found || s == v.asString();
    }
    if (!found) {
      std::string list;
      for (size_t k = 0; k < f.one_of.size(); ++k) {
        list += (k ? ", " : "") + f.one_of[k];
      }
      add(issues, v, path, "\"" + v.asString() + "\" is not one of: " + list);
    }
  }
  if (f.type == Type::object && f.object) {
    validate(v, *f.object, path, issues);
  }
  if (f.type == Type::array) {
    for (size_t k = 0; k < v.items().size(); ++k) {
      const json::Value& item = v.items()[k];
      const std::string ipath = indexPath(path, k);
      if (!typeMatches(item, f.item_type)) {
        add(issues, item, ipath,
            "expected " + std::string(typeName(f.item_type)) + ", found " + describeValue(item));
        continue;
      }
      if (f.item_type == Type::object && f.object) {
        validate(item, *f.object, ipath, issues);
      }
    }
  }
  if (f.check) {
    if (auto problem = f.check(v)) {
      add(issues, v, path, *problem);
    }
  }
}

void validate(const json::Value& value, const ObjectSchema& schema, const std::string& path,
              std::vector<Issue>& issues) {
  if (!value.isObject()) {
    add(issues, value, path, "expected an object, found " + describeValue(value));
    return;
  }
  for (size_t k = 0; k < value.members().size(); ++k) {
    const auto& [key, v] = value.members()[k];
    const std::string p = childPath(path, key);
    for (size_t j = 0; j < k; ++j) {
      if (value.members()[j].first == key) {
        add(issues, v, p, "duplicate key");
      }
    }
    const Field* f = schema.field(key);
    if (f == nullptr) {
      if (!schema.allow_unknown) {
        std::string known;
        for (size_t j = 0; j < schema.fields.size(); ++j) {
          known += (j ? ", " : "") + schema.fields[j].name;
        }
        add(issues, v, p, "unknown key (known keys: " + known + ")");
      }
      continue;
    }
    validateField(v, *f, p, issues);
  }
  for (const Field& f : schema.fields) {
    if (f.required && value.find(f.name) == nullptr) {
      add(issues, value, childPath(path, f.name),
          "required " + std::string(typeName(f.type)) + " is missing" +
              (f.doc.empty() ? "" : " (" + f.doc + ")"));
    }
  }
  if (schema.check) {
    schema.check(value, path, issues);
  }
}

json::Value withDefaults(const json::Value& value, const ObjectSchema& schema) {
  json::Value out = value;
  if (!out.isObject()) {
    return out;
  }
  for (const Field& f : schema.fields) {
    json::Value* v = out.find(f.name);
    if (v == nullptr) {
      if (f.default_value) {
        out.set(f.name, *f.default_value);
      } else if (f.type == Type::object && f.object && !f.required &&
                 std::none_of(f.object->fields.begin(), f.object->fields.end(),
                              [](const Field& sub) { return sub.required; })) {
        // Absent optional sections get their defaults too, so readers need no special case
        // (unless the section has required keys: then absence means "not configured").
        out.set(f.name, withDefaults(json::Value::object(), *f.object));
      }
      continue;
    }
    if (f.type == Type::object && f.object && v->isObject()) {
      *v = withDefaults(*v, *f.object);
    } else if (f.type == Type::array && f.object && v->isArray()) {
      for (auto& item : v->items()) {
        if (item.isObject()) {
          item = withDefaults(item, *f.object);
        }
      }
    }
  }
  return out;
}

json::Value mask(const json::Value& value, const ObjectSchema& schema) {
  json::Value out = value;
  if (!out.isObject()) {
    return out;
  }
  for (auto& [key, v] : out.members()) {
    const Field* f = schema.field(key);
    if (f == nullptr) {
      continue;
    }
    if (f->secret) {
      v = json::Value::string("********");
    } else if (f->type == Type::object && f->object) {
      v = mask(v, *f->object);
    } else if (f->type == Type::array && f->object && v.isArray()) {
      for (auto& item : v.items()) {
        item = mask(item, *f->object);
      }
    }
  }
  return out;
}

}  // namespace psa::schema
