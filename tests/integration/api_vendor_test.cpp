// rest-poll against the real vendor-API simulators (DrChrono, NextGen, Kareo SOAP, athenahealth,
// Allscripts Unity) over real HTTPS with the real `pms-agent run`: full and incremental sync
// equal /_sim/expected?digest=1, refresh-token rotation survives SIGKILL, limits are never
// exceeded, in-band errors and faults are handled.
#include <gtest/gtest.h>

#include "api_test_util.h"

namespace psa::test {
namespace {

class VendorApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<TempDir>("psa-apivendor");
    tls_ = std::make_unique<TlsMaterial>(tmp_->path() / "tls");
  }

  void startSim(const std::string& vendor, std::vector<std::string> args) {
    sim_ = std::make_unique<PmsSim>(tmp_->path() / "sim", *tls_, vendor, std::move(args));
  }

  json::Value adapter(const std::string& vendor, const std::string& auth_json,
                      const std::string& extra_json = "{}") {
    json::Value a = json::Value::object();
    a.set("name", json::Value::string(vendor + "-api"));
    a.set("type", json::Value::string("rest-poll"));
    a.set("vendor", json::Value::string(vendor));
    a.set("base_url", json::Value::string(sim_->apiBase()));
    a.set("ca_file", json::Value::string(tls_->ca().cert.string()));
    a.set("auth", *json::parse(auth_json));
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

  // Runs the agent to one complete run, mutates, waits for two more runs, stops.
  void syncMutateSync(AgentProcess& agent, const std::string& mutation) {
    ASSERT_TRUE(agent.start()) << agent.log();
    ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(180))) << agent.log();
    sim_->mutate(mutation);
    const size_t runs = countOccurrences(agent.log(), "event=run_complete");
    ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2, std::chrono::seconds(180))) << agent.log();
    ASSERT_EQ(agent.stop(), 0);
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<TlsMaterial> tls_;
  std::unique_ptr<PmsSim> sim_;
};

// ---- DrChrono -------------------------------------------------------------------------------

std::string drchronoAuth(const PmsSim& sim, const std::string& refresh) {
  return R"({"type":"oauth2-refresh","client_id":"agent","client_secret":"drc-secret","refresh_token":")" +
         refresh + R"(","token_url":")" + sim.tokenUrl() + R"("})";
}

