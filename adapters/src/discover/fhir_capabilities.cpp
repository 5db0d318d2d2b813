#include "psa/adapters/discover/fhir_capabilities.h"

#include <algorithm>

#include "api/url.h"
#include "psa/store/json.h"

namespace psa::adapters::discover {
namespace {

constexpr size_t kMaxList = 1000;  // members of any list we walk
constexpr size_t kMaxText = 200;

// A code or name as printable ASCII, bounded: these end up in reports.
std::string code(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxText)) {
    out += (c > 0x20 && c < 0x7f) ? c : '_';
  }
  return out;
}

std::string text(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, kMaxText)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

const json::Value* arrayAt(const json::Value& v, std::string_view key) {
  const json::Value* a = v.find(key);
  return a != nullptr && a->isArray() ? a : nullptr;
}

// The strings of an array member (non-strings skipped), bounded.
std::vector<std::string> strings(const json::Value& v, std::string_view key) {
  std::vector<std::string> out;
  if (const json::Value* a = arrayAt(v, key)) {
    for (const auto& i : a->items()) {
      if (out.size() >= kMaxList) {
        break;
      }
      if (i.isString()) {
        out.push_back(code(i.asString()));
      }
    }
  }
  return out;
}

bool hasExport(const json::Value& holder) {
  if (const json::Value* ops = arrayAt(holder, "operation")) {
    for (const auto& op : ops->items()) {
      if (op.isObject() && (op.getString("name") == "export" ||
                            op.getString("definition").find("export") != std::string::npos)) {
        return true;
      }
    }
  }
  return false;
}

Result<FhirResourceCaps> readResource(const json::Value& r, size_t i) {
  const std::string where = "rest[0].resource[" + std::to_string(i) + "]";
  if (!r.isObject()) {
    return Error(Errc::invalid_input, where + ": not an object");
  }
  const json::Value* type = r.find("type");
  if (type == nullptr || !type->isString() || type->asString().empty()) {
    return Error(Errc::invalid_input, where + ": type is not a string");
  }
  FhirResourceCaps c;
  c.type = code(type->asString());
  if (const json::Value* inter = arrayAt(r, "interaction")) {
    for (const auto& it : inter->items()) {
      const std::string k = it.isObject() ? it.getString("code") : std::string();
      c.read |= k == "read";
      c.search |= k == "search-type";
      c.history_type |= k == "history-type";
      c.history_instance |= k == "history-instance";
    }
  }
  if (const json::Value* params = arrayAt(r, "searchParam")) {
    for (const auto& p : params->items()) {
      const std::string n = p.isObject() ? p.getString("name") : std::string();
      c.last_updated |= n == "_lastUpdated";
      c.patient_param |= n == "patient";
    }
  }
  c.export_op = hasExport(r);
  return c;
}

Result<json::Value> parseObject(std::string_view body, const char* what) {
  json::Limits limits;
  limits.max_bytes = 32u << 20;
  auto doc = json::parse(body, limits);
  if (!doc) {
    return Error(doc.error().is(Errc::limit) ? Errc::limit : Errc::invalid_input,
                 std::string(what) + " is not JSON");
  }
  if (!doc->isObject()) {
    return Error(Errc::invalid_input, std::string(what) + " is not a JSON object");
  }
  return doc;
}

}  // namespace

