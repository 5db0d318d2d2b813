// fhir-poll / rest-poll config schemas: every bad field is reported with its path and a clear
// message, auth requirements per type, secrets masked for `config show`.
#include <gtest/gtest.h>

#include "psa/adapters/source.h"
#include "psa/store/schema.h"

namespace adapters = psa::adapters;
namespace json = psa::json;
namespace schema = psa::schema;

namespace {

std::vector<std::string> problems(const std::string& type, const std::string& text) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  const auto* f = registry.find(type);
  EXPECT_NE(f, nullptr) << type;
  std::vector<schema::Issue> issues;
  schema::validate(*json::parse(text), *f->schema, "adapters[0]", issues);
  std::vector<std::string> out;
  for (const auto& i : issues) {
    out.push_back(i.path + ": " + i.message);
  }
  return out;
}

TEST(ApiConfig, ValidFhirPollAndRestPollConfigsPass) {
  EXPECT_EQ(problems("fhir-poll", R"({"name":"epic-fhir","type":"fhir-poll","vendor":"epic",
      "base_url":"https://epic.local/api/FHIR/R4","ca_file":"site-ca.pem",
      "auth":{"type":"smart-backend","client_id":"c","private_key_file":"epic.key","alg":"RS384"},
      "resources":["Patient","Appointment"],"interval_s":60,"group_id":"g1"})"),
            std::vector<std::string>{});
  EXPECT_EQ(problems("rest-poll", R"({"name":"drchrono","type":"rest-poll","vendor":"drchrono",
      "base_url":"https://app.drchrono.com/api",
      "auth":{"type":"oauth2-refresh","client_id":"c","client_secret":"s","refresh_token_file":"drc.token",
              "token_url":"https://drchrono.com/o/token/"}})"),
            std::vector<std::string>{});
}

TEST(ApiConfig, EveryProblemIsNamed) {
  auto p = problems("fhir-poll", R"({"name":"x","type":"fhir-poll","vendor":"epic",
      "base_url":"ftp://nope","resources":[],"sync":"sometimes","page_size":0,
      "auth":{"type":"smart-backend","alg":"HS256"},"export":"group",
      "rate_limits":[{"requests":0}],"kind_map":{"Patient":"people"},"colour":1})");
  const std::vector<std::string> want = {
      "adapters[0].base_url: expected an http(s):// URL",
      "adapters[0].resources: ",  // length check (message from the schema module)
      "adapters[0].sync: ",
      "adapters[0].page_size: ",
  };
  auto has = [&](const std::string& prefix) {
    for (const auto& s : p) {
      if (s.rfind(prefix, 0) == 0) {
        return true;
      }
    }
    return false;
  };
  for (const auto& w : want) {
    EXPECT_TRUE(has(w)) << w;
  }
  EXPECT_TRUE(has("adapters[0].auth.alg: ")) << p.size();
  EXPECT_TRUE(has("adapters[0].auth.client_id: required for auth type smart-backend"));
  EXPECT_TRUE(has("adapters[0].auth.private_key_file: required for auth type smart-backend"));
  EXPECT_TRUE(has("adapters[0].group_id: required when export is \"group\""));
  EXPECT_TRUE(has("adapters[0].rate_limits[0].requests: "));
  EXPECT_TRUE(has("adapters[0].rate_limits[0].per_s: "));
  EXPECT_TRUE(has("adapters[0].kind_map.Patient: expected one of patient, appointment, clinical, "
                  "billing, provider, inventory, other"));
  EXPECT_TRUE(has("adapters[0].colour: "));
}

TEST(ApiConfig, AuthRequirementsPerType) {
  auto p = problems("rest-poll", R"({"name":"k","type":"rest-poll","vendor":"kareo",
      "base_url":"https://webservice.kareo.com/services/soap/2.1/KareoServices.svc",
      "auth":{"type":"kareo","username":"u"},"utc_offset":"EST"})");
  EXPECT_EQ(p, (std::vector<std::string>{
                   "adapters[0].auth.customer_key: required for auth type kareo (or customer_key_file)",
                   "adapters[0].auth.password: required for auth type kareo (or password_file)",
                   "adapters[0].utc_offset: expected +HH:MM or -HH:MM (the practice's local time offset)"}));
  auto q = problems("rest-poll", R"({"name":"n","type":"rest-poll","vendor":"nextgen","profile":"nope",
      "base_url":"https://x/api","auth":{"type":"nextgen","client_id":"c","client_secret":"s","token_url":"https://x/t"}})");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].rfind("adapters[0].profile: ", 0), 0u) << q[0];
  EXPECT_EQ(q[1], "adapters[0].auth.site_id: required for auth type nextgen");
}

// Claims the agent could not make true were removed: an API key (no supported PMS uses one)
// and FHIR for vendors that document no FHIR API. Both are refused with a clear message.
TEST(ApiConfig, RemovedOptionsAreRefusedClearly) {
  auto p = problems("rest-poll", R"({"name":"k","type":"rest-poll","vendor":"nextgen",
      "base_url":"https://x/api","auth":{"type":"api-key","api_key":"k"}})");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0],
            "adapters[0].auth.type: \"api-key\" is not one of: none, "
            "oauth2-client-credentials, smart-backend, oauth2-refresh, nextgen, unity, kareo");
  EXPECT_EQ(p[1].rfind("adapters[0].auth.api_key: ", 0), 0u) << p[1];  // unknown key
  for (const std::string vendor : {"drchrono", "allscripts"}) {
    auto q = problems("fhir-poll", R"({"name":"f","type":"fhir-poll","vendor":")" + vendor +
                                       R"(","base_url":"https://x/fhir","resources":["Patient"]})");
    EXPECT_EQ(
        q, std::vector<std::string>{"adapters[0].vendor: " + vendor +
                                    " offers no FHIR API the agent supports; use type rest-poll"});
  }
  EXPECT_EQ(problems("fhir-poll", R"({"name":"f","type":"fhir-poll","vendor":"epic",
      "base_url":"https://x/fhir","resources":["Patient","Encounter"],"sync":"patient-search",
      "group_id":"g","reconcile_s":3600})"),
            std::vector<std::string>{});
}

TEST(ApiConfig, SecretsAreMasked) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  auto cfg = *json::parse(R"({"name":"d","type":"rest-poll","vendor":"drchrono","base_url":"https://x/api",
      "auth":{"type":"oauth2-refresh","client_id":"visible-id","client_secret":"TOPSECRET1",
              "refresh_token":"TOPSECRET2","token_url":"https://x/o/token/"}})");
  const std::string shown = json::serialize(schema::mask(cfg, *registry.find("rest-poll")->schema));
  EXPECT_EQ(shown.find("TOPSECRET"), std::string::npos) << shown;
  EXPECT_NE(shown.find("visible-id"), std::string::npos) << shown;
  auto k = *json::parse(R"({"name":"k","type":"rest-poll","vendor":"kareo","base_url":"https://x/s",
      "auth":{"type":"kareo","customer_key":"TOPSECRET3","username":"u","password":"TOPSECRET4"}})");
  const std::string shown2 = json::serialize(schema::mask(k, *registry.find("rest-poll")->schema));
  EXPECT_EQ(shown2.find("TOPSECRET"), std::string::npos) << shown2;
}

TEST(ApiConfig, BothTypesAreRegistered) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  EXPECT_NE(registry.find("fhir-poll"), nullptr);
  EXPECT_NE(registry.find("rest-poll"), nullptr);
}

}  // namespace