TEST_F(VendorApiTest, DrChronoIncrementalSyncRotationAcrossSigkillAndLimits) {
  startSim("drchrono", {"--client-id", "agent", "--client-secret", "drc-secret", "--refresh-token",
                        "seed-refresh-token-0001", "--token-ttl", "2", "--patients", "10",
                        "--seed", "21"});
  auto cfg = agentConfigWith(adapter("drchrono", drchronoAuth(*sim_, "seed-refresh-token-0001"),
                                     R"({"page_size": 40})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 2)) << agent.log();
  // Tokens live 2 s: by now the seed was rotated at least once. SIGKILL, then restart with the
  // same config (whose seed is dead): the rotated token was persisted before use.
  agent.kill();
  sim_->mutate(R"({"create": 6, "update": 12, "delete": 3})");
  ASSERT_TRUE(agent.start()) << agent.log();
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 3)) << agent.log();
  agent.kill();
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 5)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(countOccurrences(agent.log(), "event=run_failed"), 0u) << agent.log();

  auto stats = sim_->stats();
  EXPECT_GE(stats.getInt("refresh_rotations", 0), 3) << json::serialize(stats);
  EXPECT_EQ(stats.getInt("refresh_token_reuse", 0), 0) << json::serialize(stats);  // absent until counted
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  auto records = stored();
  EXPECT_EQ(compareNative(records, sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
  // Tombstones (soft deletes) are carried.
  size_t tombstones = 0;
  for (const auto& r : records) {
    tombstones += (r.payload.find("\"deleted_flag\":true") != std::string::npos ||
                   r.payload.find("\"archived\":true") != std::string::npos)
                      ? 1
                      : 0;
  }
  EXPECT_GE(tombstones, 3u);
  // The live refresh token is sealed in the store, never in a file in clear.
  auto tokens = sim_->adminGet("/vendor/refresh-token");
  ASSERT_EQ(tokens.find("active")->items().size(), 1u) << json::serialize(tokens);
  const std::string live = tokens.find("active")->items()[0].asString();
  EXPECT_EQ(filesContaining(state(), live), std::vector<std::filesystem::path>{});
}

TEST_F(VendorApiTest, DrChronoLostRefreshAnswerGivesAClearError) {
  startSim("drchrono", {"--client-id", "agent", "--client-secret", "drc-secret", "--refresh-token",
                        "seed-refresh-token-0002", "--patients", "3"});
  sim_->setFaults(R"({"rules": [{"kind": "truncate", "endpoint": "token", "count": 1}]})");
  AgentProcess agent(state(), agentConfigWith(adapter("drchrono", drchronoAuth(*sim_, "seed-refresh-token-0002"))));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_failed", 1)) << agent.log();
  const std::string log = agent.log();
  EXPECT_NE(log.find("refresh token revoked or already used: re-authorise the agent in the PMS admin "
                     "page and set a new auth.refresh_token"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("code=invalid_grant"), std::string::npos) << log;
  EXPECT_TRUE(agent.running());
  EXPECT_EQ(agent.stop(), 0);
}

// ---- NextGen --------------------------------------------------------------------------------

TEST_F(VendorApiTest, NextGenSessionODataPagingAndChartFanOut) {
  const std::string marker = uniqueMarker();
  startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret", "--patients", "6",
                       "--seed", "22", "--marker", marker});
  sim_->setFaults(R"({"rules": [{"kind": "duplicate", "endpoint": "list:*", "probability": 0.3},
                                {"kind": "status", "status": 503, "endpoint": "chart:*", "count": 2},
                                {"kind": "malformed_json", "endpoint": "list:persons", "count": 1},
                                {"kind": "revoke_token", "endpoint": "chart:problems", "count": 1}]})");
  const json::Value& r = sim_->ready();
  const std::string auth = R"({"type":"nextgen","client_id":"agent","client_secret":"ng-secret","token_url":")" +
                           sim_->tokenUrl() + R"(","site_id":")" + r.getString("site_id") +
                           R"(","enterprise_id":")" + r.getString("enterprise_id") +
                           R"(","practice_id":")" + r.getString("practice_id") + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("nextgen", auth, R"({"page_size": 7})")));
  syncMutateSync(agent, R"({"create": 5, "update": 10})");
  EXPECT_EQ(compareNative(stored(), sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
  EXPECT_EQ(sim_->stats().find("requests")->getInt("login-defaults"), 1);  // session cached
  EXPECT_NE(agent.log().find("event=reauthenticate"), std::string::npos);
  // PHI: the marker (in every person's middle name) is in the records, never in a file in clear.
  EXPECT_EQ(filesContaining(state(), marker), std::vector<std::filesystem::path>{});
  size_t with_marker = 0;
  for (const auto& rec : stored()) {
    with_marker += rec.payload.find(marker) != std::string::npos ? 1 : 0;
  }
  EXPECT_GE(with_marker, 6u);
}

TEST_F(VendorApiTest, NextGenSigkillMidSyncThenRestartIsExactlyOnce) {
  startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret", "--patients", "30",
                       "--seed", "26"});
  sim_->setFaults(R"({"rules": [{"kind": "delay", "probability": 1.0, "delay_s": 0.01}]})");
  const json::Value& r = sim_->ready();
  const std::string auth = R"({"type":"nextgen","client_id":"agent","client_secret":"ng-secret","token_url":")" +
                           sim_->tokenUrl() + R"(","site_id":")" + r.getString("site_id") +
                           R"(","enterprise_id":")" + r.getString("enterprise_id") +
                           R"(","practice_id":")" + r.getString("practice_id") + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("nextgen", auth, R"({"page_size": 5})")));
  for (size_t kills = 0; kills < 3; ++kills) {
    ASSERT_TRUE(agent.start()) << agent.log();
    const size_t pages = countOccurrences(agent.log(), "event=page_committed");
    ASSERT_TRUE(waitForEvents(agent, "page_committed", pages + 10 + kills * 15)) << agent.log();
    agent.kill();
  }
  ASSERT_EQ(countOccurrences(agent.log(), "event=run_complete"), 0u) << "finished too early";
  sim_->clearFaults();
  syncMutateSync(agent, R"({"create": 5, "update": 10})");
  EXPECT_EQ(compareNative(stored(), sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
}

// Records deleted while the agent pages (creation-order $skip paging would shift a record past
// the cursor, and no later `modifyTimestamp ge` run would return it): keyset paging on
// the id never skips one, on the top-level lists and the chart fan-out alike.
TEST_F(VendorApiTest, NextGenDeletionsWhilePagingSkipNothing) {
  startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret", "--patients", "40",
                       "--seed", "27"});
  sim_->setFaults(R"({"rules": [{"kind": "delay", "probability": 1.0, "delay_s": 0.02}]})");
  const json::Value& r = sim_->ready();
  const std::string auth = R"({"type":"nextgen","client_id":"agent","client_secret":"ng-secret","token_url":")" +
                           sim_->tokenUrl() + R"(","site_id":")" + r.getString("site_id") +
                           R"(","enterprise_id":")" + r.getString("enterprise_id") +
                           R"(","practice_id":")" + r.getString("practice_id") + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("nextgen", auth, R"({"page_size": 4})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "page_committed", 1)) << agent.log();
  sim_->mutate(R"({"background": {"rate_per_s": 10, "duration_s": 600, "create": 1, "update": 1, "delete": 3,
                   "types": ["Patient", "Appointment", "Encounter", "Condition", "MedicationRequest",
                             "AllergyIntolerance", "ChargeItem"]}})");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(300))) << agent.log();
  sim_->adminPost("/mutate/stop", json::Value::object());
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2, std::chrono::seconds(300))) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto exp = sim_->expected("digest=1");
  EXPECT_GE(exp.find("counts")->getInt("vanished"), 10) << json::serialize(*exp.find("counts"));
  EXPECT_EQ(compareNative(stored(), exp, "vendor+json"), std::vector<std::string>{});
}

