// `pms-agent discover api` as the real binary against the vendor API simulators over real
// HTTPS: which collections of the rest-poll profile answer, page sizes, totals, the profile's
// documented limits; a suggestion that validates and, run by a real agent once its secret file
// exists, syncs what the vendor holds; a secret and a PHI marker that appear in no output.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "api_test_util.h"
#include "discover_test_util.h"

namespace psa::test {
namespace {

using namespace discover_util;

class DiscoverApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("psa-discover-api");
    tls_ = std::make_unique<TlsMaterial>(tmp_->path() / "tls");
  }

  void startSim(const std::string& vendor, std::vector<std::string> args) {
    sim_ = std::make_unique<PmsSim>(tmp_->path() / "sim", *tls_, vendor, std::move(args));
  }

  CliRun discover(const std::string& vendor, const std::string& auth_json) {
    const fs::path auth = tmp_->path() / "auth.json";
    writeFile(auth, auth_json);
    return agentCli(*tmp_,
                    {"discover", "api", "--vendor", vendor, "--base-url", sim_->apiBase(),
                     "--auth-file", auth.string(), "--ca-file", tls_->ca().cert.string(), "--json",
                     "--suggest", suggestion().string()},
                    120s);
  }

  fs::path suggestion() const { return tmp_->path() / "suggested.json"; }
  fs::path state() const { return tmp_->path() / "state"; }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<TlsMaterial> tls_;
  std::unique_ptr<PmsSim> sim_;
};

const json::Value* collection(const json::Value& report, const std::string& name) {
  return entry(report, "collections", "name", name);
}

TEST_F(DiscoverApiTest, NextGenCollectionsAnswerAndTheSuggestionSyncsWithItsSecretFile) {
  const std::string marker = uniqueMarker();
  startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret-77", "--patients", "6",
                       "--seed", "31", "--marker", marker});
  const json::Value& ready = sim_->ready();
  const std::string auth =
      R"({"type":"nextgen","client_id":"agent","client_secret":"ng-secret-77","token_url":")" +
      sim_->tokenUrl() + R"(","site_id":")" + ready.getString("site_id") +
      R"(","enterprise_id":")" + ready.getString("enterprise_id") + R"(","practice_id":")" +
      ready.getString("practice_id") + R"("})";
  const CliRun r = discover("nextgen", auth);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json::Value rep = parsed(r.out);
  EXPECT_EQ(rep.getString("strategy"), "since-list");
  EXPECT_EQ(rep.find("auth")->getString("token"), "issued") << r.out;
  const json::Value* persons = collection(rep, "persons");
  ASSERT_NE(persons, nullptr);
  EXPECT_TRUE(persons->getBool("answered")) << r.out;
  EXPECT_EQ(persons->getInt("page_items"), 6);
  EXPECT_FALSE(persons->getBool("next_page"));
  // A chart collection is read for the first person of the first page.
  const json::Value* problems = collection(rep, "problems");
  ASSERT_NE(problems, nullptr);
  EXPECT_EQ(problems->getString("per"), "persons");
  EXPECT_TRUE(problems->getBool("answered")) << r.out;
  EXPECT_TRUE(rep.find("rate_limit_headers")->isObject());
  // The suggestion validates; the secret is a placeholder, never the value.
  expectValidates(*tmp_, suggestion());
  json::Value adapter = parsed(readFile(suggestion()));
  EXPECT_EQ(adapter.find("auth")->find("client_secret"), nullptr);
  EXPECT_NE(adapter.find("auth")->getString("client_secret_file").find("REPLACE"),
            std::string::npos);
  for (const std::string& text : {r.out, r.err, readFile(suggestion())}) {
    EXPECT_EQ(text.find("ng-secret-77"), std::string::npos) << text;
  }
  expectNoMarker(marker, r, suggestion());
  // With the secret in its file (what the technician does), a real agent syncs everything.
  const fs::path secret = tmp_->path() / "ng.secret";
  writeFile(secret, "ng-secret-77");
  adapter.find("auth")->set("client_secret_file", json::Value::string(secret.string()));
  adapter.set("interval_s", json::Value::number(0.5));
  AgentProcess agent(state(), agentConfigWith(adapter));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(compareNative(readStoredRecords(state() / "queue.db", state() / "queue.key"),
                          sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
}

TEST_F(DiscoverApiTest, AthenaTotalsAndDocumentedLimits) {
  const std::string marker = uniqueMarker();
  startSim("athenahealth", {"--client-id", "agent", "--client-secret", "ath-secret", "--patients",
                            "5", "--seed", "32", "--marker", marker});
  const CliRun r = discover(
      "athenahealth",
      R"({"type":"oauth2-client-credentials","client_id":"agent","client_secret":"ath-secret",
          "client_auth":"basic","scope":"athena/service/Athenanet.MDP.*","token_url":")" +
          sim_->tokenUrl() + R"("})");
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json::Value rep = parsed(r.out);
  EXPECT_EQ(rep.getString("strategy"), "athena-feeds");
  const json::Value* patients = collection(rep, "patients");
  ASSERT_NE(patients, nullptr);
  EXPECT_TRUE(patients->getBool("answered")) << r.out;
  EXPECT_EQ(patients->getInt("count", -1), 5) << r.out;
  EXPECT_EQ(rep.find("documented_limits")->items()[0].asString(), "100 requests per 1 s");
  expectValidates(*tmp_, suggestion());
  expectNoMarker(marker, r, suggestion());
  EXPECT_EQ(sim_->stats().getInt("rate_limit_violations", -1), 0);
}

TEST_F(DiscoverApiTest, KareoIsOnlyAuthenticatedAndBadInputsGetClearErrors) {
  startSim("kareo", {"--client-id", "kuser", "--client-secret", "kpass", "--patients", "2"});
  const std::string auth = R"({"type":"kareo","customer_key":")" +
                           sim_->ready().getString("customer_key") +
                           R"(","username":"kuser","password":"kpass"})";
  CliRun r = discover("kareo", auth);
  EXPECT_EQ(r.rc, 1) << r.out;  // nothing listed: SOAP collections are whole sync operations
  const json::Value rep = parsed(r.out);
  EXPECT_EQ(collection(rep, "Patients")->getString("note").rfind("not probed", 0), 0u) << r.out;
  expectValidates(*tmp_, suggestion());
  r = agentCli(*tmp_, {"discover", "api", "--base-url", sim_->apiBase()});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--vendor is required"), std::string::npos) << r.err;
  r = agentCli(*tmp_, {"discover", "api", "--vendor", "acme", "--base-url", sim_->apiBase()});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no rest-poll profile for vendor \"acme\" (known: "), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace psa::test
