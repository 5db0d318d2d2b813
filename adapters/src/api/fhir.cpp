#include "psa/adapters/api/fhir.h"

#include <array>
#include <utility>

#include "psa/store/clock.h"
#include "psa/store/json.h"

namespace psa::adapters::api {
namespace {

Error bad(const std::string& where, const std::string& what, size_t offset) {
  return Error(Errc::invalid_input,
               (where.empty() ? "" : where + ": ") + what + " (byte " + std::to_string(offset) + ")");
}

const json::Value* member(const json::Value& v, std::string_view key) {
  return v.isObject() ? v.find(key) : nullptr;
}

std::string str(const json::Value& v, std::string_view key) {
  const json::Value* m = member(v, key);
  return m != nullptr && m->isString() ? m->asString() : std::string();
}

bool validId(const std::string& s) { return !s.empty() && s.size() <= 256; }

// Reads resourceType/id/meta of a resource object.
Result<FhirRef> refOf(const json::Value& res, const std::string& where) {
  if (!res.isObject()) {
    return bad(where, "expected a resource object", res.pos().offset);
  }
  FhirRef ref;
  const json::Value* rt = res.find("resourceType");
  if (rt == nullptr || !rt->isString() || rt->asString().empty()) {
    return bad(where, "missing resourceType", res.pos().offset);
  }
  ref.type = rt->asString();
  const json::Value* id = res.find("id");
  if (id == nullptr || !id->isString() || !validId(id->asString())) {
    return bad(where, "missing or invalid id", res.pos().offset);
  }
  ref.id = id->asString();
  if (const json::Value* meta = res.find("meta"); meta != nullptr) {
    if (!meta->isObject()) {
      return bad(where + ".meta", "expected an object", meta->pos().offset);
    }
    ref.version_id = str(*meta, "versionId");
    ref.last_updated = str(*meta, "lastUpdated");
  }
  return ref;
}

// "Patient/123", "https://host/base/Patient/123", "Patient/123/_history/4" -> type, id.
bool splitRefUrl(std::string_view url, std::string& type, std::string& id) {
  if (const size_t h = url.find("/_history/"); h != std::string_view::npos) {
    url = url.substr(0, h);
  }
  if (const size_t q = url.find('?'); q != std::string_view::npos) {
    url = url.substr(0, q);
  }
  const size_t slash = url.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= url.size()) {
    return false;
  }
  const size_t prev = url.rfind('/', slash - 1);
  type = std::string(url.substr(prev == std::string_view::npos ? 0 : prev + 1,
                                slash - (prev == std::string_view::npos ? 0 : prev + 1)));
  id = std::string(url.substr(slash + 1));
  return !type.empty() && validId(id);
}

// W/"3" -> 3
std::string etagVersion(std::string_view etag) {
  const size_t a = etag.find('"');
  if (a == std::string_view::npos) {
    return std::string(etag);
  }
  const size_t b = etag.find('"', a + 1);
  return std::string(etag.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1));
}

Error parseError(const std::string& prefix, const Error& e) {
  return Error(e.code, prefix + scrubParseError(e.message));
}

Result<json::Value> parseLimited(std::string_view text, size_t max_bytes, size_t max_depth) {
  json::Limits limits;
  limits.max_bytes = max_bytes;
  limits.max_depth = max_depth;
  limits.max_string = max_bytes;
  return json::parse(text, limits);
}

}  // namespace

