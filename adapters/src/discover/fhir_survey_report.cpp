// The rendering half of `discover fhir`: the JSON report, the human summary, the suggested
// fhir-poll adapter and the initial-load estimate. Only structure and counts go in.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "api/api_common.h"
#include "psa/adapters/discover/fhir_survey.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::discover {
namespace {

namespace api = psa::adapters::api;

json::Value strList(const std::vector<std::string>& v) {
  json::Value a = json::Value::array();
  for (const auto& s : v) {
    a.push(json::Value::string(s));
  }
  return a;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

std::string joined(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : sep) + s;
  }
  return out;
}

// A population search answered (a count, or a Bundle without total) rather than a refusal.
bool answered(const FhirTypeProbe& p) { return p.count.has_value() || p.note == "no Bundle.total"; }

struct Estimate {
  uint64_t requests = 0;
  bool complete = true;  // every type's count known
  double per_s = 0;      // the vendor's tightest documented rate, 0 = none documented
  std::string rate_text;
  double at_rate_s = 0;
  double at_latency_s = 0;
};

Estimate estimate(const FhirSurvey& s, const FhirSurveyOptions& o,
                  const std::vector<std::string>& types) {
  Estimate e;
  const int64_t page = std::max<int64_t>(1, o.page_size);
  for (const auto& [type, probe] : s.types) {
    if (std::find(types.begin(), types.end(), type) == types.end()) {
      continue;
    }
    if (!probe.count) {
      e.complete = false;
      e.requests += 1;
      continue;
    }
    e.requests += static_cast<uint64_t>(std::max<int64_t>(1, (*probe.count + page - 1) / page));
  }
  const json::Value defaults = fhirVendorDefaults(o.vendor);
  for (const auto& r : api::parseLimitRules(defaults.find("rate_limits"))) {
    const double per_s =
        static_cast<double>(r.limit) * 1000.0 / static_cast<double>(r.window.count());
    if (e.per_s == 0 || per_s < e.per_s) {
      e.per_s = per_s;
      e.rate_text = std::to_string(r.limit) + " requests per " +
                    std::to_string(r.window.count() / 1000) + " s";
    }
  }
  e.at_rate_s = e.per_s > 0 ? static_cast<double>(e.requests) / e.per_s : 0;
  e.at_latency_s = static_cast<double>(e.requests) * s.mean_latency_ms / 1000.0;
  return e;
}

std::vector<std::string> suggestedTypes(const FhirSurvey& s, const std::string& sync) {
  std::vector<std::string> all;
  std::vector<std::string> ok;
  for (const auto& [type, probe] : s.types) {
    if (type == "Group") {
      continue;
    }
    all.push_back(type);
    if (answered(probe)) {
      ok.push_back(type);
    }
  }
  std::vector<std::string> out = (sync == "search" || sync == "history") && !ok.empty() ? ok : all;
  if (out.size() > 200) {
    out.resize(200);  // the schema's limit
  }
  return out;
}

std::string exportLevel(const FhirSurvey& s, const FhirSurveyOptions& o) {
  if (!o.group_id.empty() && s.caps->export_group) {
    return "group";
  }
  if (s.caps->export_system) {
    return "system";
  }
  if (s.caps->export_patient) {
    return "patient";
  }
  return "system";
}

std::string seconds(double s) {
  std::ostringstream out;
  if (s < 120) {
    out << static_cast<int64_t>(std::ceil(s)) << " s";
  } else if (s < 7200) {
    out << static_cast<int64_t>(std::ceil(s / 60)) << " min";
  } else {
    out << std::fixed;
    out.precision(1);
    out << s / 3600 << " h";
  }
  return out.str();
}

}  // namespace

std::string FhirSurvey::suggestedSync(const FhirSurveyOptions& o) const {
  if (!caps) {
    return "search";
  }
  const json::Value defaults = fhirVendorDefaults(o.vendor);
  if (o.vendor != "generic" && !defaults.getString("sync").empty()) {
    return defaults.getString("sync");
  }
  bool any_answer = false;
  bool all_last_updated = true;
  bool all_history = true;
  bool any_patient = false;
  for (const auto& r : caps->resources) {
    if (!r.search || r.type == "Group") {
      continue;
    }
    all_last_updated &= r.last_updated;
    all_history &= r.history_type;
    any_patient |= r.patient_param;
  }
  for (const auto& [type, probe] : types) {
    any_answer |= answered(probe);
  }
  if (any_answer) {
    return all_last_updated || !all_history ? "search" : "history";
  }
  if (caps->export_system || caps->export_patient || (caps->export_group && !o.group_id.empty())) {
    return "bulk";
  }
  return any_patient ? "patient-search" : "search";
}