// NextGen never signals deletions: every reconcile_s the agent lists completely (keyset, chart
// fan-out included) and carries one deletion record per record it had carried that is gone.
TEST_F(VendorApiTest, NextGenReconcileCarriesEachVanishedRecordOnce) {
  startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret", "--patients", "8",
                       "--seed", "30"});
  const json::Value& r = sim_->ready();
  const std::string auth = R"({"type":"nextgen","client_id":"agent","client_secret":"ng-secret","token_url":")" +
                           sim_->tokenUrl() + R"(","site_id":")" + r.getString("site_id") +
                           R"(","enterprise_id":")" + r.getString("enterprise_id") +
                           R"(","practice_id":")" + r.getString("practice_id") + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("nextgen", auth, R"({"page_size": 6, "reconcile_s": 1})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"delete": 6, "types": ["Appointment", "Encounter", "Condition", "MedicationRequest",
                                          "AllergyIntolerance", "ChargeItem"]})");
  sim_->mutate(R"({"delete": 1, "types": ["Patient"]})");
  const size_t before = countOccurrences(agent.log(), "event=reconciled");
  ASSERT_TRUE(waitForEvents(agent, "reconciled", before + 2)) << agent.log();
  agent.kill();  // mid-way through whatever comes next; a restart adds no second deletion
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "reconciled", before + 3)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto exp = sim_->expected("digest=1");
  const std::set<std::string> vanished = vanishedKeys(exp);
  EXPECT_GE(vanished.size(), 7u);
  auto records = stored();
  std::vector<std::string> twice;
  EXPECT_EQ(deletionKeys(records, &twice), vanished);
  EXPECT_EQ(twice, std::vector<std::string>{});
  EXPECT_EQ(compareNative(records, exp, "vendor+json"), std::vector<std::string>{});
}