store::Kind kindForFhirType(std::string_view t) {
  using store::Kind;
  static constexpr std::array<std::pair<std::string_view, Kind>, 52> kMap = {{
      {"Patient", Kind::patient},
      {"RelatedPerson", Kind::patient},
      {"Person", Kind::patient},
      {"Appointment", Kind::appointment},
      {"AppointmentResponse", Kind::appointment},
      {"Schedule", Kind::appointment},
      {"Slot", Kind::appointment},
      {"Encounter", Kind::clinical},
      {"EpisodeOfCare", Kind::clinical},
      {"Condition", Kind::clinical},
      {"FamilyMemberHistory", Kind::clinical},
      {"AllergyIntolerance", Kind::clinical},
      {"Procedure", Kind::clinical},
      {"MedicationRequest", Kind::clinical},
      {"MedicationStatement", Kind::clinical},
      {"MedicationAdministration", Kind::clinical},
      {"MedicationDispense", Kind::clinical},
      {"Medication", Kind::clinical},
      {"Immunization", Kind::clinical},
      {"CarePlan", Kind::clinical},
      {"CareTeam", Kind::clinical},
      {"Goal", Kind::clinical},
      {"Observation", Kind::clinical},
      {"DiagnosticReport", Kind::clinical},
      {"DocumentReference", Kind::clinical},
      {"ServiceRequest", Kind::clinical},
      {"Specimen", Kind::clinical},
      {"Provenance", Kind::clinical},
      {"Claim", Kind::billing},
      {"ClaimResponse", Kind::billing},
      {"ExplanationOfBenefit", Kind::billing},
      {"ChargeItem", Kind::billing},
      {"Account", Kind::billing},
      {"Invoice", Kind::billing},
      {"Coverage", Kind::billing},
      {"CoverageEligibilityRequest", Kind::billing},
      {"CoverageEligibilityResponse", Kind::billing},
      {"PaymentReconciliation", Kind::billing},
      {"PaymentNotice", Kind::billing},
      {"Practitioner", Kind::provider},
      {"PractitionerRole", Kind::provider},
      {"Organization", Kind::provider},
      {"Location", Kind::provider},
      {"HealthcareService", Kind::provider},
      {"Endpoint", Kind::provider},
      {"Device", Kind::inventory},
      {"DeviceRequest", Kind::inventory},
      {"SupplyRequest", Kind::inventory},
      {"SupplyDelivery", Kind::inventory},
      {"InventoryItem", Kind::inventory},
      {"InventoryReport", Kind::inventory},
      {"Substance", Kind::inventory},
  }};
  for (const auto& [name, kind] : kMap) {
    if (name == t) {
      return kind;
    }
  }
  return Kind::other;
}

std::string fhirIdentity(const FhirRef& ref, bool deleted, std::string_view fallback) {
  std::string out = ref.type + "/" + ref.id;
  if (!ref.version_id.empty()) {
    out += "/_history/" + ref.version_id;
  } else if (!ref.last_updated.empty() && !deleted) {
    out += "@" + ref.last_updated;
  } else if (!fallback.empty() && !deleted) {
    out += "#";
    out += fallback;
  }
  if (deleted) {
    out += "/deleted";
  }
  return out;
}

