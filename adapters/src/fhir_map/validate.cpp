// The structure walk: each member of a resource is looked up in the R4 table by its path
// (through data types and choice elements), checked for cardinality, type and required binding,
// and every required child of each object is checked for presence. Profiles and invariants
// follow (profiles.cpp).
#include "psa/adapters/fhir_map/validate.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>

#include "fhir_map/primitives.h"
#include "fhir_map/profiles.h"
#include "fhir_map/r4_definitions.h"

namespace psa::adapters::fhir_map {
namespace {

constexpr int kMaxDepth = 32;  // resources nested in resources (contained, Bundle entries)

const r4::ElementDef* findDef(std::string_view path) {
  const r4::ElementDef* end = r4::kElements + r4::kElementCount;
  const r4::ElementDef* it = std::lower_bound(
      r4::kElements, end, path,
      [](const r4::ElementDef& d, std::string_view p) { return std::string_view(d.path) < p; });
  return it != end && std::string_view(it->path) == path ? it : nullptr;
}

const char* valueSetCodes(std::string_view name) {
  const r4::ValueSetDef* end = r4::kValueSets + r4::kValueSetCount;
  const r4::ValueSetDef* it = std::lower_bound(
      r4::kValueSets, end, name,
      [](const r4::ValueSetDef& d, std::string_view n) { return std::string_view(d.name) < n; });
  return it != end && std::string_view(it->name) == name ? it->codes : nullptr;
}

bool inValueSet(const char* codes, std::string_view code) {
  const std::string_view all(codes);
  for (size_t at = all.find(code); at != std::string_view::npos; at = all.find(code, at + 1)) {
    if (at > 0 && all[at - 1] == '|' && at + code.size() < all.size() &&
        all[at + code.size()] == '|') {
      return true;
    }
  }
  return false;
}

// The direct children of definition path `base` ("Patient", "Patient.contact", "HumanName").
template <class F>
void forEachChild(std::string_view base, F&& f) {
  std::string prefix(base);
  prefix += '.';
  const r4::ElementDef* end = r4::kElements + r4::kElementCount;
  const r4::ElementDef* it = std::lower_bound(
      r4::kElements, end, std::string_view(prefix),
      [](const r4::ElementDef& d, std::string_view p) { return std::string_view(d.path) < p; });
  for (; it != end; ++it) {
    std::string_view p(it->path);
    if (p.substr(0, prefix.size()) != prefix) {
      break;
    }
    if (p.find('.', prefix.size()) == std::string_view::npos) {
      f(*it, p.substr(prefix.size()));
    }
  }
}

// "valueQuantity" against "value[x]" with types "Quantity|string|...": the chosen type, or "".
std::string_view choiceType(std::string_view member, std::string_view name, const char* types) {
  const std::string_view base = name.substr(0, name.size() - 3);
  if (member.size() <= base.size() || member.substr(0, base.size()) != base) {
    return {};
  }
  const std::string_view suffix = member.substr(base.size());
  std::string_view all(types);
  while (!all.empty()) {
    const size_t bar = all.find('|');
    const std::string_view t = all.substr(0, bar);
    if (t.size() == suffix.size() && !t.empty() &&
        std::toupper(static_cast<unsigned char>(t[0])) == suffix[0] &&
        t.substr(1) == suffix.substr(1)) {
      return t;
    }
    all = bar == std::string_view::npos ? std::string_view() : all.substr(bar + 1);
  }
  return {};
}

class Walker {
 public:
  Walker(std::vector<Violation>& out, int entry) : out_(out), entry_(entry) {}

  void resource(const json::Value& r, const std::string& shown, int depth) {
    if (!r.isObject()) {
      add(shown, "a resource (JSON object) expected");
      return;
    }
    const json::Value* type = r.find("resourceType");
    if (type == nullptr || !type->isString()) {
      add(shown, "resourceType required, missing");
      return;
    }
    const std::string& t = type->asString();
    if (findDef(t + ".id") == nullptr) {
      add(shown.empty() ? t : shown, "resource type not supported by the validator");
      return;
    }
    const std::string path = shown.empty() ? t : shown;
    if (const json::Value* id = r.find("id")) {
      if (const char* bad = checkPrimitive("id", *id)) {
        add(path + ".id", bad);
      }
    }
    object(r, t, path, depth, true);
    checkProfiles(r, t, path, out_, entry_);
  }

 private:
  void add(const std::string& path, std::string rule) {
    out_.push_back(Violation{entry_, path, std::move(rule)});
  }