std::string nextgenAuth(const PmsSim& sim) {
  const json::Value& r = sim.ready();
  return R"({"type":"nextgen","client_id":"agent","client_secret":"ng-secret","token_url":")" +
         sim.tokenUrl() + R"(","site_id":")" + r.getString("site_id") + R"(","enterprise_id":")" +
         r.getString("enterprise_id") + R"(","practice_id":")" + r.getString("practice_id") +
         R"("})";
}

// NextGen stamps are zone-less local time: `utc_offset` puts the watermark in the practice's
// zone. With it the incremental filter finds every change; without it (UTC read as local, five
// hours ahead) the same changes are missed, which is what the option is for.
TEST_F(VendorApiTest, NextGenUtcOffsetPutsTheWatermarkInLocalTime) {
  for (const bool right : {true, false}) {
    SCOPED_TRACE(right ? "utc_offset -05:00" : "utc_offset +00:00");
    startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret", "--patients", "4",
                         "--seed", "31", "--utc-offset=-05:00"});
    const auto dir = state() / (right ? "right" : "wrong");
    AgentProcess agent(dir, agentConfigWith(adapter("nextgen", nextgenAuth(*sim_),
                                                    right ? R"({"utc_offset":"-05:00"})"
                                                          : R"({"utc_offset":"+00:00"})")));
    ASSERT_TRUE(agent.start()) << agent.log();
    ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
    sim_->mutate(R"({"update": 6, "types": ["Patient", "Encounter"]})");
    const size_t runs = countOccurrences(agent.log(), "event=run_complete");
    ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
    ASSERT_EQ(agent.stop(), 0);
    auto diffs = compareNative(readStoredRecords(dir / "queue.db", dir / "queue.key"),
                               sim_->expected("digest=1"), "vendor+json");
    if (right) {
      EXPECT_EQ(diffs, std::vector<std::string>{});
    } else {
      EXPECT_NE(diffs, std::vector<std::string>{});  // the updates were filtered out
    }
    sim_.reset();
  }
}

// `profile_file` replaces the built-in profile: here only persons, as kind "other".
TEST_F(VendorApiTest, NextGenProfileFileReplacesTheBuiltInProfile) {
  startSim("nextgen", {"--client-id", "agent", "--client-secret", "ng-secret", "--patients", "5",
                       "--seed", "32"});
  const auto file = tmp_->path() / "persons-only.json";
  writeFile(file, R"({"strategy": "since-list", "format": "vendor+json", "interval_s": 300,
    "time_format": "%Y-%m-%dT%H:%M:%S",
    "paging": {"style": "keyset", "items": ["items"], "limit_param": "$top", "page_size": 1000,
               "order": "{id_field} asc", "after": "{id_field} gt '{id}'"},
    "since": {"param": "$filter", "template": "modifyTimestamp ge datetime'{}'",
              "initial": "1900-01-01T00:00:00"},
    "headers": {"Accept": "application/json"},
    "collections": [{"name": "persons", "path": "/persons", "kind": "other", "id": "personId",
                     "ts": "modifyTimestamp"}]})");
  AgentProcess agent(state(),
                     agentConfigWith(adapter("nextgen", nextgenAuth(*sim_),
                                             R"({"profile_file":")" + file.string() + R"("})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto records = stored();
  ASSERT_FALSE(records.empty());
  for (const auto& r : records) {
    EXPECT_EQ(r.kind, "other") << r.msg_id;
  }
  EXPECT_EQ(compareNative(records, sim_->expected("digest=1&collections=persons"), "vendor+json"),
            std::vector<std::string>{});
  auto requests = sim_->stats().find("requests");
  EXPECT_GE(requests->getInt("list:persons"), 1);
  EXPECT_EQ(requests->getInt("list:appointments"), 0);
  EXPECT_EQ(requests->getInt("chart:encounters"), 0);
}

// ---- Kareo SOAP -----------------------------------------------------------------------------

TEST_F(VendorApiTest, KareoSoapBatchesFiltersInBandThrottleAndFaults) {
  const std::string marker = uniqueMarker();
  startSim("kareo", {"--client-id", "kuser", "--client-secret", "kpass", "--patients", "12",
                     "--seed", "23", "--rate-limit", "20/10", "--marker", marker});
  sim_->setFaults(R"({"rules": [{"kind": "malformed_xml", "endpoint": "soap:GetAllPatients", "count": 1},
                                {"kind": "status", "status": 500, "endpoint": "soap:GetCharges", "count": 1},
                                {"kind": "429", "endpoint": "soap:GetProviders", "count": 1}]})");
  const std::string auth = R"({"type":"kareo","customer_key":")" + sim_->ready().getString("customer_key") +
                           R"(","username":"kuser","password":"kpass"})";
  AgentProcess agent(state(), agentConfigWith(adapter("kareo", auth,
      R"({"page_size": 5, "rate_limits": [{"requests": 20, "per_s": 10}]})")));
  syncMutateSync(agent, R"({"create": 4, "update": 8})");
  const std::string log = agent.log();
  EXPECT_NE(log.find("event=throttled_inband"), std::string::npos) << log;
  EXPECT_NE(log.find("event=bad_body call=GetAllPatients"), std::string::npos) << log;
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  EXPECT_EQ(compareNative(stored(), sim_->expected("digest=1"), "vendor+xml"),
            std::vector<std::string>{});
  EXPECT_EQ(filesContaining(state(), marker), std::vector<std::filesystem::path>{});
}

