// The probing half of `discover fhir`: every request goes through the fhir-poll adapter's
// ApiClient (rate limits, Retry-After, back-off, one re-authentication), built by the same
// buildClients() as the adapter, so discover behaves towards the vendor exactly as the agent.
#include "psa/adapters/discover/fhir_survey.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "api/api_common.h"
#include "api/fhir_poll.h"
#include "api/url.h"
#include "psa/adapters/api/fhir.h"
#include "psa/store/clock.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::discover {
namespace {

namespace api = psa::adapters::api;

// Statuses a server uses to refuse a query it does not support: reported, not retried (a 401
// is not among them: the client re-authenticates once first).
const std::vector<int> kRefusals = {400, 403, 404, 405, 406, 410, 422, 501};

// The limits discover honours: the vendor's documented ones, all rolling (a fixed window's
// budget file belongs to the running agent; a rolling window of the same size is as strict).
std::vector<api::LimitRule> vendorLimits(const json::Value& defaults, const char* key) {
  auto rules = api::parseLimitRules(defaults.find(key));
  for (auto& r : rules) {
    r.fixed = false;
  }
  return rules;
}

class Prober {
 public:
  Prober(api::ClientSet clients, std::string base)
      : c_(std::move(clients)), base_(std::move(base)) {}

  // GET base + path; a refusal comes back as its response.
  Result<api::HttpResponse> get(const std::string& what, const std::string& url, bool auth,
                                const char* accept = "application/fhir+json") {
    api::ApiClient::Call call;
    call.what = what;
    call.authenticate = auth;
    call.accept = kRefusals;
    call.build = [url, accept]() -> Result<api::HttpRequest> {
      api::HttpRequest r;
      r.url = url;
      r.headers = {{"Accept", accept}};
      return r;
    };
    const auto t0 = std::chrono::steady_clock::now();
    const auto before = c_.api->counters();
    auto r = c_.api->call(call);
    const auto after = c_.api->counters();
    // Only calls answered at the first attempt time the server (a Retry-After wait is not
    // latency).
    if (after.throttled == before.throttled && after.retries == before.retries &&
        after.reauth == before.reauth) {
      latency_ms_ +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      ++timed_;
    }
    return r;
  }
  std::string url(const std::string& path) const { return base_ + path; }
  api::ClientSet& clients() { return c_; }
  double meanLatencyMs() const {
    return timed_ == 0 ? 0 : latency_ms_ / static_cast<double>(timed_);
  }

 private:
  api::ClientSet c_;
  std::string base_;
  double latency_ms_ = 0;
  uint64_t timed_ = 0;
};

// "HTTP 400" plus the OperationOutcome code when there is one (never its diagnostics).
std::string refusal(const api::HttpResponse& r) {
  std::string out = "HTTP " + std::to_string(r.status);
  auto doc = json::parse(r.body);
  if (doc && doc->isObject() && doc->getString("resourceType") == "OperationOutcome") {
    if (const json::Value* issues = doc->find("issue"); issues != nullptr && issues->isArray() &&
                                                        !issues->items().empty() &&
                                                        issues->items()[0].isObject()) {
      const std::string code = issues->items()[0].getString("code");
      if (!code.empty() && code.size() < 40 && std::all_of(code.begin(), code.end(), [](char c) {
            return c == '-' || std::isalnum(static_cast<unsigned char>(c));
          })) {
        out += " " + code;
      }
    }
  }
  return out;
}

void probeAuth(FhirSurvey& s, Prober& p) {
  if (s.auth_type == "none") {
    s.token = "not tried";
    return;
  }
  if (s.auth_type == "oauth2-refresh") {
    s.token = "not exercised";  // a refresh token rotates on use: only the agent spends it
    return;
  }
  api::HttpRequest probe;
  if (auto st = p.clients().auth->apply(probe); !st) {
    s.token = "refused";
    s.token_error = st.error().message;
    return;
  }
  s.token = "issued";
  s.granted_scope = p.clients().auth->grantedScope();
}

void probeTypes(FhirSurvey& s, Prober& p, const FhirSurveyOptions& o) {
  const bool token_ok = s.token == "issued" || s.token == "not tried";
  for (const auto& r : s.caps->resources) {
    if (!r.search) {
      continue;
    }
    FhirTypeProbe probe;
    if (!o.counts) {
      probe.note = "not asked";
    } else if (!token_ok) {
      probe.note = "no token";
    } else {
      auto resp = p.get("count " + r.type, p.url("/" + r.type + "?_summary=count"), true);
      if (!resp) {
        probe.note = resp.error().message;
      } else if (resp->status >= 300) {
        probe.note = refusal(*resp);
      } else if (auto page = api::parseBundlePage(resp->body); !page) {
        probe.note = "answer is not a Bundle";
      } else if (!page->total) {
        probe.note = "no Bundle.total";
      } else {
        probe.count = page->total;
      }
    }
    s.types.emplace_back(r.type, std::move(probe));
  }
  if (!token_ok || !o.counts) {
    return;
  }
  // The paging style from one search that has a second page (a count above 2, or unknown).
  for (const auto& [type, probe] : s.types) {
    if (probe.count && *probe.count <= 2) {
      continue;
    }
    if (!probe.count && probe.note.rfind("HTTP", 0) == 0) {
      continue;  // the server refuses this population search
    }
    auto resp = p.get("page " + type, p.url("/" + type + "?_count=2"), true);
    if (!resp || resp->status >= 300) {
      continue;
    }
    auto page = api::parseBundlePage(resp->body);
    if (!page) {
      continue;
    }
    s.paging = page->next_url.empty() ? "single page" : pagingStyle(page->next_url);
    if (!page->next_url.empty()) {
      break;
    }
  }
}

}  // namespace

