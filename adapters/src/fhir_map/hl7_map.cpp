// The mapping engine: walks the message map of hl7_tables.cpp over one parsed message and
// assembles the transaction Bundle (resources, stable ids, defaults, references).
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "fhir_map/hl7_tables.h"
#include "policy/policy_internal.h"
#include "psa/adapters/fhir_map/hl7_to_fhir.h"

namespace psa::adapters::fhir_map {
namespace {

using json::Value;

struct Built {
  std::string type;
  std::string identity;  // source identity (PHI: only its HMAC leaves this file)
  size_t segment = 0;
  size_t group = 0;  // ORU: the OBR segment an OBX belongs to (its own index for an OBR)
  Value resource;
  std::string id;
};

bool eventMatches(std::string_view events, std::string_view trigger) {
  if (events == "*") {
    return true;
  }
  for (size_t at = events.find(trigger); at != std::string_view::npos;
       at = events.find(trigger, at + 1)) {
    const bool starts = at == 0 || events[at - 1] == ' ';
    const bool ends = at + trigger.size() == events.size() || events[at + trigger.size()] == ' ';
    if (starts && ends) {
      return true;
    }
  }
  return false;
}

// Puts `v` at `target` below `obj` (see FieldRule::target). Returns false when a single
// element was already set (the first repetition wins).
bool place(Value& obj, std::string_view target, Value v) {
  if (target == "value") {  // obx_value: {"valueQuantity": ...}
    for (const auto& m : obj.members()) {
      if (m.first.rfind("value", 0) == 0) {
        return false;
      }
    }
    for (auto& m : v.members()) {
      obj.set(m.first, std::move(m.second));
    }
    return true;
  }
  const size_t dot = target.find('.');
  std::string_view head = target.substr(0, dot);
  const bool list = head.size() > 2 && head.substr(head.size() - 2) == "[]";
  const std::string key(list ? head.substr(0, head.size() - 2) : head);
  if (dot == std::string_view::npos) {
    if (list) {
      if (Value* existing = obj.find(key)) {
        for (const auto& item : existing->items()) {
          if (item == v) {
            return true;  // the same identifier twice (placer = filler): once is enough
          }
        }
        existing->push(std::move(v));
      } else {
        obj.set(key, Value::array({std::move(v)}));
      }
      return true;
    }
    if (obj.find(key) != nullptr) {
      return false;
    }
    obj.set(key, std::move(v));
    return true;
  }
  Value* child = obj.find(key);
  if (list) {
    if (child == nullptr) {
      child = &obj.set(key, Value::array());
    }
    child->push(Value::object());
    return place(child->items().back(), target.substr(dot + 1), std::move(v));
  }
  if (child == nullptr) {
    child = &obj.set(key, Value::object());
  }
  return place(*child, target.substr(dot + 1), std::move(v));
}

// A default: "status" fills (or with force replaces) one element; "participant[].status" fills
// it in every item; "category[]" sets a one-item list when the list is absent.
void applyDefault(Value& obj, std::string_view target, const Value& v, bool force) {
  const size_t dot = target.find('.');
  if (dot != std::string_view::npos) {
    std::string_view head = target.substr(0, dot);
    const bool list = head.size() > 2 && head.substr(head.size() - 2) == "[]";
    Value* child = obj.find(list ? head.substr(0, head.size() - 2) : head);
    if (child == nullptr) {
      return;
    }
    if (child->isArray()) {
      for (auto& item : child->items()) {
        applyDefault(item, target.substr(dot + 1), v, force);
      }
    } else {
      applyDefault(*child, target.substr(dot + 1), v, force);
    }
    return;
  }
  const bool list = target.size() > 2 && target.substr(target.size() - 2) == "[]";
  const std::string key(list ? target.substr(0, target.size() - 2) : target);
  if (obj.find(key) == nullptr || force) {
    obj.set(key, list ? Value::array({v}) : v);
  }
}

class Engine {
 public:
  Engine(const hl7::Message& msg, const MessageMap& map, const MapOptions& o)
      : msg_(msg), map_(map), o_(o) {}

  Result<Normalized> run() {
    for (size_t i = 0; i < map_.resource_count; ++i) {
      PSA_TRY(resources(map_.resources[i]));
    }
    std::set<std::string> taken;
    for (Built& b : built_) {
      std::string source = b.type + "|" + identity(b);
      b.id = policy::hashToken(o_.id_key, source).substr(2);
      if (!taken.insert(b.id).second) {
        // Two segments with one identity (a repeated OBR filler id): keep the entries apart.
        b.id = policy::hashToken(o_.id_key, source + "|" + std::to_string(b.segment)).substr(2);
        taken.insert(b.id);
      }
      b.resource.set("id", Value::string(b.id));
    }
    references();
    defaults();  // after the references: participant[].status fills the patient's too
    return bundle();
  }