TEST_F(VendorApiTest, KareoWrongCustomerKeyIsAClearError) {
  startSim("kareo", {"--client-id", "kuser", "--client-secret", "kpass", "--patients", "2"});
  AgentProcess agent(state(), agentConfigWith(adapter(
      "kareo", R"({"type":"kareo","customer_key":"wrong","username":"kuser","password":"kpass"})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_failed", 1)) << agent.log();
  EXPECT_NE(agent.log().find("GetAllPatients: SecurityResponse: Invalid customer key - check "
                             "auth.customer_key, username and password"),
            std::string::npos)
      << agent.log();
  EXPECT_EQ(agent.stop(), 0);
}

// Kareo never signals deletions either: complete Get* lists and GetAllPatients batches find
// them; the deletion records are agent-made JSON (vendor+json) beside the SOAP records.
TEST_F(VendorApiTest, KareoReconcileCarriesEachVanishedRecordOnce) {
  startSim("kareo", {"--client-id", "kuser", "--client-secret", "kpass", "--patients", "8",
                     "--seed", "31", "--rate-limit", "off"});
  const std::string auth = R"({"type":"kareo","customer_key":")" + sim_->ready().getString("customer_key") +
                           R"(","username":"kuser","password":"kpass"})";
  AgentProcess agent(state(), agentConfigWith(adapter("kareo", auth, R"({"page_size": 5, "reconcile_s": 1, "rate_limits": [{"requests": 50, "per_s": 1}]})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"delete": 5, "types": ["Appointment", "ChargeItem", "Claim"]})");
  sim_->mutate(R"({"delete": 1, "types": ["Patient"]})");
  const size_t before = countOccurrences(agent.log(), "event=reconciled");
  ASSERT_TRUE(waitForEvents(agent, "reconciled", before + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto exp = sim_->expected("digest=1");
  const std::set<std::string> vanished = vanishedKeys(exp);
  EXPECT_GE(vanished.size(), 6u);
  auto records = stored();
  std::vector<std::string> twice;
  EXPECT_EQ(deletionKeys(records, &twice), vanished);
  EXPECT_EQ(twice, std::vector<std::string>{});
  EXPECT_EQ(compareNative(records, exp, "vendor+xml"), std::vector<std::string>{});
}

// ---- athenahealth ---------------------------------------------------------------------------

TEST_F(VendorApiTest, AthenaSubscribeListThenConsumeChangedFeedsWithLostReads) {
  const std::string marker = uniqueMarker();
  startSim("athenahealth", {"--client-id", "agent", "--client-secret", "ath-secret", "--patients", "8",
                            "--seed", "24", "--marker", marker});
  const std::string auth = R"({"type":"oauth2-client-credentials","client_id":"agent","client_secret":"ath-secret",
      "client_auth":"basic","scope":"athena/service/Athenanet.MDP.*","token_url":")" + sim_->tokenUrl() + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("athenahealth", auth, R"({"page_size": 6})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  // Consuming reads whose answers are lost: their records must come back through replay.
  sim_->setFaults(R"({"rules": [{"kind": "truncate", "endpoint": "changed:*", "count": 2},
                                {"kind": "malformed_json", "endpoint": "changed:patients", "count": 1}]})");
  sim_->mutate(R"({"create": 6, "update": 14, "delete": 3})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  sim_->mutate(R"({"update": 6})");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 4)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_NE(agent.log().find("event=lost_consuming_read"), std::string::npos) << agent.log();
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  auto records = stored();
  EXPECT_EQ(compareNative(records, sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
  // PHI: the marker (every patient's middle name) is in the records, never in a file in clear
  // (the agent's log is in the state dir).
  EXPECT_EQ(filesContaining(state(), marker), std::vector<std::filesystem::path>{});
  size_t with_marker = 0;
  for (const auto& rec : records) {
    with_marker += rec.payload.find(marker) != std::string::npos ? 1 : 0;
  }
  EXPECT_GE(with_marker, 8u);
}

// Deletions while the initial lists page by offset: a record shifted past the cursor is never
// in a changed feed (it did not change), so the agent lists again while the feed shows new
// tombstones. Nothing is missing at the end.
TEST_F(VendorApiTest, AthenaDeletionsDuringTheInitialListSkipNothing) {
  startSim("athenahealth", {"--client-id", "agent", "--client-secret", "ath-secret", "--patients", "40",
                            "--seed", "29"});
  sim_->setFaults(R"({"rules": [{"kind": "delay", "probability": 1.0, "delay_s": 0.02, "endpoint": "list:*"}]})");
  const std::string auth = R"({"type":"oauth2-client-credentials","client_id":"agent","client_secret":"ath-secret",
      "client_auth":"basic","scope":"athena/service/Athenanet.MDP.*","token_url":")" + sim_->tokenUrl() + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("athenahealth", auth, R"({"page_size": 4})")));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "page_committed", 1)) << agent.log();
  sim_->mutate(R"({"background": {"rate_per_s": 10, "duration_s": 600, "create": 1, "update": 1, "delete": 3,
                   "types": ["Patient", "Appointment", "Condition", "MedicationRequest", "Claim", "Practitioner"]}})");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(300))) << agent.log();
  sim_->adminPost("/mutate/stop", json::Value::object());
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2, std::chrono::seconds(300))) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_NE(agent.log().find("event=relist_after_deletions"), std::string::npos) << agent.log();
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  EXPECT_EQ(compareNative(stored(), sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
}

// SIGKILL three times during the initial lists (cursor, subscriptions and feed state in the
// store), then incremental runs over created, updated and deleted records: exactly the
// simulator's records.
TEST_F(VendorApiTest, AthenaSigkillDuringInitialListThenFeedsAreExactlyOnce) {
  startSim("athenahealth", {"--client-id", "agent", "--client-secret", "ath-secret", "--patients", "30",
                            "--seed", "32"});
  sim_->setFaults(R"({"rules": [{"kind": "delay", "probability": 1.0, "delay_s": 0.01}]})");
  const std::string auth = R"({"type":"oauth2-client-credentials","client_id":"agent","client_secret":"ath-secret",
      "client_auth":"basic","scope":"athena/service/Athenanet.MDP.*","token_url":")" + sim_->tokenUrl() + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("athenahealth", auth, R"({"page_size": 4})")));
  for (size_t kills = 0; kills < 3; ++kills) {
    ASSERT_TRUE(agent.start()) << agent.log();
    const size_t pages = countOccurrences(agent.log(), "event=page_committed");
    ASSERT_TRUE(waitForEvents(agent, "page_committed", pages + 6 + kills * 6)) << agent.log();
    agent.kill();
    sim_->mutate(R"({"create": 3, "update": 4, "delete": 2})");
  }
  ASSERT_EQ(countOccurrences(agent.log(), "event=run_complete"), 0u) << "finished too early";
  sim_->clearFaults();
  syncMutateSync(agent, R"({"create": 5, "update": 10, "delete": 3})");
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  EXPECT_EQ(compareNative(stored(), sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
}

// ---- Allscripts Unity -----------------------------------------------------------------------

TEST_F(VendorApiTest, UnityChangedPatientsWithTokenLossAndInBandErrors) {
  startSim("allscripts", {"--client-id", "svcuser", "--client-secret", "unity-pw", "--patients", "7",
                          "--seed", "25"});
  const json::Value& r = sim_->ready();
  const std::string auth = R"({"type":"unity","username":"svcuser","password":"unity-pw","appname":")" +
                           r.getString("appname") + R"(","app_user":")" + r.getString("app_user") +
                           R"(","token_url":")" + sim_->tokenUrl() + R"("})";
  sim_->setFaults(R"({"rules": [{"kind": "revoke_token", "endpoint": "magic:GetPatient", "count": 1},
                                {"kind": "429", "endpoint": "magic:GetSchedule", "count": 1},
                                {"kind": "malformed_json", "endpoint": "magic:GetCharges", "count": 1}]})");
  AgentProcess agent(state(), agentConfigWith(adapter("allscripts", auth)));
  syncMutateSync(agent, R"({"create": 5, "update": 10})");
  const std::string log = agent.log();
  EXPECT_NE(log.find("event=reauthenticate"), std::string::npos) << log;
  EXPECT_NE(log.find("event=throttled_inband"), std::string::npos) << log;
  EXPECT_EQ(compareNative(stored(), sim_->expected("digest=1"), "vendor+json"),
            std::vector<std::string>{});
}