Result<FhirPage> parseBundlePage(std::string_view text, const FhirLimits& limits) {
  auto doc = parseLimited(text, limits.max_bytes, limits.max_depth);
  if (!doc) {
    return parseError("Bundle page: ", doc.error());
  }
  const json::Value& b = *doc;
  if (!b.isObject()) {
    return bad("", "expected a Bundle object", b.pos().offset);
  }
  const std::string rt = str(b, "resourceType");
  if (rt == "OperationOutcome") {
    return bad("", "got an OperationOutcome instead of a Bundle: " + summarizeErrorBody(text),
               b.pos().offset);
  }
  if (rt != "Bundle") {
    return bad("resourceType", "expected \"Bundle\"", b.pos().offset);
  }
  FhirPage page;
  page.bundle_type = str(b, "type");
  if (const json::Value* meta = b.find("meta"); meta != nullptr && meta->isObject()) {
    page.last_updated = str(*meta, "lastUpdated");
  }
  if (const json::Value* total = b.find("total"); total != nullptr) {
    if (!total->isInteger() || total->asInt() < 0) {
      return bad("total", "expected a non-negative integer", total->pos().offset);
    }
    page.total = total->asInt();
  }
  if (const json::Value* links = b.find("link"); links != nullptr) {
    if (!links->isArray()) {
      return bad("link", "expected an array", links->pos().offset);
    }
    for (size_t i = 0; i < links->items().size(); ++i) {
      const json::Value& l = links->items()[i];
      if (!l.isObject()) {
        return bad("link[" + std::to_string(i) + "]", "expected an object", l.pos().offset);
      }
      if (str(l, "relation") == "next") {
        page.next_url = str(l, "url");
        if (page.next_url.empty()) {
          return bad("link[" + std::to_string(i) + "].url", "next link without url", l.pos().offset);
        }
      }
    }
  }
  const json::Value* entries = b.find("entry");
  if (entries == nullptr) {
    return page;
  }
  if (!entries->isArray()) {
    return bad("entry", "expected an array", entries->pos().offset);
  }
  if (entries->items().size() > limits.max_entries) {
    return Error(Errc::limit, "Bundle page: more than " + std::to_string(limits.max_entries) +
                                  " entries");
  }
  page.items.reserve(entries->items().size());
  for (size_t i = 0; i < entries->items().size(); ++i) {
    const json::Value& e = entries->items()[i];
    const std::string where = "entry[" + std::to_string(i) + "]";
    if (!e.isObject()) {
      return bad(where, "expected an object", e.pos().offset);
    }
    if (const json::Value* search = e.find("search"); search != nullptr && search->isObject()) {
      if (str(*search, "mode") == "outcome") {
        ++page.outcome_entries;
        continue;
      }
    }
    const json::Value* request = e.find("request");
    const bool is_delete = request != nullptr && request->isObject() &&
                           str(*request, "method") == "DELETE";
    FhirItem item;
    if (is_delete) {
      const std::string url = str(*request, "url");
      if (!splitRefUrl(url, item.ref.type, item.ref.id)) {
        return bad(where + ".request.url", "expected Type/id in a DELETE entry", request->pos().offset);
      }
      if (const json::Value* resp = e.find("response"); resp != nullptr && resp->isObject()) {
        item.ref.version_id = etagVersion(str(*resp, "etag"));
        item.ref.last_updated = str(*resp, "lastModified");
      }
      item.deleted = true;
      item.offset = e.pos().offset;
      item.length = e.endOffset() - e.pos().offset;
    } else {
      const json::Value* res = e.find("resource");
      if (res == nullptr) {
        return bad(where, "entry without resource", e.pos().offset);
      }
      auto ref = refOf(*res, where + ".resource");
      if (!ref) {
        return std::move(ref).error();
      }
      item.ref = std::move(ref).value();
      item.offset = res->pos().offset;
      item.length = res->endOffset() - res->pos().offset;
    }
    page.items.push_back(std::move(item));
  }
  return page;
}

Result<FhirItem> parseNdjsonResource(std::string_view line, std::string_view expected_type) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  auto doc = parseLimited(line, 64u << 20, 64);
  if (!doc) {
    return parseError("NDJSON line: ", doc.error());
  }
  auto ref = refOf(*doc, "NDJSON line");
  if (!ref) {
    return std::move(ref).error();
  }
  if (!expected_type.empty() && ref->type != expected_type) {
    return bad("NDJSON line", "resourceType " + ref->type + " in a " + std::string(expected_type) +
                                  " file",
               0);
  }
  FhirItem item;
  item.ref = std::move(ref).value();
  item.offset = doc->pos().offset;
  item.length = doc->endOffset() - doc->pos().offset;
  return item;
}

Result<std::vector<FhirItem>> parseNdjsonDeleted(std::string_view line) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  auto doc = parseLimited(line, 64u << 20, 64);
  if (!doc) {
    return parseError("deleted NDJSON line: ", doc.error());
  }
  const json::Value& b = *doc;
  if (!b.isObject() || str(b, "resourceType") != "Bundle") {
    return bad("deleted NDJSON line", "expected a Bundle", b.pos().offset);
  }
  std::vector<FhirItem> out;
  const json::Value* entries = b.find("entry");
  if (entries == nullptr) {
    return out;
  }
  if (!entries->isArray()) {
    return bad("entry", "expected an array", entries->pos().offset);
  }
  for (size_t i = 0; i < entries->items().size(); ++i) {
    const json::Value& e = entries->items()[i];
    const std::string where = "entry[" + std::to_string(i) + "]";
    const json::Value* request = member(e, "request");
    if (request == nullptr || !request->isObject() || str(*request, "method") != "DELETE") {
      return bad(where, "expected a DELETE request", e.pos().offset);
    }
    FhirItem item;
    if (!splitRefUrl(str(*request, "url"), item.ref.type, item.ref.id)) {
      return bad(where + ".request.url", "expected Type/id", request->pos().offset);
    }
    item.deleted = true;
    item.offset = e.pos().offset;
    item.length = e.endOffset() - e.pos().offset;
    out.push_back(std::move(item));
  }
  return out;
}

