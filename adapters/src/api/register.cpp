// Registers the API adapter types (fhir-poll, rest-poll) with their config schemas.
#include <set>

#include "fhir_poll.h"
#include "psa/adapters/api/vendor.h"
#include "psa/adapters/source.h"

namespace psa::adapters::api {
std::vector<std::string> restProfileNames();
}  // namespace psa::adapters::api

namespace psa::adapters {

namespace {

using schema::Field;
using schema::ObjectSchema;
using schema::Type;

std::optional<std::string> httpUrl(const json::Value& v) {
  const std::string& s = v.asString();
  if (s.rfind("https://", 0) != 0 && s.rfind("http://", 0) != 0) {
    return "expected an http(s):// URL";
  }
  if (s.find_first_of(" \t\r\n") != std::string::npos) {
    return "URL contains whitespace";
  }
  return std::nullopt;
}

schema::ObjectSchemaPtr limitSchema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = {
      Field::integer("requests").req().range(1, 1e9).describe("requests allowed per window"),
      Field::number("per_s").req().range(0.001, 86400.0 * 31).describe("window length in seconds"),
      Field::boolean("fixed").def(json::Value::boolean(false))
          .describe("windows aligned to the clock (top of the hour, UTC day) and persisted"),
      Field::str("name").describe("names the persisted budget file"),
  };
  return s;
}

schema::ObjectSchemaPtr authSchema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = {
      // No "api-key": none of the PMS interfaces we support authenticates with a bare key.
      Field::str("type").req().oneOf({"none", "oauth2-client-credentials", "smart-backend",
                                      "oauth2-refresh", "nextgen", "unity", "kareo"}),
      Field::str("token_url")
          .verify(httpUrl)
          .describe("token endpoint (FHIR: discovered if absent)"),
      Field::str("client_id"),
      Field::str("client_secret").hide(),
      Field::str("client_secret_file"),
      Field::str("client_auth").oneOf({"basic", "post"}).describe("client secret method"),
      Field::str("scope"),
      Field::str("private_key_file").describe("PEM private key for the SMART client assertion"),
      Field::str("alg").oneOf({"RS384", "ES384", "RS256", "ES256"}),
      Field::str("kid"),
      Field::str("refresh_token")
          .hide()
          .describe("initial refresh token (rotated tokens are kept sealed in the store)"),
      Field::str("refresh_token_file"),
      Field::str("site_id"),
      Field::str("enterprise_id"),
      Field::str("practice_id"),
      Field::str("session_id").hide(),
      Field::str("session_url").verify(httpUrl),
      Field::str("username"),
      Field::str("password").hide(),
      Field::str("password_file"),
      Field::str("appname"),
      Field::str("customer_key").hide(),
      Field::str("customer_key_file"),
      Field::str("app_user").describe("Unity AppUserID (the EHR user the agent acts as)"),
  };
  s->check = [](const json::Value& v, const std::string& path, std::vector<schema::Issue>& issues) {
    const std::string type = v.getString("type");
    auto require = [&](std::initializer_list<const char*> names) {
      for (const char* n : names) {
        const std::string name(n);
        const bool has = !v.getString(name).empty() || !v.getString(name + "_file").empty();
        if (!has) {
          issues.push_back({schema::childPath(path, name), v.pos().line, v.pos().column,
                            "required for auth type " + type +
                                (name == "client_secret" || name == "password" ||
                                         name == "refresh_token" || name == "customer_key"
                                     ? " (or " + name + "_file)"
                                     : "")});
        }
      }
    };
    if (type == "oauth2-client-credentials") require({"client_id", "client_secret", "token_url"});
    if (type == "smart-backend") require({"client_id", "private_key_file"});
    if (type == "oauth2-refresh") require({"client_id", "client_secret", "token_url", "refresh_token"});
    if (type == "nextgen") require({"client_id", "client_secret", "token_url", "site_id"});
    if (type == "unity") require({"username", "password", "appname", "token_url"});
    if (type == "kareo") require({"customer_key", "username", "password"});
  };
  return s;
}

