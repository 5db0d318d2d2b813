// The rendering half of `discover api`: the JSON report, the human summary and the suggested
// rest-poll adapter. Only structure and counts go in.
#include <sstream>

#include "psa/adapters/discover/api_survey.h"
#include "psa/adapters/discover/fhir_survey.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::discover {

bool ApiSurvey::analysed() const {
  for (const auto& c : collections) {
    if (c.answered) {
      return true;
    }
  }
  return false;
}

json::Value ApiSurvey::report(const ApiSurveyOptions& o) const {
  json::Value r = json::Value::object();
  r.set("base_url", json::Value::string(o.base_url));
  r.set("vendor", json::Value::string(o.vendor));
  r.set("strategy", json::Value::string(strategy));
  r.set("profile_page_size", json::Value::integer(profile_page_size));
  json::Value au = json::Value::object();
  au.set("type", json::Value::string(auth_type));
  au.set("method", json::Value::string(auth_describe));
  au.set("token", json::Value::string(token));
  if (!token_error.empty()) {
    au.set("error", json::Value::string(token_error));
  }
  r.set("auth", std::move(au));
  json::Value list = json::Value::array();
  for (const auto& c : collections) {
    json::Value e = json::Value::object();
    e.set("name", json::Value::string(c.name));
    e.set("kind", json::Value::string(c.kind));
    if (!c.per.empty()) {
      e.set("per", json::Value::string(c.per));
    }
    e.set("answered", json::Value::boolean(c.answered));
    if (c.answered) {
      e.set("page_items", json::Value::integer(static_cast<int64_t>(c.page_items)));
      e.set("next_page", json::Value::boolean(c.next_page));
    } else {
      e.set("note", json::Value::string(c.note));
    }
    e.set("count", c.total ? json::Value::integer(*c.total) : json::Value::null());
    list.push(std::move(e));
  }
  r.set("collections", std::move(list));
  json::Value headers = json::Value::object();
  for (const auto& [k, v] : rate_headers) {
    headers.set(k, json::Value::string(v));
  }
  r.set("rate_limit_headers", std::move(headers));
  json::Value limits = json::Value::array();
  for (const auto& l : documented_limits) {
    limits.push(json::Value::string(l));
  }
  r.set("documented_limits", std::move(limits));
  r.set("requests", json::Value::integer(static_cast<int64_t>(requests)));
  r.set("throttled", json::Value::integer(static_cast<int64_t>(throttled)));
  return r;
}

std::string ApiSurvey::summary(const ApiSurveyOptions& o) const {
  std::ostringstream out;
  out << "Vendor API " << o.base_url << " (profile " << o.vendor << ", strategy " << strategy
      << ", " << profile_page_size << " per page)\n";
  out << "  credentials: " << (auth_describe.empty() ? auth_type : auth_describe) << ": token "
      << token << (token_error.empty() ? "" : " - " + token_error) << "\n";
  for (const auto& c : collections) {
    out << "  " << c.name << " (" << c.kind << (c.per.empty() ? "" : ", per " + c.per) << "): ";
    if (c.answered) {
      out << c.page_items << " on the first page" << (c.next_page ? ", more pages" : "")
          << (c.total ? ", total " + std::to_string(*c.total) : "");
    } else {
      out << c.note;
    }
    out << "\n";
  }
  out << "  rate-limit headers seen:";
  if (rate_headers.empty()) {
    out << " none";
  }
  for (const auto& [k, v] : rate_headers) {
    out << " " << k << "=" << v;
  }
  out << "\n  documented limits:";
  for (const auto& l : documented_limits) {
    out << " " << l << ";";
  }
  out << (documented_limits.empty() ? " none\n" : "\n");
  out << "  " << requests << " requests made, " << throttled << " throttled\n";
  return out.str();
}

json::Value ApiSurvey::suggestion(const ApiSurveyOptions& o) const {
  json::Value a = json::Value::object();
  a.set("name", json::Value::string(o.name));
  a.set("type", json::Value::string("rest-poll"));
  a.set("vendor", json::Value::string(o.vendor));
  a.set("base_url", json::Value::string(o.base_url));
  if (!o.ca_file.empty()) {
    a.set("ca_file",
          json::Value::string(os::pathToUtf8(os::resolveUtf8Path(o.base_dir, o.ca_file))));
  }
  if (o.auth.isObject()) {
    a.set("auth", suggestedAuth(o.auth, o.base_dir));
  }
  // Only the collections that answered, when some did not (a module the practice lacks);
  // otherwise the profile's own list.
  json::Value answered = json::Value::array();
  bool all = true;
  for (const auto& c : collections) {
    if (c.answered) {
      answered.push(json::Value::string(c.name));
    } else if (c.note.rfind("not probed", 0) != 0) {
      all = false;
    }
  }
  if (!all && !answered.items().empty()) {
    a.set("collections", std::move(answered));
  }
  return a;
}

}  // namespace psa::adapters::discover
