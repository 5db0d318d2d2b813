// The V2-to-FHIR datatype maps: each turns one repetition of a field into a FHIR value.
// Values are decoded (escapes, charset) before they go into JSON; empty and null ("")
// components are left out.
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "fhir_map/hl7_tables.h"
#include "psa/adapters/api/http.h"
#include "psa/adapters/fhir_map/hl7_to_fhir.h"

namespace psa::adapters::fhir_map {
namespace {

using json::Value;

constexpr const char* kSsnSystem = "http://hl7.org/fhir/sid/us-ssn";
constexpr const char* kV2IdType = "http://terminology.hl7.org/CodeSystem/v2-0203";

class Reader {
 public:
  Reader(const ConvContext& ctx, int field, int rep) : ctx_(ctx), field_(field), rep_(rep) {}

  // Component `c` (sub-component `s`) of the repetition, decoded; "" when absent or null.
  std::string get(int c, int s = 0) const {
    hl7::Element e = ctx_.msg.get(ctx_.segment, field_, rep_, c, s);
    return e.hasValue() ? trim(ctx_.msg.decode(e)) : std::string();
  }
  // Another field of the same segment (repetition 1).
  std::string other(int field, int c = 1) const {
    hl7::Element e = ctx_.msg.get(ctx_.segment, field, 1, c, 0);
    return e.hasValue() ? trim(ctx_.msg.decode(e)) : std::string();
  }
  const ConvContext& ctx() const { return ctx_; }

 private:
  static std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
      s.pop_back();
    }
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
    return s.substr(i);
  }
  const ConvContext& ctx_;
  int field_;
  int rep_;
};

// A value for a FHIR `code` (no leading, trailing or repeated whitespace, no tabs or line
// breaks): each run of whitespace becomes one space.
std::string codeOf(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) {
      out += ' ';
      space = false;
    }
    out += c;
  }
  return out;
}

void setIf(Value& obj, const char* key, const std::string& v) {
  if (!v.empty()) {
    obj.set(key, Value::string(v));
  }
}

std::optional<Value> done(Value v) {
  if (v.isObject() && v.members().empty()) {
    return std::nullopt;
  }
  return v;
}

// An identifier system from an HD (namespace^universal id^type): an ISO OID or a UUID as a URN,
// a URI as itself; a bare namespace becomes a name in the agent's URN space.
std::string hdSystem(const std::string& ns, const std::string& uid, const std::string& uid_type) {
  const bool plain_uid = !uid.empty() && uid.find_first_of(" \t\r\n\f\v") == std::string::npos;
  if (plain_uid && api::iequals(uid_type, "ISO")) {
    return "urn:oid:" + uid;
  }
  if (plain_uid && api::iequals(uid_type, "UUID")) {
    return "urn:uuid:" + uid;
  }
  if (plain_uid && api::iequals(uid_type, "URI")) {
    return uid;
  }
  if (ns.empty()) {
    return {};
  }
  std::string out = "urn:psa:hl7v2:";
  for (char c : ns) {
    const bool safe =
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    if (safe) {
      out += c;
    } else {
      static const char* hex = "0123456789ABCDEF";
      out += '%';
      out += hex[(static_cast<unsigned char>(c) >> 4) & 15];
      out += hex[static_cast<unsigned char>(c) & 15];
    }
  }
  return out;
}

Value codeable(const std::string& system, const std::string& code, const std::string& display) {
  Value coding = Value::object();
  setIf(coding, "system", system);
  setIf(coding, "code", codeOf(code));
  setIf(coding, "display", display);
  return Value::object({{"coding", Value::array({std::move(coding)})}});
}

std::optional<Value> cx(const Reader& r) {
  const std::string value = r.get(1);
  if (value.empty()) {
    return std::nullopt;
  }
  Value id = Value::object();
  const std::string type = r.get(5);
  if (!type.empty()) {
    id.set("type", codeable(kV2IdType, type, ""));
  }
  const std::string system = api::iequals(type, "SS")
                                 ? std::string(kSsnSystem)
                                 : hdSystem(r.get(4, 1), r.get(4, 2), r.get(4, 3));
  setIf(id, "system", system);
  id.set("value", Value::string(value));
  return id;
}

std::optional<Value> ei(const Reader& r, const char* type) {
  const std::string value = r.get(1);
  if (value.empty()) {
    return std::nullopt;
  }
  Value id = Value::object();
  if (type[0] != '\0') {
    id.set("type", codeable(kV2IdType, type, ""));
  }
  setIf(id, "system", hdSystem(r.get(2), r.get(3), r.get(4)));
  id.set("value", Value::string(value));
  return id;
}

