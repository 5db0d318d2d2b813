#include "psa/adapters/policy/field_policy.h"

#include "policy/policy_internal.h"

namespace psa::adapters::policy {
namespace {

constexpr std::string_view kUsSsnSystem = "http://hl7.org/fhir/sid/us-ssn";

const std::vector<std::string>& ruleFormats() {
  static const std::vector<std::string> f = {
      "*", std::string(store::format::kHl7v2), std::string(store::format::kCsvJson),
      std::string(store::format::kVendorJson), std::string(store::format::kFhirJson)};
  return f;
}

std::vector<std::string> ruleKinds() {
  std::vector<std::string> k = {"*"};
  for (store::Kind kind : store::kAllKinds) {
    k.emplace_back(store::kindName(kind));
  }
  return k;
}

std::optional<Action> parseAction(std::string_view name) {
  for (Action a : {Action::drop, Action::mask, Action::hash, Action::generalize}) {
    if (actionName(a) == name) {
      return a;
    }
  }
  return std::nullopt;
}

bool formatIs(const std::string& rule_format, std::string_view format) {
  return rule_format == "*" || rule_format == format;
}

// Compiles `rule` into `c`; false when its field fits none of the formats it names.
bool compile(const Rule& rule, FieldPolicy::Compiled& c) {
  const LeafAction act{rule.action, rule.keep};
  bool any = false;
  if (formatIs(rule.format, store::format::kHl7v2)) {
    if (auto r = parseHl7Ref(rule.field)) {
      c.hl7.push_back(Bound<Hl7Ref>{*r, act, rule.kind});
      any = true;
    }
  }
  if (formatIs(rule.format, store::format::kFhirJson)) {
    if (auto r = parseFhirRef(rule.field)) {
      c.fhir.push_back(Bound<FhirRef>{*r, act, rule.kind});
      any = true;
    }
  }
  // HL7 references are not JSON members or CSV columns, though they would parse as such.
  const bool hl7_like = parseHl7Ref(rule.field).has_value();
  if (formatIs(rule.format, store::format::kVendorJson) && !(rule.format == "*" && hl7_like)) {
    if (auto r = parseJsonRef(rule.field)) {
      c.vendor.push_back(Bound<JsonRef>{*r, act, rule.kind});
      any = true;
    }
  }
  if (formatIs(rule.format, store::format::kCsvJson) && !(rule.format == "*" && hl7_like)) {
    if (auto r = parseCsvRef(rule.field)) {
      c.csv.push_back(Bound<CsvRef>{*r, act, rule.kind});
      any = true;
    }
  }
  return any;
}

void addDefaults(FieldPolicy::Compiled& c) {
  const LeafAction mask4{Action::mask, 4};
  for (const char* ref : {"PID-19", "PID-3@SS", "MRG-1@SS", "NK1-37", "GT1-12", "IN2-2"}) {
    c.hl7.push_back(Bound<Hl7Ref>{*parseHl7Ref(ref), mask4, "*"});
  }
  JsonRef vendor;
  vendor.ssn_like = true;
  c.vendor.push_back(Bound<JsonRef>{vendor, mask4, "*"});
  c.csv.push_back(Bound<CsvRef>{CsvRef{{}, true}, mask4, "*"});
  FhirRef fhir{"*", {"identifier"}, std::string(kUsSsnSystem)};
  c.fhir.push_back(Bound<FhirRef>{fhir, mask4, "*"});
}

template <class Ref>
std::vector<const Bound<Ref>*> select(const std::vector<Bound<Ref>>& all, store::Kind kind) {
  std::vector<const Bound<Ref>*> out;
  for (const auto& b : all) {
    if (b.appliesTo(kind)) {
      out.push_back(&b);
    }
  }
  return out;
}

void checkRule(const json::Value& v, const std::string& path, std::vector<schema::Issue>& issues) {
  const json::Value* field = v.find("field");
  if (field == nullptr || !field->isString()) {
    return;  // the field check reported it
  }
  Rule r;
  r.format = v.getString("format", "*");
  r.field = field->asString();
  FieldPolicy::Compiled c;
  if (!compile(r, c)) {
    issues.push_back(
        schema::Issue{schema::childPath(path, "field"), field->pos().line, field->pos().column,
                      "\"" + r.field + "\" is not an element reference for format " + r.format +
                          " (hl7v2: PID-19, PID-11.5, PID-3@SS; csv+json: a column; vendor+json: "
                          "patient.ssn or *.ssn; fhir+json: Patient.birthDate, "
                          "Patient.identifier[system=URI])"});
  }
}

}  // namespace

std::string_view actionName(Action action) {
  switch (action) {
    case Action::drop:
      return "drop";
    case Action::mask:
      return "mask";
    case Action::hash:
      return "hash";
    case Action::generalize:
      return "generalize";
  }
  return "?";
}

Counts& Counts::operator+=(const Counts& o) {
  masked += o.masked;
  dropped += o.dropped;
  hashed += o.hashed;
  generalized += o.generalized;
  return *this;
}

json::Value Counts::toJson() const {
  json::Value v = json::Value::object();
  v.set("masked", json::Value::integer(static_cast<int64_t>(masked)));
  v.set("dropped", json::Value::integer(static_cast<int64_t>(dropped)));
  v.set("hashed", json::Value::integer(static_cast<int64_t>(hashed)));
  v.set("generalized", json::Value::integer(static_cast<int64_t>(generalized)));
  return v;
}

bool PolicySettings::hashes() const {
  for (const Rule& r : rules) {
    if (r.action == Action::hash) {
      return true;
    }
  }
  return false;
}

json::Value PolicySettings::describe() const {
  json::Value list = json::Value::array();
  for (const Rule& r : rules) {
    json::Value o = json::Value::object();
    o.set("kind", json::Value::string(r.kind));
    o.set("format", json::Value::string(r.format));
    o.set("field", json::Value::string(r.field));
    o.set("action", json::Value::string(std::string(actionName(r.action))));
    if (r.action == Action::mask) {
      o.set("keep", json::Value::integer(r.keep));
    }
    list.push(std::move(o));
  }
  json::Value out = json::Value::object();
  out.set("default_ssn_mask", json::Value::boolean(default_ssn_mask));
  out.set("rules", std::move(list));
  return out;
}

schema::ObjectSchemaPtr policySchema() {
  static const schema::ObjectSchemaPtr s = [] {
    auto rule = std::make_shared<schema::ObjectSchema>();
    rule->fields = {
        schema::Field::str("kind").def(json::Value::string("*")).oneOf(ruleKinds()),
        schema::Field::str("format").def(json::Value::string("*")).oneOf(ruleFormats()),
        schema::Field::str("field").req().describe("element reference in the format's syntax"),
        schema::Field::str("action").req().oneOf({"drop", "mask", "hash", "generalize"}),
        schema::Field::integer("keep")
            .def(json::Value::integer(4))
            .range(0, 64)
            .describe("mask: characters kept at the end"),
    };
    rule->check = checkRule;
    auto p = std::make_shared<schema::ObjectSchema>();
    p->fields = {
        schema::Field::arrayOf("rules", rule).def(json::Value::array()),
        schema::Field::boolean("default_ssn_mask")
            .def(json::Value::boolean(true))
            .describe("mask Social Security numbers to their last four (false turns it off)"),
    };
    return schema::ObjectSchemaPtr(p);
  }();
  return s;
}

PolicySettings readPolicySettings(const json::Value* section) {
  PolicySettings s;
  if (section == nullptr || !section->isObject()) {
    return s;
  }
  s.default_ssn_mask = section->getBool("default_ssn_mask", true);
  if (const json::Value* rules = section->find("rules"); rules != nullptr && rules->isArray()) {
    for (const auto& item : rules->items()) {
      Rule r;
      r.kind = item.getString("kind", "*");
      r.format = item.getString("format", "*");
      r.field = item.getString("field");
      r.action = parseAction(item.getString("action")).value_or(Action::mask);
      r.keep = static_cast<int>(item.getInt("keep", 4));
      s.rules.push_back(std::move(r));
    }
  }
  return s;
}

FieldPolicy::~FieldPolicy() = default;

Result<std::shared_ptr<const FieldPolicy>> FieldPolicy::build(PolicySettings settings,
                                                              std::string hash_key) {
  if (settings.hashes() && hash_key.size() < 32) {
    return Error(Errc::invalid_argument, "a hash rule needs the site's policy key");
  }
  std::shared_ptr<FieldPolicy> p(new FieldPolicy());
  p->compiled_ = std::make_unique<Compiled>();
  for (size_t i = 0; i < settings.rules.size(); ++i) {
    if (!compile(settings.rules[i], *p->compiled_)) {
      return Error(Errc::invalid_argument,
                   "policy.rules[" + std::to_string(i) + "]: \"" + settings.rules[i].field +
                       "\" is not an element reference for format " + settings.rules[i].format);
    }
  }
  if (settings.default_ssn_mask) {
    addDefaults(*p->compiled_);  // after the configured rules: those win on the same element
  }
  p->settings_ = std::move(settings);
  p->key_ = std::move(hash_key);
  return std::shared_ptr<const FieldPolicy>(std::move(p));
}

Outcome FieldPolicy::apply(store::Kind kind, std::string_view format,
                           std::string_view payload) const {
  const Compiled& c = *compiled_;
  if (format == store::format::kHl7v2) {
    auto rules = select(c.hl7, kind);
    return rules.empty() ? Outcome{} : rewriteHl7(payload, rules, key_);
  }
  if (format == store::format::kCsvJson) {
    auto rules = select(c.csv, kind);
    return rules.empty() ? Outcome{} : rewriteCsvJson(payload, rules, key_);
  }
  if (format == store::format::kVendorJson) {
    auto rules = select(c.vendor, kind);
    return rules.empty() ? Outcome{} : rewriteVendorJson(payload, rules, key_);
  }
  if (format == store::format::kFhirJson) {
    auto rules = select(c.fhir, kind);
    return rules.empty() ? Outcome{} : rewriteFhirJson(payload, rules, key_);
  }
  if (format == store::format::kVendorXml && settings_.default_ssn_mask) {
    return maskXmlSsnElements(payload);
  }
  return Outcome{};
}

Outcome FieldPolicy::applyToDeadLetter(store::Kind kind, std::string_view format,
                                       std::string_view payload) const {
  Outcome out = apply(kind, format, payload);
  if (!settings_.default_ssn_mask) {
    return out;
  }
  const bool addressed = format == store::format::kHl7v2 || format == store::format::kCsvJson ||
                         format == store::format::kVendorJson || format == store::format::kFhirJson;
  if (out.parsed && addressed) {
    return out;
  }
  Outcome fallback = maskSsnShapes(out.changed ? std::string_view(out.payload) : payload);
  fallback.counts += out.counts;
  if (!fallback.changed && out.changed) {
    fallback.changed = true;
    fallback.payload = std::move(out.payload);
  }
  fallback.parsed = out.parsed;
  return fallback;
}

}  // namespace psa::adapters::policy