// Unity never signals deletions; the agent derives them from each changed patient's complete
// lists (and the global provider list): one deletion record per vanished record, none for a
// live one, also for a deleted patient's whole chart. The token is retired on stop.
TEST_F(VendorApiTest, UnityDeletionsAreCarriedAndTheTokenIsRetiredOnStop) {
  const std::string marker = uniqueMarker();
  startSim("allscripts", {"--client-id", "svcuser", "--client-secret", "unity-pw", "--patients", "8",
                          "--seed", "28", "--marker", marker});
  const json::Value& r = sim_->ready();
  const std::string auth = R"({"type":"unity","username":"svcuser","password":"unity-pw","appname":")" +
                           r.getString("appname") + R"(","app_user":")" + r.getString("app_user") +
                           R"(","token_url":")" + sim_->tokenUrl() + R"("})";
  AgentProcess agent(state(), agentConfigWith(adapter("allscripts", auth)));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"delete": 8, "types": ["Appointment", "Encounter", "Condition", "MedicationRequest", "ChargeItem"]})");
  sim_->mutate(R"({"delete": 1, "types": ["Patient"]})");
  sim_->mutate(R"({"update": 4})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);

  auto exp = sim_->expected("digest=1");
  const std::set<std::string> vanished = vanishedKeys(exp);
  EXPECT_GE(vanished.size(), 9u);
  auto records = stored();
  std::vector<std::string> twice;
  EXPECT_EQ(deletionKeys(records, &twice), vanished);
  EXPECT_EQ(twice, std::vector<std::string>{});
  EXPECT_EQ(compareNative(records, exp, "vendor+json"), std::vector<std::string>{});
  EXPECT_EQ(filesContaining(state(), marker), std::vector<std::filesystem::path>{});
  size_t with_marker = 0;
  for (const auto& rec : records) {
    with_marker += rec.payload.find(marker) != std::string::npos ? 1 : 0;
  }
  EXPECT_GE(with_marker, 7u);
  // RetireSecurityToken at shutdown (one token, never revoked in this run).
  auto stats = sim_->stats();
  EXPECT_EQ(stats.find("requests")->getInt("RetireSecurityToken"), 1) << json::serialize(stats);
  EXPECT_NE(agent.log().find("event=token_retired ok=yes"), std::string::npos) << agent.log();
}

}  // namespace
}  // namespace psa::test