std::optional<Value> xpn(const Reader& r) {
  Value name = Value::object();
  if (auto use = mapCode("name-use", r.get(7))) {
    name.set("use", Value::string(std::string(*use)));
  }
  setIf(name, "family", r.get(1, 1));
  Value given = Value::array();
  for (int c : {2, 3}) {
    if (std::string g = r.get(c); !g.empty()) {
      given.push(Value::string(g));
    }
  }
  if (!given.items().empty()) {
    name.set("given", std::move(given));
  }
  if (std::string p = r.get(5); !p.empty()) {
    name.set("prefix", Value::array({Value::string(p)}));
  }
  if (std::string s = r.get(4); !s.empty()) {
    name.set("suffix", Value::array({Value::string(s)}));
  }
  return done(std::move(name));
}

std::optional<Value> xad(const Reader& r) {
  Value a = Value::object();
  const std::string type = r.get(7);
  if (auto use = mapCode("address-use", type)) {
    a.set("use", Value::string(std::string(*use)));
  } else if (api::iequals(type, "M")) {
    a.set("type", Value::string("postal"));
  }
  Value lines = Value::array();
  for (int c : {1, 2}) {
    // XAD.1 is an SAD: its first sub-component is the street line.
    if (std::string l = c == 1 ? r.get(1, 1) : r.get(2); !l.empty()) {
      lines.push(Value::string(l));
    }
  }
  if (!lines.items().empty()) {
    a.set("line", std::move(lines));
  }
  setIf(a, "city", r.get(3));
  setIf(a, "state", r.get(4));
  setIf(a, "postalCode", r.get(5));
  setIf(a, "country", r.get(6));
  return done(std::move(a));
}

std::optional<Value> xtn(const Reader& r, const char* default_use) {
  const std::string use_code = r.get(2);
  const std::string equipment = r.get(3);
  std::string value = r.get(1);
  std::string system = "phone";  // XTN is a telephone number unless XTN.3 says otherwise
  if (!equipment.empty()) {
    auto mapped = mapCode("contact-point-system", equipment);
    system = mapped ? std::string(*mapped) : "other";
  }
  if (system == "email" || api::iequals(use_code, "NET")) {
    system = "email";
    value = r.get(4);
  }
  if (value.empty()) {
    // v2.5+: country, area and local number in XTN.5-7 instead of XTN.1.
    const std::string area = r.get(6);
    const std::string local = r.get(7);
    if (!local.empty()) {
      value = (area.empty() ? "" : "(" + area + ")") + local;
      if (std::string ext = r.get(8); !ext.empty()) {
        value += " x" + ext;
      }
    }
  }
  if (value.empty()) {
    return std::nullopt;
  }
  Value cp = Value::object({{"system", Value::string(system)}, {"value", Value::string(value)}});
  if (auto use = mapCode("contact-point-use", use_code)) {
    cp.set("use", Value::string(std::string(*use)));
  } else if (api::iequals(equipment, "CP")) {
    cp.set("use", Value::string("mobile"));
  } else if (system != "email" && default_use[0] != '\0') {
    cp.set("use", Value::string(default_use));
  }
  return cp;
}

std::optional<Value> cwe(const Reader& r, const char* default_system) {
  Value cc = Value::object();
  Value codings = Value::array();
  for (int base : {1, 4}) {
    const std::string code = r.get(base);
    if (code.empty()) {
      continue;
    }
    const std::string name = r.get(base + 2);
    std::string system = name.empty() ? std::string(default_system) : codingSystem(name);
    Value coding = Value::object();
    setIf(coding, "system", system);
    coding.set("code", Value::string(codeOf(code)));
    setIf(coding, "display", r.get(base + 1));
    codings.push(std::move(coding));
  }
  if (!codings.items().empty()) {
    cc.set("coding", std::move(codings));
  }
  std::string text = r.get(9);
  if (text.empty() && cc.members().empty()) {
    text = r.get(2);  // a name without a code
  }
  setIf(cc, "text", text);
  return done(std::move(cc));
}

// "+HHMM" / "-HHMM" (an HL7 zone) as "+HH:MM"; "" when it is not one FHIR accepts.
std::string fhirZone(std::string_view z) {
  if (z.size() != 5 || (z[0] != '+' && z[0] != '-')) {
    return {};
  }
  for (char c : z.substr(1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return {};
    }
  }
  if (z.substr(1, 2) > "14" || z.substr(3, 2) > "59") {
    return {};
  }
  return std::string(z.substr(0, 3)) + ":" + std::string(z.substr(3, 2));
}

