// fhir-poll's vendor defaults (which `sync` and rate limits each vendor gets unless the config
// says otherwise) and its `pms-agent check` probe: the CapabilityStatement and a token.
#include "api_common.h"
#include "fhir_poll.h"
#include "psa/store/clock.h"
#include "url.h"

namespace psa::adapters::api {
namespace {

// Declarative per-vendor defaults for FHIR (pms-interfaces.md §1-§10, tests/sim/README.md §4-§5):
// the strategy that works against the vendor's documented rules and its documented limits.
constexpr const char* kFhirVendorDefaults = R"({
  "epic":            {"sync": "bulk"},
  "cerner":          {"sync": "bulk"},
  "athenahealth":    {"sync": "bulk", "rate_limits": [{"requests": 100, "per_s": 1}],
                      "token_rate_limits": [{"requests": 50, "per_s": 60}]},
  "eclinicalworks":  {"sync": "bulk", "rate_limits": [{"requests": 250, "per_s": 60}]},
  "nextgen":         {"sync": "bulk"},
  "meditech":        {"sync": "search"},
  "practice-fusion": {"sync": "search"},
  "kareo":           {"sync": "search"},
  "generic":         {"sync": "search"}
})";

}  // namespace

json::Value withFhirVendorDefaults(const json::Value& config) {
  static const json::Value defaults = *json::parse(kFhirVendorDefaults);
  json::Value out = config;
  const json::Value* vendor = defaults.find(config.getString("vendor"));
  if (vendor == nullptr) {
    return out;
  }
  for (const auto& [k, v] : vendor->members()) {
    if (out.find(k) == nullptr) {
      out.set(k, v);
    }
  }
  return out;
}

std::vector<CheckResult> checkFhirPoll(const json::Value& raw,
                                       const std::filesystem::path& state_dir) {
  const json::Value config = withFhirVendorDefaults(raw);
  const std::string label = "adapter " + config.getString("name");
  std::vector<CheckResult> out;
  auto fail = [&](const std::string& what, const std::string& text) {
    out.push_back({CheckResult::Level::fail, label + " " + what, text});
  };
  auto set = buildCheckClients(config, state_dir);
  if (!set) {
    fail("config", set.error().message);
    return out;
  }
  ApiClient::Call meta;
  meta.what = "metadata";
  meta.authenticate = false;
  const std::string url = trimSlash(config.getString("base_url")) + "/metadata";
  meta.build = [url]() -> Result<HttpRequest> {
    HttpRequest r;
    r.url = url;
    r.headers = {{"Accept", "application/fhir+json"}};
    return r;
  };
  auto resp = set->api->call(meta);
  if (!resp) {
    fail("reachable", resp.error().message + " - check base_url, network and ca_file");
    return out;
  }
  auto doc = json::parse(resp->body);
  if (!doc || doc->getString("resourceType") != "CapabilityStatement") {
    fail("fhir", url + " did not return a CapabilityStatement - is base_url the FHIR base?");
  } else {
    size_t types = 0;
    if (const json::Value* rest = doc->find("rest");
        rest && rest->isArray() && !rest->items().empty()) {
      if (const json::Value* res = rest->items()[0].find("resource"); res && res->isArray()) {
        types = res->items().size();
      }
    }
    out.push_back({CheckResult::Level::ok, label + " fhir",
                   "CapabilityStatement FHIR " + doc->getString("fhirVersion", "?") + ", " +
                       std::to_string(types) + " resource types"});
  }
  const json::Value* auth = config.find("auth");
  const std::string type = auth != nullptr ? auth->getString("type", "none") : "none";
  if (type == "oauth2-refresh") {
    out.push_back({CheckResult::Level::warn, label + " auth",
                   "refresh token not exercised (it rotates on use; the running agent uses it)"});
  } else if (type != "none") {
    HttpRequest probe;
    if (auto st = set->auth->apply(probe); !st) {
      fail("auth", st.error().message);
    } else {
      out.push_back({CheckResult::Level::ok, label + " auth",
                     "token issued (" + set->auth->describe() + ")"});
    }
  }
  return out;
}

}  // namespace psa::adapters::api