  void object(const json::Value& obj, std::string_view def_base, const std::string& shown,
              int depth, bool is_resource) {
    if (!obj.isObject()) {
      add(shown, "an object expected");
      return;
    }
    if (obj.members().empty()) {
      add(shown, "empty object not allowed");
      return;
    }
    for (const auto& [name, value] : obj.members()) {
      if (is_resource && name == "resourceType") {
        continue;
      }
      if (!name.empty() && name[0] == '_') {
        continue;  // a primitive's id/extension sibling
      }
      member(name, value, def_base, shown, depth);
    }
    forEachChild(def_base, [&](const r4::ElementDef& d, std::string_view child) {
      if (d.min < 1) {
        return;
      }
      bool present = false;
      if (child.size() > 3 && child.substr(child.size() - 3) == "[x]") {
        for (const auto& m : obj.members()) {
          present = present || !choiceType(m.first, child, d.types).empty();
        }
      } else {
        const json::Value* v = obj.find(child);
        present = v != nullptr && !v->isNull();
      }
      if (!present) {
        add(shown + "." + std::string(child),
            std::to_string(d.min) + ".." + (d.max < 0 ? std::string("*") : std::to_string(d.max)) +
                " required, missing");
      }
    });
  }

  void member(const std::string& name, const json::Value& value, std::string_view def_base,
              const std::string& shown, int depth) {
    const std::string shown_path = shown + "." + name;
    std::string def_path = std::string(def_base) + "." + name;
    const r4::ElementDef* def = findDef(def_path);
    std::string_view type;
    if (def != nullptr) {
      type = def->types;
    } else {
      forEachChild(def_base, [&](const r4::ElementDef& d, std::string_view child) {
        if (def == nullptr && child.size() > 3 && child.substr(child.size() - 3) == "[x]") {
          std::string_view t = choiceType(name, child, d.types);
          if (!t.empty()) {
            def = &d;
            type = t;
          }
        }
      });
      if (def == nullptr) {
        add(shown_path, "unknown element");
        return;
      }
      def_path = def->path;
    }
    if (value.isArray()) {
      if (def->max == 1) {
        add(shown_path, "max 1, found an array");
        return;
      }
      if (value.items().empty()) {
        add(shown_path, "empty array not allowed");
        return;
      }
      for (size_t i = 0; i < value.items().size(); ++i) {
        item(value.items()[i], *def, def_path, type, shown_path + "[" + std::to_string(i) + "]",
             depth);
      }
      return;
    }
    if (def->max != 1) {
      add(shown_path, "0..* element must be an array");
      return;
    }
    item(value, *def, def_path, type, shown_path, depth);
  }

  void item(const json::Value& v, const r4::ElementDef& def, const std::string& def_path,
            std::string_view type, const std::string& shown, int depth) {
    if (v.isNull()) {
      add(shown, "null not allowed");
      return;
    }
    if (isPrimitiveType(type)) {
      if (const char* bad = checkPrimitive(type, v)) {
        add(shown, bad);
        return;
      }
      if (type == "code" && def.binding[0] != '\0') {
        binding(def.binding, v.asString(), shown);
      }
      return;
    }
    if (type == "BackboneElement" || type == "Element") {
      object(v, def_path, shown, depth, false);
    } else if (!type.empty() && type[0] == '#') {
      object(v, type.substr(1), shown, depth, false);
    } else if (type == "Resource") {
      if (depth >= kMaxDepth) {
        add(shown, "resources nested too deep");
        return;
      }
      if (def_path == "Bundle.entry.resource") {
        // An entry's resource is reported from its own type ("Appointment.status"), with the
        // entry's index beside it.
        const size_t open = shown.rfind('[');
        Walker(out_, std::atoi(shown.c_str() + open + 1)).resource(v, "", depth + 1);
      } else {
        resource(v, shown, depth + 1);
      }
    } else {
      object(v, type, shown, depth, false);
      if (def.binding[0] != '\0' && v.isObject()) {
        codings(def.binding, type, v, shown);
      }
    }
  }

  void binding(const char* value_set, const std::string& code, const std::string& shown) {
    const char* codes = valueSetCodes(value_set);
    if (codes != nullptr && !inValueSet(codes, code)) {
      add(shown, "code '" + code + "' not in the required value set " + value_set);
    }
  }

  // A Coding or CodeableConcept bound to a required value set: each code must be in it.
  void codings(const char* value_set, std::string_view type, const json::Value& v,
               const std::string& shown) {
    auto one = [&](const json::Value& coding, const std::string& at) {
      const json::Value* code = coding.find("code");
      if (code != nullptr && code->isString()) {
        binding(value_set, code->asString(), at + ".code");
      }
    };
    if (type == "Coding") {
      one(v, shown);
    } else if (const json::Value* list = v.find("coding"); list != nullptr && list->isArray()) {
      for (size_t i = 0; i < list->items().size(); ++i) {
        one(list->items()[i], shown + ".coding[" + std::to_string(i) + "]");
      }
    }
  }

  std::vector<Violation>& out_;
  int entry_;
};

}  // namespace

std::vector<Violation> validateResource(const json::Value& resource) {
  std::vector<Violation> out;
  Walker(out, -1).resource(resource, "", 0);
  return out;
}

std::string definitionsSource() { return r4::kDefinitionsSource; }

}  // namespace psa::adapters::fhir_map
