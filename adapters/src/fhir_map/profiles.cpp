#include "fhir_map/profiles.h"

#include <string_view>

namespace psa::adapters::fhir_map {
namespace {

// A US Core 3.1.1 cardinality stricter than R4's (from the profiles' differential views,
// http://hl7.org/fhir/us/core/STU3.1.1/): every instance of the parent element needs at least
// one of the child. `path` is below the resource.
struct MinRule {
  const char* resource;
  const char* path;
  const char* card;  // the profile's cardinality, e.g. "1..*"
  const char* profile;
  bool lab_only;  // applies to the laboratory category (US Core Lab Result / Report Lab)
};

constexpr MinRule kUsCore[] = {
    {"Patient", "identifier", "1..*", "US Core Patient", false},
    {"Patient", "identifier.system", "1..1", "US Core Patient", false},
    {"Patient", "identifier.value", "1..1", "US Core Patient", false},
    {"Patient", "name", "1..*", "US Core Patient", false},
    {"Patient", "gender", "1..1", "US Core Patient", false},
    {"Patient", "telecom.system", "1..1", "US Core Patient", false},
    {"Patient", "telecom.value", "1..1", "US Core Patient", false},
    {"Observation", "category", "1..*", "US Core Laboratory Result Observation", true},
    {"Observation", "subject", "1..1", "US Core Laboratory Result Observation", true},
    {"DiagnosticReport", "category", "1..*", "US Core DiagnosticReport Lab", true},
    {"DiagnosticReport", "subject", "1..1", "US Core DiagnosticReport Lab", true},
    {"DiagnosticReport", "effective[x]", "1..1", "US Core DiagnosticReport Lab", true},
    {"DiagnosticReport", "issued", "1..1", "US Core DiagnosticReport Lab", true},
};

bool present(const json::Value& obj, std::string_view name) {
  if (name.size() > 3 && name.substr(name.size() - 3) == "[x]") {
    const std::string_view base = name.substr(0, name.size() - 3);
    for (const auto& m : obj.members()) {
      if (m.first.size() > base.size() &&
          std::string_view(m.first).substr(0, base.size()) == base) {
        return true;
      }
    }
    return false;
  }
  const json::Value* v = obj.find(name);
  return v != nullptr && !v->isNull();
}

// Walks `path` ("identifier.system") from `obj`: each instance of the last parent must have
// the last element; reports the parents that do not.
void requireBelow(const json::Value& obj, std::string_view path, const std::string& shown,
                  const MinRule& rule, std::vector<Violation>& out, int entry) {
  const size_t dot = path.find('.');
  if (dot == std::string_view::npos) {
    if (obj.isObject() && !present(obj, path)) {
      out.push_back(
          Violation{entry, shown + "." + std::string(path),
                    std::string(rule.card) + " required by " + rule.profile + ", missing"});
    }
    return;
  }
  const std::string head(path.substr(0, dot));
  const json::Value* v = obj.isObject() ? obj.find(head) : nullptr;
  if (v == nullptr) {
    return;
  }
  if (v->isArray()) {
    for (size_t i = 0; i < v->items().size(); ++i) {
      requireBelow(v->items()[i], path.substr(dot + 1),
                   shown + "." + head + "[" + std::to_string(i) + "]", rule, out, entry);
    }
  } else {
    requireBelow(*v, path.substr(dot + 1), shown + "." + head, rule, out, entry);
  }
}

bool hasCategoryCode(const json::Value& r, std::string_view code) {
  const json::Value* cats = r.find("category");
  if (cats == nullptr || !cats->isArray()) {
    return false;
  }
  for (const auto& c : cats->items()) {
    const json::Value* codings = c.isObject() ? c.find("coding") : nullptr;
    if (codings == nullptr || !codings->isArray()) {
      continue;
    }
    for (const auto& coding : codings->items()) {
      if (coding.isObject() && coding.getString("code") == code) {
        return true;
      }
    }
  }
  return false;
}

void invariants(const json::Value& r, const std::string& type, const std::string& path,
                std::vector<Violation>& out, int entry) {
  auto fail = [&](std::string rule) { out.push_back(Violation{entry, path, std::move(rule)}); };
  if (type == "Appointment") {
    const bool start = present(r, "start");
    const bool end = present(r, "end");
    if (start != end) {
      fail("app-2: either start and end are specified, or neither");
    }
    const std::string status = r.getString("status");
    if (!(start && end) && status != "proposed" && status != "cancelled" && status != "waitlist") {
      fail("app-3: only proposed, cancelled or waitlist appointments can be missing start/end");
    }
    if (present(r, "cancelationReason") && status != "noshow" && status != "cancelled") {
      fail("app-4: cancelationReason only for a noshow or cancelled appointment");
    }
  } else if (type == "Patient") {
    // us-core-8 (US Core 3.1.1 Patient.name): family or given or a data-absent-reason.
    const json::Value* names = r.find("name");
    if (names != nullptr && names->isArray()) {
      for (size_t i = 0; i < names->items().size(); ++i) {
        const json::Value& n = names->items()[i];
        if (n.isObject() && !present(n, "family") && !present(n, "given") &&
            !present(n, "extension")) {
          out.push_back(Violation{entry, path + ".name[" + std::to_string(i) + "]",
                                  "us-core-8: family or given required"});
        }
      }
    }
  } else if (type == "Observation") {
    // us-core-2: value[x] or dataAbsentReason unless there are components or members.
    if (hasCategoryCode(r, "laboratory") && !present(r, "value[x]") &&
        !present(r, "dataAbsentReason") && !present(r, "component") && !present(r, "hasMember")) {
      fail("us-core-2: value[x] or dataAbsentReason required");
    }
  } else if (type == "Bundle") {
    // bdl-3: each entry of a batch or transaction has a request.
    const std::string bt = r.getString("type");
    const json::Value* entries = r.find("entry");
    if ((bt == "transaction" || bt == "batch") && entries != nullptr && entries->isArray()) {
      for (size_t i = 0; i < entries->items().size(); ++i) {
        if (entries->items()[i].isObject() && !present(entries->items()[i], "request")) {
          out.push_back(Violation{entry, path + ".entry[" + std::to_string(i) + "].request",
                                  "bdl-3: a transaction entry needs a request"});
        }
      }
    }
  }
}

}  // namespace

void checkProfiles(const json::Value& r, const std::string& type, const std::string& path,
                   std::vector<Violation>& out, int entry) {
  for (const MinRule& rule : kUsCore) {
    if (type != rule.resource || (rule.lab_only && !hasCategoryCode(r, "laboratory"))) {
      continue;
    }
    requireBelow(r, rule.path, path, rule, out, entry);
  }
  invariants(r, type, path, out, entry);
}

}  // namespace psa::adapters::fhir_map