std::optional<Value> timeValue(const Reader& r, const FieldRule& rule, bool instant,
                               bool date_only) {
  const std::string ts = r.get(rule.component > 0 ? rule.component : 1, rule.component > 0 ? 1 : 0);
  if (ts.empty()) {
    return std::nullopt;
  }
  if (date_only) {
    auto t = hl7Time(ts.substr(0, std::min<size_t>(ts.size(), 8)), "", false);
    return t ? std::optional<Value>(Value::string(*t)) : std::nullopt;
  }
  // A time without a zone takes MSH-7's, then the configured one.
  std::string zone(r.ctx().zone);
  hl7::Element msh7 = r.ctx().msg.get(0, 7, 1, 1, 0);
  const std::string_view sent = msh7.raw;
  const size_t sign = sent.find_first_of("+-");
  if (sign != std::string_view::npos) {
    if (std::string z = fhirZone(sent.substr(sign)); !z.empty()) {
      zone = z;
    }
  }
  auto t = hl7Time(ts, zone, instant);
  return t ? std::optional<Value>(Value::string(*t)) : std::nullopt;
}

std::optional<Value> quantityOrString(const Reader& r) {
  const std::string type = r.other(2);
  const std::string v = r.get(1);
  if (v.empty()) {
    return std::nullopt;
  }
  if (api::iequals(type, "NM")) {
    char* end = nullptr;
    const double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || !std::isfinite(d)) {
      return std::nullopt;  // not a number: nothing we can state as a Quantity
    }
    Value q = Value::object({{"value", Value::number(d)}});
    const std::string unit = r.other(6, 1);
    if (!unit.empty()) {
      q.set("unit", Value::string(unit));
      const std::string unit_system = r.other(6, 3);
      if (api::iequals(unit_system, "UCUM")) {
        q.set("system", Value::string("http://unitsofmeasure.org"));
        q.set("code", Value::string(codeOf(unit)));
      }
    }
    return Value::object({{"valueQuantity", std::move(q)}});
  }
  if (api::iequals(type, "CE") || api::iequals(type, "CWE")) {
    auto cc = cwe(r, "");
    return cc ? std::optional<Value>(Value::object({{"valueCodeableConcept", std::move(*cc)}}))
              : std::nullopt;
  }
  if (api::iequals(type, "TS") || api::iequals(type, "DTM") || api::iequals(type, "DT")) {
    auto t = hl7Time(v, "", false);
    return t ? std::optional<Value>(Value::object({{"valueDateTime", Value::string(*t)}}))
             : std::nullopt;
  }
  // ST, TX, FT and anything else stated as text.
  return Value::object({{"valueString", Value::string(v)}});
}

std::optional<Value> minutes(const Reader& r) {
  const std::string v = r.get(1);
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n <= 0 || n > 100000) {
    return std::nullopt;
  }
  const std::string unit = r.other(10);
  long factor = 0;
  if (unit.empty() || api::iequals(unit, "MIN") || api::iequals(unit, "M")) {
    factor = 1;
  } else if (api::iequals(unit, "HR") || api::iequals(unit, "H") || api::iequals(unit, "HOUR")) {
    factor = 60;
  }
  if (factor == 0) {
    return std::nullopt;
  }
  return Value::integer(n * factor);
}

}  // namespace