json::Value fhirVendorDefaults(const std::string& vendor) {
  json::Value v = json::Value::object();
  v.set("vendor", json::Value::string(vendor));
  return api::withFhirVendorDefaults(v);
}

json::Value suggestedAuth(const json::Value& auth, const std::filesystem::path& base_dir) {
  if (!auth.isObject()) {
    return json::Value::null();
  }
  json::Value out = json::Value::object();
  for (const auto& [k, v] : auth.members()) {
    if (k == "client_secret" || k == "password" || k == "refresh_token" || k == "customer_key" ||
        k == "session_id") {
      // Never copied: the suggestion goes to a file and a screen. The technician points the
      // _file member at a file holding the secret.
      if (auth.find(k + "_file") == nullptr) {
        out.set(k + "_file", json::Value::string("REPLACE-with-the-file-holding-" + k));
      }
      continue;
    }
    if (k.size() > 5 && k.compare(k.size() - 5, 5, "_file") == 0 && v.isString()) {
      out.set(k, json::Value::string(os::pathToUtf8(os::resolveUtf8Path(base_dir, v.asString()))));
      continue;
    }
    out.set(k, v);
  }
  return out;
}

Result<FhirSurvey> surveyFhir(const FhirSurveyOptions& o) {
  const std::string base = api::trimSlash(o.base_url);
  json::Value cfg = json::Value::object();
  cfg.set("name", json::Value::string(o.name));
  cfg.set("type", json::Value::string("fhir-poll"));
  cfg.set("vendor", json::Value::string(o.vendor));
  cfg.set("base_url", json::Value::string(base));
  if (!o.ca_file.empty()) {
    cfg.set("ca_file", json::Value::string(o.ca_file));
  }
  if (o.auth.isObject()) {
    cfg.set("auth", o.auth);
  }
  const json::Value defaults = fhirVendorDefaults(o.vendor);
  api::ClientParams params;
  params.adapter = o.name;
  params.vendor = o.vendor;
  params.api_base = base;
  params.api_limits = vendorLimits(defaults, "rate_limits");
  params.token_limits = vendorLimits(defaults, "token_rate_limits");
  params.state_dir = o.base_dir;
  params.clock = Clock::system();
  params.stop = std::make_shared<api::StopSignal>();

  FhirSurvey s;
  s.auth_type = o.auth.isObject() ? o.auth.getString("type", "none") : "none";
  // Discovery documents without credentials (they are public), so they are read even when
  // the auth object is unusable: they name the token endpoint an auth object may leave out.
  json::Value bare_cfg = cfg;
  bare_cfg.set("auth", *json::parse(R"({"type":"none"})"));
  auto bare_set = api::buildClients(bare_cfg, params);
  if (!bare_set) {
    return std::move(bare_set).error();
  }
  Prober bare(std::move(bare_set).value(), base);
  auto r = bare.get("smart-configuration", bare.url("/.well-known/smart-configuration"), false,
                    "application/json");
  if (!r) {
    s.smart_error = r.error().message;
  } else if (r->status >= 300) {
    s.smart_error = refusal(*r);
  } else if (auto smart = parseSmartConfiguration(r->body); !smart) {
    s.smart_error = smart.error().message;
  } else {
    s.smart = std::move(smart).value();
    params.token_url_fallback = s.smart->token_endpoint;
  }
  auto meta = bare.get("metadata", bare.url("/metadata"), false);
  if (!meta) {
    s.caps_error = meta.error().message;
  } else if (meta->status >= 300) {
    s.caps_error = refusal(*meta) + " for /metadata - is base_url the FHIR base?";
  } else if (auto caps = parseCapabilityStatement(meta->body); !caps) {
    s.caps_error = caps.error().message + " - is base_url the FHIR base?";
  } else {
    s.caps = std::move(caps).value();
    if (!s.smart && !s.caps->token_url.empty()) {
      params.token_url_fallback = s.caps->token_url;
    }
  }
  auto add = [&s](const api::ClientSet& set) {
    for (const auto* client : {set.api.get(), set.token.get()}) {
      s.requests += client->counters().requests;
      s.throttled += client->counters().throttled;
    }
  };
  add(bare.clients());
  s.mean_latency_ms = bare.meanLatencyMs();
  auto set = api::buildClients(cfg, params);
  if (!set) {
    s.token = "unusable";
    s.token_error = set.error().message;
    return s;
  }
  Prober p(std::move(set).value(), base);
  s.auth_describe = p.clients().auth->describe();
  probeAuth(s, p);
  if (s.caps) {
    probeTypes(s, p, o);
  }
  add(p.clients());
  if (p.meanLatencyMs() > 0) {
    s.mean_latency_ms = p.meanLatencyMs();
  }
  return s;
}

}  // namespace psa::adapters::discover
