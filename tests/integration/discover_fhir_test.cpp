// `pms-agent discover fhir` as the real binary against the FHIR simulators over real HTTPS:
// the reported structure (SMART, CapabilityStatement, token and scopes, interactions, counts,
// Bulk, paging, estimate), a suggestion that validates and, run by a real agent, syncs exactly
// what the server holds; throttling honoured; bad inputs get clear errors; a PHI marker planted
// in every patient appears in no output and no file.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "api_test_util.h"
#include "discover_test_util.h"

namespace psa::test {
namespace {

using namespace discover_util;

class DiscoverFhirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("psa-discover-fhir");
    tls_ = std::make_unique<TlsMaterial>(tmp_->path() / "tls");
    key_ = makeRsaClientKey(tmp_->path(), "client");
  }

  void startSim(const std::string& vendor, std::vector<std::string> args) {
    args.insert(args.end(),
                {"--client-id", "agent", "--client-public-key", key_.public_pem.string()});
    sim_ = std::make_unique<PmsSim>(tmp_->path() / "sim", *tls_, vendor, std::move(args));
  }

  // The auth object as a technician writes it: no token_url (SMART discovery finds it).
  fs::path authFile(const std::string& client_id = "agent") {
    json::Value auth = json::Value::object();
    auth.set("type", json::Value::string("smart-backend"));
    auth.set("client_id", json::Value::string(client_id));
    auth.set("private_key_file", json::Value::string(key_.private_pem.string()));
    auth.set("alg", json::Value::string("RS384"));
    const fs::path f = tmp_->path() / ("auth-" + client_id + ".json");
    writeFile(f, json::serialize(auth, true));
    return f;
  }

  CliRun discover(const std::string& vendor, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "discover", "fhir",      "--base-url",         sim_->fhirBase(),
        "--vendor", vendor,      "--ca-file",          tls_->ca().cert.string(),
        "--json",   "--suggest", suggestion().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return agentCli(*tmp_, args, 120s);
  }

  fs::path suggestion() const { return tmp_->path() / "suggested.json"; }
  fs::path state() const { return tmp_->path() / "state"; }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<TlsMaterial> tls_;
  ClientKey key_;
  std::unique_ptr<PmsSim> sim_;
};

const json::Value* resource(const json::Value& report, const std::string& type) {
  return entry(report, "resources", "type", type);
}

std::set<std::string> strings(const json::Value* list) {
  std::set<std::string> out;
  for (const auto& v : list->items()) {
    out.insert(v.asString());
  }
  return out;
}