std::vector<Field> commonApiFields(bool interval_default) {
  auto free_object = std::make_shared<ObjectSchema>();
  free_object->allow_unknown = true;
  auto kind_map = std::make_shared<ObjectSchema>();
  kind_map->allow_unknown = true;
  kind_map->check = [](const json::Value& v, const std::string& path, std::vector<schema::Issue>& issues) {
    for (const auto& [k, val] : v.members()) {
      if (!val.isString() || !store::parseKind(val.asString())) {
        issues.push_back({schema::childPath(path, k), val.pos().line, val.pos().column,
                          "expected one of patient, appointment, clinical, billing, provider, "
                          "inventory, other"});
      }
    }
  };
  return {
      Field::str("ca_file").describe("CA bundle that signs the server (default: system store)"),
      Field::boolean("tls_verify").def(json::Value::boolean(true)),
      Field::obj("auth", authSchema()),
      interval_default ? Field::number("interval_s").def(json::Value::integer(60)).range(0.05, 86400)
                       : Field::number("interval_s").range(0.05, 86400)
                             .describe("default: the profile's (DrChrono 300, Kareo 600, ...)"),
      Field::integer("timeout_s").def(json::Value::integer(30)).range(1, 600),
      Field::integer("max_attempts").def(json::Value::integer(5)).range(1, 20),
      Field::arrayOf("rate_limits", limitSchema()).describe("client-side limits (default: the vendor's documented ones)"),
      Field::arrayOf("token_rate_limits", limitSchema()),
      Field::obj("kind_map", kind_map).describe("resource/collection -> data kind overrides"),
      Field::integer("overlap_s").def(json::Value::integer(2)).range(0, 86400)
          .describe("re-read this much before the watermark (clock skew, late commits)"),
      Field::obj("search_params", free_object).describe("extra query parameters on every search"),
      Field::boolean("require_reachable").def(json::Value::boolean(false))
          .describe("start (and so a remote config apply) fails unless the endpoint answers and "
                    "authentication succeeds; off: the adapter starts and keeps retrying"),
  };
}

using CheckFn = std::vector<CheckResult> (*)(const json::Value&, const std::filesystem::path&);

/// Runs the `pms-agent check` probe before the real start() when the config says the endpoint
/// must be reachable, so a staged apply rolls back instead of switching to an adapter that
/// cannot work. Everything else is the wrapped source's.
class ReachabilityGate : public Source {
 public:
  ReachabilityGate(SourcePtr inner, json::Value config, std::filesystem::path state_dir, CheckFn check)
      : inner_(std::move(inner)), config_(std::move(config)), state_dir_(std::move(state_dir)),
        check_(check) {}

  const std::string& name() const override { return inner_->name(); }
  const std::string& type() const override { return inner_->type(); }
  Status start() override {
    for (const auto& r : check_(config_, state_dir_)) {
      if (r.level == CheckResult::Level::fail) {
        return Error(Errc::unavailable, r.name + ": " + r.text + " (require_reachable)");
      }
    }
    return inner_->start();
  }
  void stop(std::function<void()> done) override { inner_->stop(std::move(done)); }
  SourceStatus status() const override { return inner_->status(); }

 private:
  SourcePtr inner_;
  json::Value config_;
  std::filesystem::path state_dir_;
  CheckFn check_;
};

Result<SourcePtr> gatedIfRequired(Result<SourcePtr> made, const json::Value& config,
                                  const SourceContext& ctx, CheckFn check) {
  if (!made || !config.getBool("require_reachable")) {
    return made;
  }
  return SourcePtr(std::make_shared<ReachabilityGate>(std::move(*made), config, ctx.state_dir, check));
}