json::Value FhirSurvey::report(const FhirSurveyOptions& o) const {
  json::Value r = json::Value::object();
  r.set("base_url", json::Value::string(o.base_url));
  r.set("vendor", json::Value::string(o.vendor));
  json::Value sm = json::Value::object();
  if (smart) {
    sm.set("token_endpoint", json::Value::string(smart->token_endpoint));
    sm.set("grant_types", strList(smart->grant_types));
    sm.set("auth_methods", strList(smart->auth_methods));
    sm.set("signing_algs", strList(smart->signing_algs));
    sm.set("capabilities", strList(smart->capabilities));
    sm.set("scopes_supported", json::Value::integer(static_cast<int64_t>(smart->scopes_supported)));
    sm.set("system_scopes", json::Value::boolean(smart->system_scopes));
  } else {
    sm.set("error", json::Value::string(smart_error));
  }
  r.set("smart", std::move(sm));
  json::Value au = json::Value::object();
  au.set("type", json::Value::string(auth_type));
  au.set("method", json::Value::string(auth_describe));
  au.set("token", json::Value::string(token));
  if (!token_error.empty()) {
    au.set("error", json::Value::string(token_error));
  }
  au.set("granted_scopes", strList(words(granted_scope)));
  r.set("auth", std::move(au));
  if (!caps) {
    r.set("error", json::Value::string(caps_error));
    return r;
  }
  r.set("fhir_version", json::Value::string(caps->fhir_version));
  r.set("software", json::Value::string(caps->software));
  r.set("formats", strList(caps->formats));
  r.set("security", strList(caps->security));
  json::Value bulk = json::Value::object();
  bulk.set("system", json::Value::boolean(caps->export_system));
  bulk.set("group", json::Value::boolean(caps->export_group));
  bulk.set("patient", json::Value::boolean(caps->export_patient));
  r.set("bulk_export", std::move(bulk));
  r.set("history_system", json::Value::boolean(caps->history_system));
  r.set("paging", json::Value::string(paging));
  json::Value list = json::Value::array();
  for (const auto& c : caps->resources) {
    json::Value e = json::Value::object();
    e.set("type", json::Value::string(c.type));
    json::Value inter = json::Value::array();
    for (const auto& [on, name] : {std::pair{c.read, "read"}, std::pair{c.search, "search-type"},
                                   std::pair{c.history_type, "history-type"},
                                   std::pair{c.history_instance, "history-instance"}}) {
      if (on) {
        inter.push(json::Value::string(name));
      }
    }
    e.set("interactions", std::move(inter));
    e.set("last_updated", json::Value::boolean(c.last_updated));
    e.set("patient_param", json::Value::boolean(c.patient_param));
    e.set("export", json::Value::boolean(c.export_op));
    e.set("count", json::Value::null());
    for (const auto& [type, probe] : types) {
      if (type == c.type) {
        if (probe.count) {
          e.set("count", json::Value::integer(*probe.count));
        } else {
          e.set("count_note", json::Value::string(probe.note));
        }
      }
    }
    list.push(std::move(e));
  }
  r.set("resources", std::move(list));
  const std::string sync = suggestedSync(o);
  const Estimate est = estimate(*this, o, suggestedTypes(*this, sync));
  json::Value es = json::Value::object();
  es.set("sync", json::Value::string(sync));
  es.set("page_size", json::Value::integer(o.page_size));
  es.set("search_requests", json::Value::integer(static_cast<int64_t>(est.requests)));
  es.set("counts_complete", json::Value::boolean(est.complete));
  es.set("rate_limit", est.per_s > 0 ? json::Value::string(est.rate_text) : json::Value::null());
  es.set("at_rate_limit_s", json::Value::number(est.at_rate_s));
  es.set("at_observed_latency_s", json::Value::number(est.at_latency_s));
  es.set("seconds", json::Value::number(std::max(est.at_rate_s, est.at_latency_s)));
  r.set("initial_load", std::move(es));
  r.set("requests", json::Value::integer(static_cast<int64_t>(requests)));
  r.set("throttled", json::Value::integer(static_cast<int64_t>(throttled)));
  return r;
}