TEST_F(DiscoverFhirTest, MeditechStructureCountsAndASuggestionThatSyncsWithoutAnyValue) {
  const std::string marker = uniqueMarker();
  startSim("meditech", {"--patients", "9", "--seed", "4", "--marker", marker});
  const CliRun r = discover("meditech", {"--auth-file", authFile().string()});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json::Value rep = parsed(r.out);
  EXPECT_EQ(rep.getString("fhir_version"), "4.0.1");
  EXPECT_EQ(rep.getString("software"), "MEDITECH Greenfield 2.0");
  EXPECT_EQ(rep.find("smart")->getString("token_endpoint"), sim_->tokenUrl());
  EXPECT_TRUE(strings(rep.find("smart")->find("auth_methods")).count("private_key_jwt"));
  const json::Value* auth = rep.find("auth");
  EXPECT_EQ(auth->getString("token"), "issued") << r.err;
  EXPECT_TRUE(strings(auth->find("granted_scopes")).count("system/Patient.read"))
      << json::serialize(*auth);
  EXPECT_TRUE(rep.find("bulk_export")->getBool("system"));
  EXPECT_TRUE(rep.find("bulk_export")->getBool("group"));
  EXPECT_TRUE(rep.find("bulk_export")->getBool("patient"));
  EXPECT_TRUE(rep.getBool("history_system"));
  EXPECT_EQ(rep.getString("paging"), "_getpages");
  // Every served type with its interactions and the count the simulator holds.
  for (const std::string type : {"Patient", "Encounter", "Observation", "Practitioner"}) {
    const json::Value* e = resource(rep, type);
    ASSERT_NE(e, nullptr) << type;
    EXPECT_EQ(strings(e->find("interactions")),
              (std::set<std::string>{"read", "search-type", "history-type", "history-instance"}));
    EXPECT_TRUE(e->getBool("last_updated"));
    const int64_t want = sim_->expected("types=" + type).find("counts")->getInt("resources");
    EXPECT_EQ(e->getInt("count", -1), want) << type;
  }
  EXPECT_TRUE(resource(rep, "Patient")->getBool("export"));
  const json::Value* load = rep.find("initial_load");
  EXPECT_EQ(load->getString("sync"), "search");
  EXPECT_TRUE(load->getBool("counts_complete"));
  EXPECT_GE(load->getInt("search_requests"), 16);
  EXPECT_TRUE(load->find("rate_limit")->isNull());  // MEDITECH publishes none
  // The suggestion validates as it is and, run by a real agent, syncs what the server holds.
  expectValidates(*tmp_, suggestion());
  const json::Value adapter = parsed(readFile(suggestion()));
  EXPECT_EQ(adapter.getString("sync"), "search");
  EXPECT_EQ(adapter.find("auth")->getString("private_key_file"), key_.private_pem.string());
  json::Value cfg = agentConfigWith(adapter);
  cfg.find("adapters")->items()[0].set("interval_s", json::Value::number(0.5));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  std::string types;
  for (const auto& t : adapter.find("resources")->items()) {
    types += (types.empty() ? "" : ",") + t.asString();
  }
  const auto held = analyzeFhir(readStoredRecords(state() / "queue.db", state() / "queue.key"));
  EXPECT_EQ(compareWithExpected(held, sim_->expected("types=" + types)),
            std::vector<std::string>{});
  EXPECT_GT(held.records, 20u);
  // The marker is in what was synced, and in nothing discover printed or wrote.
  expectNoMarker(marker, r, suggestion());
  const CliRun text =
      agentCli(*tmp_, {"discover", "fhir", "--base-url", sim_->fhirBase(), "--vendor", "meditech",
                       "--ca-file", tls_->ca().cert.string(), "--auth-file", authFile().string()});
  EXPECT_EQ(text.rc, 0) << text.err;
  EXPECT_NE(text.out.find("Patient: read search history _lastUpdated $export  count "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("Suggested adapter"), std::string::npos);
  expectNoMarker(marker, text, suggestion());
}

TEST_F(DiscoverFhirTest, EpicRefusesPopulationSearchesAndGetsBulkWithItsGroup) {
  const std::string marker = uniqueMarker();
  startSim("epic", {"--patients", "6", "--seed", "2", "--marker", marker});
  const std::string group = sim_->ready().getString("group_id");
  const CliRun r = discover("epic", {"--auth-file", authFile().string(), "--group-id", group});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json::Value rep = parsed(r.out);
  EXPECT_EQ(rep.find("auth")->getString("token"), "issued");
  EXPECT_TRUE(rep.find("bulk_export")->getBool("group"));
  // Epic refuses unqualified searches: no count, the refusal's status and code instead.
  const json::Value* obs = resource(rep, "Observation");
  ASSERT_NE(obs, nullptr);
  EXPECT_TRUE(obs->find("count")->isNull());
  EXPECT_EQ(obs->getString("count_note").rfind("HTTP 400", 0), 0u) << obs->getString("count_note");
  EXPECT_EQ(rep.find("initial_load")->getString("sync"), "bulk");
  expectValidates(*tmp_, suggestion());
  const json::Value adapter = parsed(readFile(suggestion()));
  EXPECT_EQ(adapter.getString("sync"), "bulk");
  EXPECT_EQ(adapter.getString("export"), "group");
  EXPECT_EQ(adapter.getString("group_id"), group);
  expectNoMarker(marker, r, suggestion());
}

TEST_F(DiscoverFhirTest, ThrottlingIsHonouredAndRefusedCredentialsAreReported) {
  startSim("meditech", {"--patients", "3", "--seed", "6"});
  sim_->setFaults(R"({"rules": [
      {"kind": "429", "endpoint": "metadata", "count": 1, "retry_after": "seconds", "retry_after_s": 1},
      {"kind": "429", "endpoint": "smart-config", "count": 1, "retry_after": "http-date", "retry_after_s": 1}]})");
  const CliRun r = discover("meditech", {"--auth-file", authFile("stranger").string()});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const json::Value rep = parsed(r.out);
  EXPECT_GE(rep.getInt("throttled"), 2);
  EXPECT_EQ(sim_->stats().getInt("retry_after_violations", -1), 0);
  // A client the server does not know: the report says so, and counts are not attempted.
  EXPECT_EQ(rep.find("auth")->getString("token"), "refused");
  EXPECT_NE(r.err.find("WARN  credentials:"), std::string::npos) << r.err;
  EXPECT_EQ(resource(rep, "Patient")->getString("count_note"), "no token");
  // Without credentials: the structure still, and each count says the server wants a token.
  const CliRun open = discover("meditech");
  ASSERT_EQ(open.rc, 0) << open.err;
  const json::Value anon = parsed(open.out);
  EXPECT_EQ(anon.find("auth")->getString("token"), "not tried");
  EXPECT_NE(resource(anon, "Patient")->getString("count_note").find("HTTP 401"), std::string::npos)
      << open.out;
}

TEST_F(DiscoverFhirTest, BadInputsGetClearErrors) {
  startSim("meditech", {"--patients", "2"});
  CliRun r = agentCli(*tmp_, {"discover", "fhir", "--base-url", "ftp://x"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("expected an http(s):// URL"), std::string::npos) << r.err;
  writeFile(tmp_->path() / "junk.json", "[1,2]");
  r = discover("meditech", {"--auth-file", (tmp_->path() / "junk.json").string()});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("expected the adapter's auth object"), std::string::npos) << r.err;
  // The server's origin is not its FHIR base: no CapabilityStatement there.
  r = agentCli(*tmp_, {"discover", "fhir", "--base-url", sim_->httpsOrigin(), "--ca-file",
                       tls_->ca().cert.string(), "--json"});
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(parsed(r.out).getString("error").find("is base_url the FHIR base?"), std::string::npos)
      << r.out;
  // A CA that does not sign the server: the TLS reason, exit 1.
  TlsMaterial other(tmp_->path() / "other");
  r = agentCli(*tmp_, {"discover", "fhir", "--base-url", sim_->fhirBase(), "--ca-file",
                       other.ca().cert.string()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("certificate verify failed"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace psa::test