 private:
  Status resources(const ResourceRule& rule) {
    std::vector<size_t> segments;
    for (size_t s = 0; s < msg_.segmentCount(); ++s) {
      if (msg_.segmentId(s) == rule.segment) {
        segments.push_back(s);
        if (!rule.each) {
          break;
        }
      }
    }
    if (segments.empty() && rule.required) {
      return Error(Errc::invalid_input, std::string(map_.type) + " mapping: a " + rule.segment +
                                            " segment is required for " + rule.resource +
                                            ", missing");
    }
    Built* merge_into = nullptr;  // AIS/AIP add to the Appointment of SCH
    for (Built& b : built_) {
      if (b.type == rule.resource && msg_.segmentId(b.segment) != rule.segment) {
        merge_into = &b;
        break;
      }
    }
    size_t group = 0;
    for (size_t s : segments) {
      for (size_t g = 0; g <= s; ++g) {
        if (msg_.segmentId(g) == "OBR") {
          group = g;
        }
      }
      Built* target = merge_into;
      if (target == nullptr) {
        built_.push_back(Built{rule.resource,
                               {},
                               s,
                               group,
                               Value::object({{"resourceType", Value::string(rule.resource)}}),
                               {}});
        target = &built_.back();
        // Pointers into built_ are re-taken after each push (merge_into is only set when no
        // new Built is created for this rule).
      }
      const ConvContext ctx{msg_, s, o_.default_zone};
      for (size_t f = 0; f < rule.field_count; ++f) {
        const FieldRule& fr = rule.fields[f];
        const int reps = msg_.repetitionCount(s, fr.field);
        for (int rep = 1; rep <= reps; ++rep) {
          auto v = convert(ctx, fr, rep);
          if (v && !place(target->resource, fr.target, std::move(*v))) {
            break;
          }
        }
      }
    }
    return {};
  }

  std::string raw(size_t seg, int field, int rep, int comp) const {
    hl7::Element e = msg_.get(seg, field, rep, comp, 0);
    return e.hasValue() ? msg_.decode(e) : std::string();
  }

  std::string facility() const {
    std::string f = raw(0, 4, 1, 1);
    return f.empty() ? raw(0, 3, 1, 1) : f;
  }

  std::string fallback(const Built& b) const {
    return "msg|" + raw(0, 3, 1, 1) + "|" + raw(0, 4, 1, 1) + "|" + std::string(msg_.controlId()) +
           "|" + std::to_string(b.segment);
  }

  // "value|authority" of an identifier field (CX or EI); "" when it has no value.
  std::string idOf(size_t seg, int field, int rep, int authority_comp) const {
    const std::string v = raw(seg, field, rep, 1);
    if (v.empty()) {
      return {};
    }
    std::string a = raw(seg, field, rep, authority_comp);
    return v + "|" + (a.empty() ? facility() : a);
  }

  std::string patientIdentity() const {
    for (const Built& b : built_) {
      if (b.type == "Patient") {
        return identity(b);
      }
    }
    return {};
  }

  // The source identity a resource's id is derived from (see hl7_to_fhir.h).
  std::string identity(const Built& b) const {
    const size_t s = b.segment;
    std::string id;
    if (b.type == "Patient") {
      // The MRN: the first PID-3 repetition typed MR, else the first that is not an SSN.
      const int reps = msg_.repetitionCount(s, 3);
      for (int pass = 0; pass < 2 && id.empty(); ++pass) {
        for (int rep = 1; rep <= reps && id.empty(); ++rep) {
          const std::string type = raw(s, 3, rep, 5);
          if (pass == 0 ? type == "MR" : type != "SS") {
            id = idOf(s, 3, rep, 4);
          }
        }
      }
    } else if (b.type == "Encounter") {
      id = idOf(s, 19, 1, 4);
      if (id.empty() && !raw(s, 44, 1, 1).empty()) {
        id = patientIdentity() + "|" + raw(s, 44, 1, 1);
      }
    } else if (b.type == "Coverage") {
      id = patientIdentity() + "|" + raw(s, 3, 1, 1) + "|" + raw(s, 36, 1, 1) + "|" +
           raw(s, 2, 1, 1) + "|" + raw(s, 1, 1, 1);
    } else if (b.type == "Appointment") {
      id = idOf(s, 2, 1, 2);
      id = id.empty() ? idOf(s, 1, 1, 2) : id;
    } else if (b.type == "DiagnosticReport") {
      id = idOf(s, 3, 1, 2);
      id = id.empty() ? idOf(s, 2, 1, 2) : id;
    } else if (b.type == "Observation") {
      for (const Built& r : built_) {
        if (r.type == "DiagnosticReport" && r.segment == b.group) {
          id = identity(r) + "|" + raw(s, 1, 1, 1) + "|" + raw(s, 3, 1, 1) + "|" +
               std::to_string(msg_.occurrenceOf(s));
        }
      }
    }
    return id.empty() ? fallback(b) : id;
  }

