// fhir-poll against the real FHIR simulators over real HTTPS: the real `pms-agent run`
// process, the real store, and /_sim/expected as the truth. Bulk (Epic, eCW), search and
// history (Meditech), faults, SIGKILL mid-sync, PHI markers.
#include <gtest/gtest.h>

#include <signal.h>

#include "api_test_util.h"

namespace psa::test {
namespace {

class FhirPollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("psa-apifhir");
    tls_ = std::make_unique<TlsMaterial>(tmp_->path() / "tls");
    key_ = makeRsaClientKey(tmp_->path(), "client");
  }

  void startSim(const std::string& vendor, std::vector<std::string> args) {
    args.insert(args.end(), {"--client-id", "agent", "--client-public-key",
                             key_.public_pem.string()});
    sim_ = std::make_unique<PmsSim>(tmp_->path() / "sim", *tls_, vendor, std::move(args));
  }

  json::Value adapter(const std::string& vendor, const std::string& resources_json,
                      const std::string& extra_json = "{}") {
    json::Value a = json::Value::object();
    a.set("name", json::Value::string(vendor + "-fhir"));
    a.set("type", json::Value::string("fhir-poll"));
    a.set("vendor", json::Value::string(vendor));
    a.set("base_url", json::Value::string(sim_->fhirBase()));
    a.set("ca_file", json::Value::string(tls_->ca().cert.string()));
    json::Value auth = json::Value::object();
    auth.set("type", json::Value::string("smart-backend"));
    auth.set("client_id", json::Value::string("agent"));
    auth.set("private_key_file", json::Value::string(key_.private_pem.string()));
    auth.set("token_url", json::Value::string(sim_->tokenUrl()));
    auth.set("alg", json::Value::string("RS384"));
    a.set("auth", std::move(auth));
    a.set("resources", *json::parse(resources_json));
    a.set("interval_s", json::Value::number(0.5));
    const json::Value extra = *json::parse(extra_json);
    for (const auto& [k, v] : extra.members()) {
      a.set(k, v);
    }
    return a;
  }

  std::vector<StoredRecord> stored() {
    return readStoredRecords(state() / "queue.db", state() / "queue.key");
  }
  std::filesystem::path state() const { return tmp_->path() / "state"; }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<TlsMaterial> tls_;
  ClientKey key_;
  std::unique_ptr<PmsSim> sim_;
};

constexpr const char* kUsCoreTypes =
    R"(["Patient","Encounter","Condition","Observation","Procedure","MedicationRequest",
        "AllergyIntolerance","Immunization","DiagnosticReport","DocumentReference","Practitioner",
        "PractitionerRole","Organization","Location","Device","Coverage"])";

TEST_F(FhirPollTest, EpicBulkFullThenIncrementalEqualsExpected) {
  startSim("epic", {"--patients", "15", "--bulk-job-seconds", "0.3", "--seed", "3"});
  const std::string types = R"(["Patient","Encounter","Observation","Condition","Practitioner","Device"])";
  auto cfg = agentConfigWith(adapter("epic", types, R"({"group_id":")" +
                                                        sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  // Changes after the first export: creates, updates, deletes and a merge.
  sim_->mutate(R"({"create": 6, "update": 12, "delete": 4, "merge": 1,
                   "types": ["Encounter","Observation","Condition"]})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  auto exp = sim_->expected("types=Patient,Encounter,Observation,Condition,Practitioner,Device");
  EXPECT_EQ(compareWithExpected(held, exp), std::vector<std::string>{});
  EXPECT_GT(held.deleted.size(), 0u);
  EXPECT_EQ(held.kinds["Patient"], "patient");
  EXPECT_EQ(held.kinds["Observation"], "clinical");
  EXPECT_EQ(held.kinds["Practitioner"], "provider");
  EXPECT_EQ(held.kinds["Device"], "inventory");
  auto wm = readWatermarks(state() / "queue.db", state() / "queue.key", "epic-fhir");
  EXPECT_EQ(wm.count("bulk:job"), 0u);
  EXPECT_EQ(wm.count("bulk:since"), 1u);
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("retry_after_violations", -1), 0);
  EXPECT_EQ(stats.getInt("bulk_poll_too_early", -1), 0);
}

TEST_F(FhirPollTest, MeditechHistoryCarriesEveryVersionAndDeletion) {
  startSim("meditech", {"--patients", "12", "--seed", "5", "--page-size", "20"});
  auto cfg = agentConfigWith(adapter("meditech", kUsCoreTypes, R"({"sync":"history","page_size":25})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"create": 5, "update": 15, "delete": 4, "merge": 1})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  EXPECT_EQ(compareWithExpected(held, sim_->expected()), std::vector<std::string>{});
  EXPECT_GT(held.deleted.size(), 0u);
  // History mode sees every committed version exactly once: the store equals the change log.
  auto log = sim_->adminGet("/changelog?limit=100000");
  std::set<std::string> want;
  for (const auto& e : log.find("entries")->items()) {
    want.insert(e.getString("ref") + "/" + (e.getBool("deleted") ? std::string("deleted")
                                                                 : e.getString("versionId")));
  }
  std::set<std::string> got;
  for (const auto& [id, n] : held.identities) {
    got.insert(id.substr(0, id.find("/deleted@")) +
               (id.find("/deleted@") != std::string::npos ? "/deleted" : ""));
  }
  EXPECT_EQ(got, want);
}

TEST_F(FhirPollTest, MeditechSearchIncrementalWithDuplicatePagesAndFaults) {
  startSim("meditech", {"--patients", "12", "--seed", "8"});
  sim_->setFaults(R"({"rules": [
      {"kind": "duplicate", "endpoint": "search:*", "probability": 0.3},
      {"kind": "status", "status": 503, "endpoint": "search:Observation", "count": 2},
      {"kind": "status", "status": 500, "endpoint": "search:Patient", "count": 1},
      {"kind": "429", "endpoint": "search:Condition", "count": 1, "retry_after": "seconds", "retry_after_s": 1},
      {"kind": "429", "endpoint": "search:Encounter", "count": 1, "retry_after": "http-date", "retry_after_s": 1},
      {"kind": "status", "status": 503, "endpoint": "search:Procedure", "count": 1, "retry_after": "seconds", "retry_after_s": 1},
      {"kind": "reset", "endpoint": "search:Practitioner", "count": 1},
      {"kind": "truncate", "endpoint": "search:Location", "count": 1},
      {"kind": "malformed_json", "endpoint": "search:Device", "count": 1},
      {"kind": "revoke_token", "endpoint": "search:Coverage", "count": 1}]})");
  auto cfg = agentConfigWith(adapter("meditech", kUsCoreTypes, R"({"sync":"search","page_size":10})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"create": 5, "update": 15})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  auto exp = sim_->expected();
  EXPECT_EQ(compareWithExpected(held, exp), std::vector<std::string>{});
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("retry_after_violations", -1), 0);
  const std::string log = agent.log();
  EXPECT_NE(log.find("event=reauthenticate"), std::string::npos);
  EXPECT_NE(log.find("event=throttled"), std::string::npos);
  EXPECT_NE(log.find("event=bad_body"), std::string::npos);
}

}  // namespace
}  // namespace psa::test
