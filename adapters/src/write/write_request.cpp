#include "psa/adapters/write/write_request.h"

#include <algorithm>
#include <array>

#include "psa/adapters/file/csv.h"
#include "psa/adapters/hl7/message.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"

namespace psa::adapters::write {
namespace {

constexpr std::array<std::string_view, 5> kOps = {"create", "update", "cancel", "delete", "send"};
constexpr std::array<std::string_view, 4> kFormats = {"hl7v2", "fhir+json", "vendor+json", "csv"};
constexpr std::array<std::string_view, 6> kStatuses = {"accepted", "delivered", "failed",
                                                       "rejected", "expired",   "cancelled"};
constexpr size_t kMaxOptionalText = 256;

Error bad(std::string_view field, std::string_view what, Errc code = Errc::invalid_input) {
  return Error(code, "write request: " + std::string(field) + ": " + std::string(what));
}

// Printable ASCII or any UTF-8 byte >= 0x80 (the JSON parser has checked the encoding);
// no control characters.
bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u != 0x7f;
  });
}

bool adapterName(std::string_view s) {
  return !s.empty() && s.size() <= 63 && s.front() != '-' && s.front() != '.' &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
         });
}

std::string choices(auto const& names) {
  std::string out;
  for (std::string_view n : names) {
    out += out.empty() ? "" : ", ";
    out += n;
  }
  return out;
}

Result<const json::Value*> requiredString(const json::Value& doc, std::string_view field) {
  const json::Value* v = doc.find(field);
  if (v == nullptr) {
    return bad(field, "missing");
  }
  if (!v->isString()) {
    return bad(field, std::string("expected a string, found ") +
                          std::string(json::Value::typeName(v->type())));
  }
  return v;
}

Result<int64_t> timeField(const json::Value& doc, std::string_view field) {
  auto v = requiredString(doc, field);
  if (!v) {
    return std::move(v).error();
  }
  int64_t ms = 0;
  if (!parseRfc3339((*v)->asString(), ms)) {
    return bad(field, "expected an RFC 3339 time, e.g. 2026-12-07T18:00:00Z");
  }
  return ms;
}

Result<std::optional<std::string>> optionalText(const json::Value& doc, std::string_view field) {
  const json::Value* v = doc.find(field);
  if (v == nullptr || v->isNull()) {
    return std::optional<std::string>();
  }
  if (!v->isString()) {
    return bad(field, std::string("expected a string or null, found ") +
                          std::string(json::Value::typeName(v->type())));
  }
  const std::string& s = v->asString();
  if (s.empty() || s.size() > kMaxOptionalText || !printable(s)) {
    return bad(field,
               "expected 1-" + std::to_string(kMaxOptionalText) + " printable characters, or null");
  }
  return std::optional<std::string>(s);
}