Result<FhirCapabilities> parseCapabilityStatement(std::string_view body) {
  auto parsed = parseObject(body, "metadata");
  if (!parsed) {
    return std::move(parsed).error();
  }
  const json::Value& doc = *parsed;
  if (doc.getString("resourceType") != "CapabilityStatement") {
    return Error(Errc::invalid_input, "metadata is not a CapabilityStatement");
  }
  FhirCapabilities caps;
  caps.fhir_version = code(doc.getString("fhirVersion"));
  if (const json::Value* sw = doc.find("software"); sw != nullptr && sw->isObject()) {
    caps.software = text(sw->getString("name"));
    if (const std::string v = sw->getString("version"); !v.empty()) {
      caps.software += " " + text(v);
    }
  }
  caps.formats = strings(doc, "format");
  const json::Value* rest = arrayAt(doc, "rest");
  if (rest == nullptr || rest->items().empty()) {
    return caps;  // a server without a REST part: nothing to sync from, reported as such
  }
  const json::Value& server = rest->items()[0];
  if (!server.isObject()) {
    return Error(Errc::invalid_input, "rest[0]: not an object");
  }
  if (const json::Value* sec = server.find("security"); sec != nullptr && sec->isObject()) {
    if (const json::Value* services = arrayAt(*sec, "service")) {
      for (const auto& s : services->items()) {
        const json::Value* codings = s.isObject() ? arrayAt(s, "coding") : nullptr;
        for (size_t i = 0; codings != nullptr && i < codings->items().size(); ++i) {
          const json::Value& c = codings->items()[i];
          if (c.isObject() && !c.getString("code").empty() && caps.security.size() < kMaxList) {
            caps.security.push_back(code(c.getString("code")));
          }
        }
      }
    }
    if (const json::Value* ext = arrayAt(*sec, "extension")) {
      for (const auto& e : ext->items()) {
        const json::Value* inner = e.isObject() ? arrayAt(e, "extension") : nullptr;
        for (size_t i = 0; inner != nullptr && i < inner->items().size(); ++i) {
          const json::Value& u = inner->items()[i];
          if (u.isObject() && u.getString("url") == "token") {
            caps.token_url = code(u.getString("valueUri"));
          }
        }
      }
    }
  }
  if (const json::Value* inter = arrayAt(server, "interaction")) {
    for (const auto& it : inter->items()) {
      caps.history_system |= it.isObject() && it.getString("code") == "history-system";
    }
  }
  caps.export_system = hasExport(server);
  if (const json::Value* res = arrayAt(server, "resource")) {
    if (res->items().size() > kMaxResourceTypes) {
      return Error(Errc::limit, "metadata declares more than " + std::to_string(kMaxResourceTypes) +
                                    " resource types");
    }
    for (size_t i = 0; i < res->items().size(); ++i) {
      auto r = readResource(res->items()[i], i);
      if (!r) {
        return std::move(r).error();
      }
      caps.export_group |= r->type == "Group" && r->export_op;
      caps.export_patient |= r->type == "Patient" && r->export_op;
      caps.resources.push_back(std::move(r).value());
    }
  }
  return caps;
}

Result<SmartConfiguration> parseSmartConfiguration(std::string_view body) {
  auto parsed = parseObject(body, "smart-configuration");
  if (!parsed) {
    return std::move(parsed).error();
  }
  const json::Value& doc = *parsed;
  SmartConfiguration s;
  s.token_endpoint = code(doc.getString("token_endpoint"));
  if (s.token_endpoint.empty()) {
    return Error(Errc::invalid_input, "smart-configuration without token_endpoint");
  }
  s.grant_types = strings(doc, "grant_types_supported");
  s.auth_methods = strings(doc, "token_endpoint_auth_methods_supported");
  s.signing_algs = strings(doc, "token_endpoint_auth_signing_alg_values_supported");
  s.capabilities = strings(doc, "capabilities");
  const auto scopes = strings(doc, "scopes_supported");
  s.scopes_supported = scopes.size();
  s.system_scopes = std::any_of(scopes.begin(), scopes.end(),
                                [](const std::string& x) { return x.rfind("system/", 0) == 0; });
  return s;
}

std::string pagingStyle(std::string_view next_url) {
  for (const char* name :
       {"_getpages", "pageContext", "cursor", "_page_token", "page", "_offset"}) {
    if (!api::queryParam(next_url, name).empty()) {
      return name;
    }
  }
  return "link-next";
}

}  // namespace psa::adapters::discover