Result<BulkManifest> parseBulkManifest(std::string_view text) {
  auto doc = parseLimited(text, 16u << 20, 32);
  if (!doc) {
    return parseError("Bulk manifest: ", doc.error());
  }
  const json::Value& m = *doc;
  if (!m.isObject()) {
    return bad("Bulk manifest", "expected an object", m.pos().offset);
  }
  BulkManifest out;
  out.transaction_time = str(m, "transactionTime");
  int64_t ms = 0;
  if (out.transaction_time.empty() || !parseRfc3339(out.transaction_time, ms)) {
    return bad("transactionTime", "missing or not an instant", m.pos().offset);
  }
  if (const json::Value* r = m.find("requiresAccessToken"); r != nullptr && r->isBool()) {
    out.requires_access_token = r->asBool();
  }
  auto files = [&](std::string_view key, std::vector<BulkFile>& into) -> Status {
    const json::Value* list = m.find(key);
    if (list == nullptr) {
      return {};
    }
    if (!list->isArray()) {
      return bad(std::string(key), "expected an array", list->pos().offset);
    }
    for (size_t i = 0; i < list->items().size(); ++i) {
      const json::Value& f = list->items()[i];
      const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
      if (!f.isObject()) {
        return bad(where, "expected an object", f.pos().offset);
      }
      BulkFile file;
      file.type = str(f, "type");
      file.url = str(f, "url");
      if (file.url.empty()) {
        return bad(where + ".url", "missing", f.pos().offset);
      }
      if (const json::Value* c = f.find("count"); c != nullptr && c->isInteger()) {
        file.count = c->asInt();
      }
      into.push_back(std::move(file));
    }
    return {};
  };
  PSA_TRY(files("output", out.output));
  PSA_TRY(files("deleted", out.deleted));
  PSA_TRY(files("error", out.error));
  return out;
}

std::string scrubParseError(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  bool in_quote = false;
  for (char c : message) {
    if (c == '"') {
      if (!in_quote) {
        out += "\"...";
      } else {
        out += '"';
      }
      in_quote = !in_quote;
      continue;
    }
    if (!in_quote) {
      out += c;
    }
  }
  return out;
}

std::string summarizeErrorBody(std::string_view body) {
  // A SOAP Fault: <faultcode>..</faultcode><faultstring ...>..</faultstring>
  if (const size_t f = body.find("faultstring"); f != std::string_view::npos && body.find('<') != std::string_view::npos) {
    const size_t start = body.find('>', f);
    const size_t end = start == std::string_view::npos ? start : body.find('<', start);
    if (end != std::string_view::npos) {
      std::string clean = "SOAP Fault: ";
      for (char c : body.substr(start + 1, std::min<size_t>(end - start - 1, 160))) {
        clean += (c >= 0x20 && c < 0x7f) ? c : '?';
      }
      return clean;
    }
  }
  json::Limits limits;
  limits.max_bytes = 1u << 20;
  limits.max_depth = 16;
  auto doc = json::parse(body, limits);
  if (!doc || !doc->isObject()) {
    return {};
  }
  std::string code;
  std::string text;
  if (str(*doc, "resourceType") == "OperationOutcome") {
    if (const json::Value* issues = doc->find("issue");
        issues != nullptr && issues->isArray() && !issues->items().empty()) {
      code = str(issues->items()[0], "code");
      text = str(issues->items()[0], "diagnostics");
    }
  } else if (!str(*doc, "error").empty()) {
    code = str(*doc, "error");
    text = str(*doc, "error_description");
    if (text.empty()) {
      text = str(*doc, "detailedmessage");
    }
  } else if (!str(*doc, "detail").empty()) {
    text = str(*doc, "detail");
  } else if (!str(*doc, "message").empty()) {
    text = str(*doc, "message");
  } else {
    return {};
  }
  std::string clean;
  for (char c : text) {
    if (clean.size() >= 160) {
      clean += "...";
      break;
    }
    clean += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  std::string out;
  if (!code.empty()) {
    out = "code=" + code;
  }
  if (!clean.empty()) {
    out += (out.empty() ? "" : ": ") + clean;
  }
  return out;
}

}  // namespace psa::adapters::api