std::string FhirSurvey::summary(const FhirSurveyOptions& o) const {
  std::ostringstream out;
  out << "FHIR server " << o.base_url << " (vendor " << o.vendor << ")\n";
  if (smart) {
    out << "  SMART: token endpoint " << smart->token_endpoint << "; auth methods "
        << joined(smart->auth_methods) << "; algs " << joined(smart->signing_algs) << "; "
        << smart->scopes_supported << " scopes listed"
        << (smart->system_scopes ? " (system scopes: backend services)" : "") << "\n";
  } else {
    out << "  SMART: no configuration (" << smart_error << ")\n";
  }
  out << "  credentials: " << (auth_describe.empty() ? auth_type : auth_describe) << ": token "
      << token << (token_error.empty() ? "" : " - " + token_error) << "\n";
  if (!granted_scope.empty()) {
    out << "  granted scopes: " << granted_scope << "\n";
  }
  if (!caps) {
    out << "  CapabilityStatement: " << caps_error << "\n";
    return out.str();
  }
  out << "  FHIR " << caps->fhir_version << ", " << caps->software << ", " << caps->resources.size()
      << " resource types; security " << joined(caps->security) << "\n  Bulk $export: system "
      << (caps->export_system ? "yes" : "no") << ", group " << (caps->export_group ? "yes" : "no")
      << ", patient " << (caps->export_patient ? "yes" : "no") << "; system history "
      << (caps->history_system ? "yes" : "no") << "; paging "
      << (paging.empty() ? "unknown" : paging) << "\n";
  for (const auto& c : caps->resources) {
    out << "  " << c.type << ":" << (c.read ? " read" : "") << (c.search ? " search" : "")
        << (c.history_type ? " history" : "") << (c.last_updated ? " _lastUpdated" : "")
        << (c.export_op ? " $export" : "");
    for (const auto& [type, probe] : types) {
      if (type == c.type) {
        out << "  count "
            << (probe.count ? std::to_string(*probe.count) : "? (" + probe.note + ")");
      }
    }
    out << "\n";
  }
  const std::string sync = suggestedSync(o);
  const Estimate est = estimate(*this, o, suggestedTypes(*this, sync));
  out << "  initial load by search (" << o.page_size << " per page): " << est.requests
      << " requests" << (est.complete ? "" : " at least (some counts unknown)");
  if (est.per_s > 0) {
    out << ", " << seconds(est.at_rate_s) << " at the vendor's limit (" << est.rate_text << ")";
  } else {
    out << ", no documented rate limit";
  }
  out << ", " << seconds(est.at_latency_s) << " at the observed latency";
  if (sync == "bulk") {
    out << " (sync bulk: a few requests; the server's export job sets the pace)";
  }
  out << "\n  " << requests << " requests made, " << throttled << " throttled\n";
  return out.str();
}

json::Value FhirSurvey::suggestion(const FhirSurveyOptions& o) const {
  const std::string sync = suggestedSync(o);
  json::Value a = json::Value::object();
  a.set("name", json::Value::string(o.name));
  a.set("type", json::Value::string("fhir-poll"));
  a.set("vendor", json::Value::string(o.vendor));
  a.set("base_url", json::Value::string(api::trimSlash(o.base_url)));
  if (!o.ca_file.empty()) {
    a.set("ca_file",
          json::Value::string(os::pathToUtf8(os::resolveUtf8Path(o.base_dir, o.ca_file))));
  }
  if (o.auth.isObject()) {
    a.set("auth", suggestedAuth(o.auth, o.base_dir));
  }
  a.set("sync", json::Value::string(sync));
  if (sync == "bulk" || sync == "patient-search") {
    const std::string level = caps ? exportLevel(*this, o) : "system";
    if (sync == "bulk") {
      a.set("export", json::Value::string(level));
    }
    if (!o.group_id.empty()) {
      a.set("group_id", json::Value::string(o.group_id));
    }
  }
  json::Value list = json::Value::array();
  for (const auto& t : suggestedTypes(*this, sync)) {
    list.push(json::Value::string(t));
  }
  if (list.items().empty()) {
    list.push(json::Value::string("Patient"));  // the schema needs one; Patient is universal
  }
  a.set("resources", std::move(list));
  a.set("page_size", json::Value::integer(o.page_size));
  a.set("interval_s", json::Value::integer(sync == "bulk" ? 900 : 300));
  return a;
}

}  // namespace psa::adapters::discover
