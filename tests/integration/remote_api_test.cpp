// A staged apply of an API adapter with `require_reachable`: the real agent probes the FHIR
// server (CapabilityStatement, then a token) before switching, so a pushed config whose
// endpoint is down or whose credentials are wrong is rejected and rolled back instead of
// leaving a practice with an adapter that cannot work. Without the flag the adapter starts
// and keeps retrying (servers restart; a practice's config must not flap).
#include <gtest/gtest.h>

#include "pms_sim_fixture.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

json::Value fhirAdapter(const PmsSim& sim, const TlsMaterial& tls, const ClientKey& key,
                        const std::string& base_url, bool require_reachable) {
  json::Value a = json::Value::object();
  a.set("name", json::Value::string("meditech-fhir"));
  a.set("type", json::Value::string("fhir-poll"));
  a.set("vendor", json::Value::string("meditech"));
  a.set("base_url", json::Value::string(base_url));
  a.set("ca_file", json::Value::string(tls.ca().cert.string()));
  json::Value auth = json::Value::object();
  auth.set("type", json::Value::string("smart-backend"));
  auth.set("client_id", json::Value::string("agent"));
  auth.set("private_key_file", json::Value::string(key.private_pem.string()));
  auth.set("token_url", json::Value::string(sim.tokenUrl()));
  auth.set("alg", json::Value::string("RS384"));
  a.set("auth", std::move(auth));
  a.set("resources", json::Value::array({json::Value::string("Patient")}));
  a.set("sync", json::Value::string("search"));
  a.set("interval_s", json::Value::number(0.5));
  a.set("require_reachable", json::Value::boolean(require_reachable));
  return a;
}

std::vector<std::string> adapterNames(const json::Value& status) {
  std::vector<std::string> out;
  if (const json::Value* list = status.find("adapters")) {
    for (const auto& a : list->items()) {
      out.push_back(a.getString("name"));
    }
  }
  return out;
}

TEST(RemoteApi, RequireReachableRejectsAnUnreachableOrUnauthorisedEndpointAndAppliesAWorkingOne) {
  RemoteFixture f;
  const ClientKey key = makeRsaClientKey(f.env.tmp.path(), "client");
  const ClientKey wrong = makeRsaClientKey(f.env.tmp.path(), "wrong");
  PmsSim sim(f.env.tmp.path() / "pms", f.env.tls, "meditech",
             {"--patients", "3", "--seed", "4", "--client-id", "agent", "--client-public-key",
              key.public_pem.string()});
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  // Nothing listens on the port: the probe fails, nothing is switched.
  const std::string down = "https://127.0.0.1:" + std::to_string(freePort()) + "/fhir";
  json::Value r = f.pushConfig(adaptersConfig({fhirAdapter(sim, f.env.tls, key, down, true)}), 1);
  EXPECT_EQ(r.getString("result"), "rejected") << json::serialize(r);
  EXPECT_EQ(r.getString("reason"), "apply_failed");
  EXPECT_NE(r.getString("error").find("adapter meditech-fhir reachable"), std::string::npos)
      << json::serialize(r);
  EXPECT_NE(r.getString("error").find("require_reachable"), std::string::npos);

  // The server answers but does not know the signing key: the token request fails.
  r = f.pushConfig(adaptersConfig({fhirAdapter(sim, f.env.tls, wrong, sim.fhirBase(), true)}), 2);
  EXPECT_EQ(r.getString("result"), "rejected") << json::serialize(r);
  EXPECT_NE(r.getString("error").find("adapter meditech-fhir auth"), std::string::npos)
      << json::serialize(r);

  auto status = f.agent->cli({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_TRUE(adapterNames(*json::parse(status.output)).empty()) << status.output;

  // Reachable and authorised: applied, and the adapter delivers.
  r = f.pushConfig(adaptersConfig({fhirAdapter(sim, f.env.tls, key, sim.fhirBase(), true)}), 3);
  EXPECT_EQ(r.getString("result"), "applied") << json::serialize(r);
  EXPECT_TRUE(f.sim->waitForUnique(3, 60s)) << f.agent->log();

  // Without the flag an unreachable endpoint is accepted; the adapter retries on its own.
  r = f.pushConfig(adaptersConfig({fhirAdapter(sim, f.env.tls, key, down, false)}), 4);
  EXPECT_EQ(r.getString("result"), "applied") << json::serialize(r);
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
