// The field policy on JSON payloads (vendor JSON, CSV rows published as JSON objects, FHIR):
// each matched member's value is replaced in place by the JSON text of its new value; every
// other byte stays as received.
#include <algorithm>
#include <cctype>
#include <functional>

#include "policy/policy_internal.h"
#include "psa/adapters/api/http.h"

namespace psa::adapters::policy {
namespace {

json::Limits payloadLimits() {
  json::Limits l;
  l.max_depth = 128;
  return l;
}

class JsonRewriter {
 public:
  JsonRewriter(std::string_view text, const std::string& key) : text_(text), key_(key) {}

  /// Applies `act` to every scalar under `v` (drop: the whole value becomes null, or "" for
  /// CSV where every value is a string).
  void transform(const json::Value& v, const LeafAction& act, bool drop_to_empty) {
    if (act.action == Action::drop) {
      if (v.isNull() || (v.isString() && v.asString().empty())) {
        return;
      }
      ++counts_.dropped;
      edits_.push_back(Edit{v.pos().offset, v.endOffset(), drop_to_empty ? "\"\"" : "null"});
      return;
    }
    if (v.isArray()) {
      for (const auto& item : v.items()) {
        transform(item, act, drop_to_empty);
      }
      return;
    }
    if (v.isObject()) {
      for (const auto& [k, m] : v.members()) {
        transform(m, act, drop_to_empty);
      }
      return;
    }
    if (!v.isString() && !v.isNumber()) {
      return;  // null, true, false: no information worth hiding
    }
    const std::string value = v.isString() ? v.asString() : std::string(v.raw(text_));
    auto next = transformValue(act, value, key_, true, counts_);
    if (next) {
      edits_.push_back(Edit{v.pos().offset, v.endOffset(), json::quote(*next)});
    }
  }

  Outcome finish() {
    Outcome out;
    out.counts = counts_;
    if (edits_.empty()) {
      return out;
    }
    out.payload = applyEdits(text_, std::move(edits_));
    out.changed = true;
    return out;
  }

 private:
  std::string_view text_;
  const std::string& key_;
  std::vector<Edit> edits_;
  Counts counts_;
};

Outcome unparsed() {
  Outcome out;
  out.parsed = false;
  return out;
}

// Keys from the root to a member, arrays skipped.
using KeyPath = std::vector<std::string_view>;

bool vendorMatches(const JsonRef& r, const KeyPath& path) {
  if (r.ssn_like) {
    return !path.empty() && ssnLikeName(path.back());
  }
  if (r.any_depth ? path.size() < r.path.size() : path.size() != r.path.size()) {
    return false;
  }
  const size_t skip = path.size() - r.path.size();
  for (size_t i = 0; i < r.path.size(); ++i) {
    if (path[skip + i] != r.path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

Outcome rewriteVendorJson(std::string_view payload, const std::vector<const Bound<JsonRef>*>& rules,
                          const std::string& key) {
  auto doc = json::parse(payload, payloadLimits());
  if (!doc) {
    return unparsed();
  }
  JsonRewriter rw(payload, key);
  KeyPath path;
  std::function<void(const json::Value&)> walk = [&](const json::Value& v) {
    if (v.isArray()) {
      for (const auto& item : v.items()) {
        walk(item);
      }
      return;
    }
    if (!v.isObject()) {
      return;
    }
    for (const auto& [k, m] : v.members()) {
      path.push_back(k);
      const auto hit = std::find_if(rules.begin(), rules.end(),
                                    [&](const auto* r) { return vendorMatches(r->ref, path); });
      if (hit != rules.end()) {
        rw.transform(m, (*hit)->act, false);
      } else {
        walk(m);
      }
      path.pop_back();
    }
  };
  walk(*doc);
  return rw.finish();
}

Outcome rewriteCsvJson(std::string_view payload, const std::vector<const Bound<CsvRef>*>& rules,
                       const std::string& key) {
  auto doc = json::parse(payload, payloadLimits());
  if (!doc || !doc->isObject()) {
    return unparsed();
  }
  JsonRewriter rw(payload, key);
  for (const json::Member& member : doc->members()) {
    const std::string& k = member.first;
    const auto hit = std::find_if(rules.begin(), rules.end(), [&](const auto* r) {
      return r->ref.ssn_like ? ssnLikeName(k) : api::iequals(k, r->ref.column);
    });
    if (hit != rules.end()) {
      rw.transform(member.second, (*hit)->act, true);
    }
  }
  return rw.finish();
}

Outcome rewriteFhirJson(std::string_view payload, const std::vector<const Bound<FhirRef>*>& rules,
                        const std::string& key) {
  auto doc = json::parse(payload, payloadLimits());
  if (!doc) {
    return unparsed();
  }
  JsonRewriter rw(payload, key);
  // The path from the nearest enclosing resource: [resourceType, element, ...].
  KeyPath path;
  auto matches = [&](const FhirRef& r) {
    if (path.size() != r.path.size() + 1 || (r.resource != "*" && path[0] != r.resource)) {
      return false;
    }
    for (size_t i = 0; i < r.path.size(); ++i) {
      if (path[i + 1] != r.path[i]) {
        return false;
      }
    }
    return true;
  };
  // An identifier filter: the value of each entry with that system.
  auto filtered = [&](const json::Value& v, const Bound<FhirRef>& rule) {
    auto one = [&](const json::Value& entry) {
      if (entry.isObject() && entry.getString("system") == rule.ref.system) {
        if (const json::Value* value = entry.find("value")) {
          rw.transform(*value, rule.act, false);
        }
      }
    };
    if (v.isArray()) {
      for (const auto& item : v.items()) {
        one(item);
      }
    } else {
      one(v);
    }
  };
  std::function<void(const json::Value&)> walk = [&](const json::Value& v) {
    if (v.isArray()) {
      for (const auto& item : v.items()) {
        walk(item);
      }
      return;
    }
    if (!v.isObject()) {
      return;
    }
    KeyPath saved;
    const json::Value* type = v.find("resourceType");
    const bool resource = type != nullptr && type->isString();
    if (resource) {
      saved.swap(path);
      path.push_back(type->asString());
    }
    for (const auto& [k, m] : v.members()) {
      path.push_back(k);
      bool done = false;
      for (const auto* rule : rules) {
        if (matches(rule->ref)) {
          if (rule->ref.system.empty()) {
            rw.transform(m, rule->act, false);
          } else {
            filtered(m, *rule);
          }
          done = true;
          break;
        }
      }
      if (!done) {
        walk(m);
      }
      path.pop_back();
    }
    if (resource) {
      path.swap(saved);
    }
  };
  walk(*doc);
  return rw.finish();
}

}  // namespace psa::adapters::policy