schema::ObjectSchemaPtr fhirPollSchema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = commonAdapterFields();
  s->fields.push_back(Field::str("base_url").req().verify(httpUrl).describe("FHIR R4 base URL"));
  s->fields.push_back(Field::array("resources", Type::string).req().range(1, 200)
                          .describe("resource types to sync"));
  s->fields.push_back(Field::str("sync")
                          .oneOf({"bulk", "search", "history", "patient-search"})
                          .describe("default: the vendor's (bulk for Epic/Cerner/athena/eCW); "
                                    "patient-search fans out per patient (group_id: its members)"));
  s->fields.push_back(Field::str("group_id").describe("Bulk Group id (Group/{id}/$export)"));
  s->fields.push_back(Field::str("export").oneOf({"group", "patient", "system"}));
  s->fields.push_back(Field::integer("page_size").def(json::Value::integer(200)).range(1, 5000));
  s->fields.push_back(Field::integer("batch_records").def(json::Value::integer(1000)).range(1, 100000)
                          .describe("Bulk NDJSON lines per store commit"));
  s->fields.push_back(Field::integer("bulk_timeout_s").def(json::Value::integer(3600)).range(10, 86400));
  s->fields.push_back(
      Field::integer("reconcile_s")
          .def(json::Value::integer(86400))
          .range(1, 31 * 86400)
          .describe("search mode: how often complete id listings find deleted resources"));
  for (auto& f : commonApiFields(true)) {
    s->fields.push_back(std::move(f));
  }
  s->check = [](const json::Value& v, const std::string& path, std::vector<schema::Issue>& issues) {
    // These vendors document no FHIR API (pms-interfaces.md §3, §8): their data comes through
    // rest-poll (Unity, DrChrono REST) or files.
    if (const std::string vendor = v.getString("vendor");
        vendor == "allscripts" || vendor == "drchrono") {
      issues.push_back({schema::childPath(path, "vendor"), v.pos().line, v.pos().column,
                        vendor + " offers no FHIR API the agent supports; use type rest-poll"});
    }
    if (v.getString("export") == "group" && v.getString("group_id").empty()) {
      issues.push_back({schema::childPath(path, "group_id"), v.pos().line, v.pos().column,
                        "required when export is \"group\""});
    }
  };
  return s;
}

schema::ObjectSchemaPtr restPollSchema() {
  auto s = std::make_shared<ObjectSchema>();
  s->fields = commonAdapterFields();
  s->fields.push_back(Field::str("base_url").req().verify(httpUrl)
                          .describe("vendor API base (DrChrono .../api, athena .../v1/{practice}, Kareo SOAP URL, ...)"));
  s->fields.push_back(Field::str("profile").oneOf(api::restProfileNames())
                          .describe("vendor profile (default: the vendor)"));
  s->fields.push_back(Field::str("profile_file").describe("a profile JSON file instead of a built-in one"));
  s->fields.push_back(Field::array("collections", Type::string).describe("subset of the profile's collections"));
  s->fields.push_back(Field::integer("page_size").range(1, 5000).describe("default: the profile's"));
  s->fields.push_back(Field::integer("reconcile_s").def(json::Value::integer(86400)).range(1, 31 * 86400)
                          .describe("profiles whose vendor never signals deletions (NextGen, Kareo): "
                                    "how often complete re-lists find records that vanished"));
  s->fields.push_back(Field::str("utc_offset").verify([](const json::Value& v) -> std::optional<std::string> {
    if (!api::parseUtcOffset(v.asString())) {
      return "expected +HH:MM or -HH:MM (the practice's local time offset)";
    }
    return std::nullopt;
  }).describe("the PMS's local time zone offset (its timestamps have none)"));
  for (auto& f : commonApiFields(false)) {
    s->fields.push_back(std::move(f));
  }
  return s;
}

}  // namespace

void registerApiSources(SourceRegistry& registry) {
  SourceFactory fhir;
  fhir.type = "fhir-poll";
  fhir.description = "FHIR R4 poller: Bulk $export, _lastUpdated search or _history, exactly once";
  fhir.schema = fhirPollSchema();
  fhir.create = [](const json::Value& config, SourceContext& ctx) {
    return gatedIfRequired(api::makeFhirPollSource(api::withFhirVendorDefaults(config), ctx), config,
                           ctx, &api::checkFhirPoll);
  };
  fhir.check = [](const json::Value& config, const std::filesystem::path& state_dir) {
    return api::checkFhirPoll(config, state_dir);
  };
  registry.add(std::move(fhir));

  SourceFactory rest;
  rest.type = "rest-poll";
  rest.description = "vendor API poller (DrChrono, athenahealth, NextGen, Kareo SOAP, Allscripts Unity) by profile";
  rest.schema = restPollSchema();
  rest.create = [](const json::Value& config, SourceContext& ctx) {
    return gatedIfRequired(api::makeRestPollSource(config, ctx), config, ctx, &api::checkRestPoll);
  };
  rest.check = [](const json::Value& config, const std::filesystem::path& state_dir) {
    return api::checkRestPoll(config, state_dir);
  };
  registry.add(std::move(rest));
}

}  // namespace psa::adapters