  void defaults() {
    const std::string trigger(msg_.triggerEvent());
    for (size_t i = 0; i < map_.default_count; ++i) {
      const DefaultRule& d = map_.defaults[i];
      if (!eventMatches(d.events, trigger)) {
        continue;
      }
      auto value = json::parse(d.value);
      if (!value) {
        continue;  // a table bug; the unit tests parse every default
      }
      for (Built& b : built_) {
        if (b.type == d.resource) {
          applyDefault(b.resource, d.target, value.value(), d.force);
        }
      }
    }
  }

  void references() {
    for (size_t i = 0; i < map_.ref_count; ++i) {
      const RefRule& r = map_.refs[i];
      for (Built& from : built_) {
        if (from.type != r.from) {
          continue;
        }
        for (const Built& to : built_) {
          if (to.type != r.to) {
            continue;
          }
          const bool grouped = from.type == "DiagnosticReport" && to.type == "Observation";
          if (grouped && to.group != from.group) {
            continue;
          }
          place(from.resource, r.target,
                Value::object({{"reference", Value::string(to.type + "/" + to.id)}}));
          if (std::string_view(r.target).find("[]") == std::string_view::npos) {
            break;
          }
          if (!grouped) {
            break;  // participant[].actor: one participant for the patient
          }
        }
      }
    }
  }

  Normalized bundle() {
    Value entries = Value::array();
    for (Built& b : built_) {
      Value request = Value::object(
          {{"method", Value::string("PUT")}, {"url", Value::string(b.type + "/" + b.id)}});
      entries.push(Value::object({{"fullUrl", Value::string("urn:uuid:" + uuidOf(b.id))},
                                  {"resource", std::move(b.resource)},
                                  {"request", std::move(request)}}));
    }
    Normalized n;
    n.kind = map_.kind;
    n.normalized_from = "hl7v2;map=" + std::string(kMappingVersion) +
                        ";type=" + std::string(msg_.messageType()) + "^" +
                        std::string(msg_.triggerEvent());
    n.bundle = Value::object({{"resourceType", Value::string("Bundle")},
                              {"type", Value::string("transaction")},
                              {"entry", std::move(entries)}});
    return n;
  }

  // The 32 hex digits of an id as a UUID (8-4-4-4-12), so each entry has a unique fullUrl.
  static std::string uuidOf(const std::string& hex) {
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
           hex.substr(16, 4) + "-" + hex.substr(20, 12);
  }

  const hl7::Message& msg_;
  const MessageMap& map_;
  const MapOptions& o_;
  std::vector<Built> built_;
};

}  // namespace

bool hl7Mapped(std::string_view type, std::string_view trigger) {
  return findMessageMap(type, trigger) != nullptr;
}

Result<Normalized> mapHl7v2(std::string_view message, const MapOptions& options) {
  if (options.id_key.size() < 16) {
    return Error(Errc::invalid_argument, "FHIR mapping: the id key must have at least 16 bytes");
  }
  const std::string& z = options.default_zone;
  const bool zone_ok = z.empty() || z == "Z" ||
                       (z.size() == 6 && (z[0] == '+' || z[0] == '-') && z[3] == ':' &&
                        std::isdigit(static_cast<unsigned char>(z[1])) &&
                        std::isdigit(static_cast<unsigned char>(z[2])) &&
                        std::isdigit(static_cast<unsigned char>(z[4])) &&
                        std::isdigit(static_cast<unsigned char>(z[5])) && z.substr(1, 2) <= "14" &&
                        z.substr(4, 2) <= "59");
  if (!zone_ok) {
    return Error(Errc::invalid_argument, "FHIR mapping: the default zone must be Z or +HH:MM");
  }
  hl7::Message msg;
  if (!msg.parse(message)) {
    return msg.failure().toError();
  }
  const std::string type(msg.messageType());
  const std::string trigger(msg.triggerEvent());
  const MessageMap* map = findMessageMap(type, trigger);
  if (map == nullptr) {
    return Error(Errc::not_found, "no FHIR mapping for " + type + "^" + trigger + " (mapping " +
                                      std::string(kMappingVersion) + ")");
  }
  return Engine(msg, *map, options).run();
}

}  // namespace psa::adapters::fhir_map