std::optional<std::string> hl7Time(std::string_view ts, std::string_view zone, bool instant) {
  // YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]
  size_t digits = 0;
  while (digits < ts.size() && std::isdigit(static_cast<unsigned char>(ts[digits]))) {
    ++digits;
  }
  if (digits < 4 || digits > 14 || digits % 2 != 0) {
    return std::nullopt;
  }
  std::string out(ts.substr(0, 4));
  if (digits >= 6) {
    out += "-" + std::string(ts.substr(4, 2));
  }
  if (digits >= 8) {
    out += "-" + std::string(ts.substr(6, 2));
  }
  size_t i = digits;
  std::string fraction;
  if (i < ts.size() && ts[i] == '.') {
    size_t j = i + 1;
    while (j < ts.size() && std::isdigit(static_cast<unsigned char>(ts[j]))) {
      ++j;
    }
    fraction = std::string(ts.substr(i, j - i));
    if (fraction.size() < 2 || digits != 14) {
      return std::nullopt;
    }
    i = j;
  }
  std::string own_zone;
  if (i < ts.size()) {
    own_zone = fhirZone(ts.substr(i));
    if (own_zone.empty()) {
      return std::nullopt;
    }
  }
  // Calendar and clock ranges (FHIR's regexes reject month 13 or hour 24 with minutes).
  auto in = [&](size_t at, std::string_view lo, std::string_view hi) {
    return digits < at + 2 || (ts.substr(at, 2) >= lo && ts.substr(at, 2) <= hi);
  };
  if (!in(4, "01", "12") || !in(6, "01", "31") || !in(8, "00", "23") || !in(10, "00", "59") ||
      !in(12, "00", "59")) {
    return std::nullopt;
  }
  if (digits <= 8) {
    return instant ? std::nullopt : std::optional<std::string>(out);
  }
  const std::string z = own_zone.empty() ? std::string(zone) : own_zone;
  if (z.empty()) {
    // FHIR needs a zone with a time: keep the day rather than invent one.
    return instant || digits < 8 ? std::nullopt : std::optional<std::string>(out);
  }
  out += "T" + std::string(ts.substr(8, 2)) + ":" +
         (digits >= 12 ? std::string(ts.substr(10, 2)) : std::string("00")) + ":" +
         (digits >= 14 ? std::string(ts.substr(12, 2)) : std::string("00")) + fraction + z;
  return out;
}

std::optional<json::Value> convert(const ConvContext& ctx, const FieldRule& rule, int rep) {
  const Reader r(ctx, rule.field, rep);
  switch (rule.conv) {
    case Conv::string: {
      std::string v = r.get(rule.component > 0 ? rule.component : 1);
      return v.empty() ? std::nullopt : std::optional<Value>(Value::string(v));
    }
    case Conv::code: {
      auto c = mapCode(rule.arg, r.get(rule.component > 0 ? rule.component : 1));
      return c ? std::optional<Value>(Value::string(std::string(*c))) : std::nullopt;
    }
    case Conv::coding: {
      const std::string code = r.get(1);
      auto c = mapCode(rule.arg, code);
      if (!c) {
        return std::nullopt;
      }
      return Value::object({{"system", Value::string(std::string(codeTableSystem(rule.arg)))},
                            {"code", Value::string(std::string(*c))}});
    }
    case Conv::cx:
      return cx(r);
    case Conv::ei:
      return ei(r, rule.arg);
    case Conv::ssn: {
      const std::string v = r.get(1);
      if (v.empty()) {
        return std::nullopt;
      }
      return Value::object({{"type", codeable(kV2IdType, "SS", "")},
                            {"system", Value::string(kSsnSystem)},
                            {"value", Value::string(v)}});
    }
    case Conv::xpn:
      return xpn(r);
    case Conv::xad:
      return xad(r);
    case Conv::xtn:
      return xtn(r, rule.arg);
    case Conv::cwe:
      return cwe(r, rule.arg);
    case Conv::date:
      return timeValue(r, rule, false, true);
    case Conv::date_time:
      return timeValue(r, rule, false, false);
    case Conv::instant:
      return timeValue(r, rule, true, false);
    case Conv::minutes:
      return minutes(r);
    case Conv::payor: {
      Value ref = Value::object();
      if (auto id = cx(r)) {
        ref.set("identifier", std::move(*id));
      }
      setIf(ref, "display", r.other(4));
      return done(std::move(ref));
    }
    case Conv::plan_class: {
      const std::string v = r.get(1);
      if (v.empty()) {
        return std::nullopt;
      }
      Value c = Value::object(
          {{"type", codeable("http://terminology.hl7.org/CodeSystem/coverage-class", rule.arg, "")},
           {"value", Value::string(v)}});
      setIf(c, "name", r.get(2));
      return c;
    }
    case Conv::obx_value:
      return quantityOrString(r);
    case Conv::range_text: {
      const std::string v = r.get(1);
      return v.empty() ? std::nullopt
                       : std::optional<Value>(Value::object({{"text", Value::string(v)}}));
    }
    case Conv::xcn_actor: {
      std::string display = r.get(3);
      if (std::string family = r.get(2); !family.empty()) {
        display += (display.empty() ? "" : " ") + family;
      }
      if (display.empty()) {
        return std::nullopt;
      }
      return Value::object({{"display", Value::string(display)}});
    }
  }
  return std::nullopt;
}

}  // namespace psa::adapters::fhir_map