template <class T, size_t N>
std::optional<T> lookup(const std::array<std::string_view, N>& names, std::string_view text) {
  for (size_t k = 0; k < N; ++k) {
    if (names[k] == text) {
      return static_cast<T>(k);
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view writeOpName(WriteOp op) { return kOps[static_cast<size_t>(op)]; }
std::optional<WriteOp> parseWriteOp(std::string_view text) { return lookup<WriteOp>(kOps, text); }
std::string_view writeFormatName(WriteFormat f) { return kFormats[static_cast<size_t>(f)]; }
std::optional<WriteFormat> parseWriteFormat(std::string_view text) {
  return lookup<WriteFormat>(kFormats, text);
}
std::string_view writeStatusName(WriteStatus s) { return kStatuses[static_cast<size_t>(s)]; }

bool isUlid(std::string_view text) {
  if (text.size() != 26 || text[0] < '0' || text[0] > '7') {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') ||
           (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
  });
}

Result<WriteRequest> parseWriteRequest(std::string_view payload, const WriteLimits& limits) {
  if (payload.size() > limits.max_payload_bytes) {
    return Error(Errc::limit, "write request: payload larger than " +
                                  std::to_string(limits.max_payload_bytes) + " bytes");
  }
  json::Limits jl;
  jl.max_bytes = limits.max_payload_bytes;
  jl.max_string = limits.max_payload_bytes;
  jl.max_depth = 16;
  jl.allow_duplicate_keys = false;
  auto parsed = json::parse(payload, jl);
  if (!parsed) {
    return Error(parsed.error().code, "write request: not JSON: " + parsed.error().message);
  }
  const json::Value& doc = parsed.value();
  if (!doc.isObject()) {
    return Error(Errc::invalid_input, "write request: expected a JSON object, found " +
                                          std::string(json::Value::typeName(doc.type())));
  }

  WriteRequest r;
  auto id = requiredString(doc, "id");
  if (!id) {
    return std::move(id).error();
  }
  if (!isUlid((*id)->asString())) {
    return bad("id", "expected a ULID (26 characters of Crockford base32, upper case)");
  }
  r.id = (*id)->asString();

  auto agent = requiredString(doc, "agent_id");
  if (!agent) {
    return std::move(agent).error();
  }
  const std::string& a = (*agent)->asString();
  if (a.empty() || a.size() > 128 || !printable(a) || a.find_first_of("/+#") != std::string::npos) {
    return bad("agent_id", "expected 1-128 printable characters without / + #");
  }
  r.agent_id = a;

  auto issued = timeField(doc, "issued_at");
  if (!issued) {
    return std::move(issued).error();
  }
  r.issued_at_ms = *issued;
  auto expires = timeField(doc, "expires_at");
  if (!expires) {
    return std::move(expires).error();
  }
  r.expires_at_ms = *expires;
  if (r.expires_at_ms <= r.issued_at_ms) {
    return bad("expires_at", "not after issued_at");
  }

  auto target = requiredString(doc, "target");
  if (!target) {
    return std::move(target).error();
  }
  if (!adapterName((*target)->asString())) {
    return bad("target", "expected an adapter name (1-63 of a-z 0-9 - _ .)");
  }
  r.target = (*target)->asString();

  auto op = requiredString(doc, "op");
  if (!op) {
    return std::move(op).error();
  }
  auto op_value = parseWriteOp((*op)->asString());
  if (!op_value) {
    return bad("op", "expected one of " + choices(kOps));
  }
  r.op = *op_value;

  auto kind = requiredString(doc, "kind");
  if (!kind) {
    return std::move(kind).error();
  }
  auto kind_value = store::parseKind((*kind)->asString());
  if (!kind_value) {
    std::string names;
    for (Kind k : store::kAllKinds) {
      names += names.empty() ? "" : ", ";
      names += store::kindName(k);
    }
    return bad("kind", "expected one of " + names);
  }
  r.kind = *kind_value;

  auto format = requiredString(doc, "format");
  if (!format) {
    return std::move(format).error();
  }
  auto format_value = parseWriteFormat((*format)->asString());
  if (!format_value) {
    return bad("format", "expected one of " + choices(kFormats));
  }
  r.format = *format_value;

  for (auto [field, out] :
       {std::pair{"resource", &r.resource}, std::pair{"resource_id", &r.resource_id},
        std::pair{"if_match", &r.if_match}}) {
    auto v = optionalText(doc, field);
    if (!v) {
      return std::move(v).error();
    }
    *out = std::move(v).value();
  }

  auto body = requiredString(doc, "body");
  if (!body) {
    return std::move(body).error();
  }
  if ((*body)->asString().size() > limits.max_body_bytes) {
    return bad("body", "larger than " + std::to_string(limits.max_body_bytes) + " bytes",
               Errc::limit);
  }
  r.body = (*body)->asString();
  return r;
}

std::string requestIdOf(std::string_view payload) {
  json::Limits jl;
  jl.max_depth = 16;
  auto parsed = json::parse(payload, jl);
  if (!parsed || !parsed->isObject()) {
    return {};
  }
  const json::Value* id = parsed->find("id");
  if (id == nullptr || !id->isString() || !isUlid(id->asString())) {
    return {};
  }
  return id->asString();
}

namespace {

Error badBody(std::string what, Errc code = Errc::invalid_input) {
  return Error(code, "body: " + std::move(what));
}

Status validateHl7(std::string_view body) {
  hl7::Message msg;
  if (auto st = msg.parse(body); !st) {
    return badBody(msg.failure().describe(), msg.failure().errc);
  }
  if (msg.segmentId(0) != "MSH") {
    return badBody(
        "HL7 100 (Segment sequence error) at segment 1: expected MSH (one message, "
        "not a batch)");
  }
  if (msg.countSegments("MSH") > 1) {
    return badBody(
        "HL7 100 (Segment sequence error): more than one MSH (one message per "
        "request)");
  }
  if (msg.messageType().empty()) {
    return badBody("HL7 101 (Required field missing) at MSH-9.1: message type");
  }
  if (msg.triggerEvent().empty()) {
    return badBody("HL7 101 (Required field missing) at MSH-9.2: trigger event");
  }
  // MSH-10 may be empty (the agent derives one); a given one must be usable as MSA-2.
  const hl7::Element msh10 = msg.get(0, 10, 0);
  if (msh10.hasValue()) {
    const std::string id = msg.decode(msh10);
    if (id.empty() || id.size() > 199) {
      return badBody("HL7 102 (Data type error) at MSH-10: expected 1-199 characters");
    }
  }
  return {};
}

Result<json::Value> parseBodyJson(std::string_view body) {
  json::Limits jl;
  jl.max_depth = 64;
  auto parsed = json::parse(body, jl);
  if (!parsed) {
    return badBody("not JSON: " + parsed.error().message,
                   parsed.error().is(Errc::limit) ? Errc::limit : Errc::invalid_input);
  }
  return parsed;
}

Status validateFhir(std::string_view body) {
  auto parsed = parseBodyJson(body);
  if (!parsed) {
    return std::move(parsed).error();
  }
  if (!parsed->isObject()) {
    return badBody("expected a FHIR resource (JSON object), found " +
                   std::string(json::Value::typeName(parsed->type())));
  }
  const json::Value* type = parsed->find("resourceType");
  if (type == nullptr || !type->isString()) {
    return badBody("resourceType: missing or not a string");
  }
  const std::string& t = type->asString();
  const bool name_ok = t.size() >= 2 && t.size() <= 64 && t[0] >= 'A' && t[0] <= 'Z' &&
                       std::all_of(t.begin(), t.end(), [](char c) {
                         return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
                       });
  if (!name_ok) {
    return badBody("resourceType: expected a resource type name such as Appointment");
  }
  return {};
}

Status validateVendorJson(std::string_view body) {
  auto parsed = parseBodyJson(body);
  if (!parsed) {
    return std::move(parsed).error();
  }
  if (!parsed->isObject() && !parsed->isArray()) {
    return badBody("expected a JSON object or array, found " +
                   std::string(json::Value::typeName(parsed->type())));
  }
  return {};
}

Status validateCsv(std::string_view body) {
  auto parser = file::CsvParser::create(file::CsvOptions{});
  if (!parser) {
    return std::move(parser).error();
  }
  parser->feed(body);
  parser->finish();
  uint64_t rows = 0;
  for (;;) {
    auto step = parser->next();
    if (!step) {
      return badBody(step.error().message,
                     step.error().is(Errc::limit) ? Errc::limit : Errc::invalid_input);
    }
    if (*step == file::CsvParser::Step::end) {
      break;
    }
    if (*step == file::CsvParser::Step::row) {
      if (parser->row().error) {
        return badBody(parser->row().error->message);
      }
      ++rows;
    }
  }
  if (rows == 0) {
    return badBody("no data row after the header");
  }
  return {};
}

}  // namespace

Status validateBodyFor(WriteFormat format, std::string_view body) {
  if (body.empty()) {
    return badBody("empty");
  }
  switch (format) {
    case WriteFormat::hl7v2:
      return validateHl7(body);
    case WriteFormat::fhir_json:
      return validateFhir(body);
    case WriteFormat::vendor_json:
      return validateVendorJson(body);
    case WriteFormat::csv:
      return validateCsv(body);
  }
  return badBody("unknown format");
}

std::string WriteResult::toJson() const {
  auto text = [](const std::string& s) {
    return s.empty() ? json::Value::null() : json::Value::string(s);
  };
  json::Value v = json::Value::object();
  v.set("id", json::Value::string(id));
  v.set("status", json::Value::string(std::string(writeStatusName(status))));
  v.set("reason", text(reason));
  v.set("error", text(error));
  v.set("target", text(target));
  v.set("pms_ref", text(pms_ref));
  v.set("attempts", json::Value::integer(attempts));
  v.set("at", json::Value::string(formatRfc3339(at_ms)));
  return json::serialize(v);
}

}  // namespace psa::adapters::write
