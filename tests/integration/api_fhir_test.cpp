// fhir-poll against the real FHIR simulators over real HTTPS: the real `pms-agent run`
// process, the real store, and /_sim/expected as the truth. Bulk (Epic, eCW), search and
// history (Meditech), faults, SIGKILL mid-sync, PHI markers.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

#include "api_test_util.h"
#include "psa/adapters/source.h"

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

TEST_F(FhirPollTest, SigkillDuringBulkExportThenRestartIsExactlyOnce) {
  startSim("epic", {"--resources", "8000", "--bulk-job-seconds", "0.2", "--bulk-file-max", "5000",
                    "--seed", "11"});
  // Slow file downloads a little so the kills land inside the export.
  sim_->setFaults(R"({"rules": [{"kind": "delay", "endpoint": "bulk-file", "probability": 1.0, "delay_s": 0.1}]})");
  // Observation is the largest file (~2,200 lines, 220 batches of 10): the later kills land
  // inside it even though the agent runs on for a few dozen batches before the kill arrives.
  const std::string types = R"(["Observation","Patient","Encounter","Condition","Procedure"])";
  auto cfg = agentConfigWith(adapter("epic", types, R"({"batch_records": 10, "group_id":")" +
                                                        sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  // Kill it three times in the middle of the export. The job cursor is committed every 4th
  // batch, so after 6 batches since a start at least one cursor inside the file is durable.
  for (size_t kills = 0; kills < 3; ++kills) {
    ASSERT_TRUE(agent.start()) << agent.log();
    const size_t batches = countOccurrences(agent.log(), "event=batch_committed");
    ASSERT_TRUE(waitForEvents(agent, "batch_committed", batches + 6)) << agent.log();
    agent.kill();
    ASSERT_EQ(countOccurrences(agent.log(), "event=run_complete"), 0u) << "finished too early";
  }
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(300))) << agent.log();
  const std::string log = agent.log();
  EXPECT_EQ(countOccurrences(log, "event=bulk_resume"), 3u) << log;
  EXPECT_EQ(countOccurrences(log, "event=bulk_started"), 1u) << log;  // one export, resumed
  size_t mid_file = 0;  // resumed inside a file (line > 0), not only between files
  for (size_t pos = log.find("event=bulk_resume"); pos != std::string::npos;
       pos = log.find("event=bulk_resume", pos + 1)) {
    const std::string line = log.substr(pos, log.find('\n', pos) - pos);
    mid_file += line.find(" line=0") == std::string::npos ? 1 : 0;
  }
  EXPECT_GE(mid_file, 2u) << log;  // the first may land between files
  sim_->clearFaults();
  sim_->mutate(R"({"create": 20, "update": 40, "delete": 10, "types": ["Encounter","Observation"]})");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 3, std::chrono::seconds(300))) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  EXPECT_EQ(held.duplicates(), 0u);
  EXPECT_EQ(compareWithExpected(held, sim_->expected("types=Patient,Encounter,Observation,Condition,Procedure")),
            std::vector<std::string>{});
}

TEST_F(FhirPollTest, SigkillDuringPagedSearchThenRestartIsExactlyOnce) {
  startSim("meditech", {"--resources", "4000", "--seed", "12"});
  // Slow pages a little so the run cannot finish before the third kill on a fast machine.
  sim_->setFaults(R"({"rules": [{"kind": "delay", "endpoint": "search:*", "probability": 1.0, "delay_s": 0.03}]})");
  auto cfg = agentConfigWith(adapter("meditech", R"(["Patient","Observation","Encounter"])",
                                     R"({"sync":"search","page_size":40})"));
  AgentProcess agent(state(), cfg);
  for (size_t kills = 0; kills < 3; ++kills) {
    ASSERT_TRUE(agent.start()) << agent.log();
    const size_t pages = countOccurrences(agent.log(), "event=page_committed");
    ASSERT_TRUE(waitForEvents(agent, "page_committed", pages + 5)) << agent.log();
    agent.kill();
  }
  ASSERT_EQ(countOccurrences(agent.log(), "event=run_complete"), 0u) << "finished too early";
  sim_->clearFaults();
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(300))) << agent.log();
  sim_->mutate(R"({"create": 10, "update": 30, "types": ["Patient","Observation","Encounter"]})");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 3, std::chrono::seconds(300))) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  EXPECT_EQ(held.duplicates(), 0u);
  EXPECT_EQ(compareWithExpected(held, sim_->expected("types=Patient,Observation,Encounter")),
            std::vector<std::string>{});
}

TEST_F(FhirPollTest, MalformedPageIsRetriedThenRunStopsWithWatermarkUnchanged) {
  startSim("meditech", {"--patients", "8", "--seed", "13"});
  sim_->setFaults(R"({"rules": [{"kind": "malformed_json", "endpoint": "search:Observation", "count": 1000}]})");
  auto cfg = agentConfigWith(adapter("meditech", R"(["Patient","Observation","Encounter"])",
                                     R"({"sync":"search","page_size":1000,"interval_s":30})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_failed", 1)) << agent.log();
  const std::string log = agent.log();
  // Retried (max_attempts = 5), then a clear error naming the call, the problem and its place.
  EXPECT_EQ(countOccurrences(log, "event=bad_body call=\"search Observation\""), 5u) << log;
  EXPECT_NE(log.find("error=\"search Observation: Bundle page: line 1 column "), std::string::npos) << log;
  EXPECT_NE(log.find("(after 5 attempts); Observation watermark unchanged"), std::string::npos) << log;
  EXPECT_TRUE(agent.running());
  // The status document says so too.
  auto st = adapterStatus(state() / "control.sock", "meditech-fhir");
  ASSERT_FALSE(st.isNull()) << "no status over the control socket";
  EXPECT_EQ(st.getString("state"), "failed") << json::serialize(st);
  EXPECT_FALSE(st.getBool("healthy", true));
  EXPECT_EQ(st.getString("last_error").rfind("search Observation: Bundle page: line 1 column ", 0), 0u)
      << json::serialize(st);
  EXPECT_EQ(st.find("counters")->getInt("bad_pages"), 5);
  ASSERT_EQ(agent.stop(), 0);
  auto wm = readWatermarks(state() / "queue.db", state() / "queue.key", "meditech-fhir");
  EXPECT_EQ(wm.count("search:Patient"), 1u);
  EXPECT_EQ(wm.count("search:Observation"), 0u);
  EXPECT_EQ(wm.count("search:Observation:run"), 0u);
  EXPECT_EQ(wm.count("search:Encounter"), 0u);
  // The page was never skipped: once the server answers properly, everything arrives.
  sim_->clearFaults();
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(compareWithExpected(analyzeFhir(stored()),
                                sim_->expected("types=Patient,Observation,Encounter")),
            std::vector<std::string>{});
}

TEST_F(FhirPollTest, WrongKeyGivesClearAuthErrorAndAgentKeepsRunning) {
  startSim("meditech", {"--patients", "3"});
  auto other = makeRsaClientKey(tmp_->path(), "not-registered");
  auto a = adapter("meditech", R"(["Patient"])", R"({"sync":"search"})");
  a.find("auth")->set("private_key_file", json::Value::string(other.private_pem.string()));
  AgentProcess agent(state(), agentConfigWith(a));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_failed", 1)) << agent.log();
  const std::string log = agent.log();
  EXPECT_NE(log.find("error=\"search Patient: token: HTTP 401 code=invalid_client"), std::string::npos) << log;
  EXPECT_TRUE(agent.running());
  EXPECT_EQ(agent.stop(), 0);
}

TEST_F(FhirPollTest, PhiMarkerNeverReachesStateDirInClear) {
  const std::string marker = uniqueMarker();
  startSim("epic", {"--patients", "10", "--marker", marker, "--bulk-job-seconds", "0.2"});
  auto cfg = agentConfigWith(adapter("epic", R"(["Patient","Encounter","Observation"])",
                                     R"({"group_id":")" + sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 2)) << agent.log();
  // Checked while running too: the WAL holds the latest pages.
  EXPECT_EQ(filesContaining(state(), marker), std::vector<std::filesystem::path>{});
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(filesContaining(state(), marker), std::vector<std::filesystem::path>{});
  // The test can fail: the marker is really in what was synced.
  size_t with_marker = 0;
  for (const auto& r : stored()) {
    with_marker += r.payload.find(marker) != std::string::npos ? 1 : 0;
  }
  EXPECT_GT(with_marker, 10u);
}

TEST_F(FhirPollTest, EclinicalworksBulkStaysUnderDocumentedRateLimit) {
  // eCW: 250 requests/minute per practice, 429 without Retry-After. The limit is lowered to
  // 20 per 10 s here so the client has to pace itself within the test's time.
  startSim("eclinicalworks", {"--patients", "10", "--bulk-job-seconds", "0.2", "--bulk-retry-after", "1",
                              "--bulk-file-max", "5", "--rate-limit", "20/10"});
  auto cfg = agentConfigWith(adapter("eclinicalworks", R"(["Patient","Encounter","Observation","ChargeItem"])",
                                     R"({"group_id":"ecw-all-patients","rate_limits":[{"requests":20,"per_s":10}]})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(240))) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  EXPECT_EQ(stats.getInt("bulk_poll_too_early", -1), 0) << json::serialize(stats);
  EXPECT_GT(stats.getInt("requests_total", 0), 20);  // more than one window's worth: paced
  EXPECT_EQ(compareWithExpected(analyzeFhir(stored()),
                                sim_->expected("types=Patient,Encounter,Observation,ChargeItem")),
            std::vector<std::string>{});
}

// The simulator's arrival log of rate-limited requests: when each arrived and when its
// answer was ready (Unix seconds, the same clock the agent's fixed windows use).
struct Arrival {
  double received = 0;
  double answered = 0;
};

std::vector<Arrival> apiArrivals(PmsSim& sim) {
  std::vector<Arrival> out;
  const json::Value doc = sim.adminGet("/arrivals?scope=api");
  for (const auto& a : doc.find("arrivals")->items()) {
    out.push_back({a.find("received")->asNumber(), a.find("answered")->asNumber()});
  }
  return out;
}

// The most requests one window of `w` seconds holds, counting each request at one instant
// (`at`): sliding windows [t, t + w), or fixed ones [k*w, (k+1)*w) of the epoch.
size_t maxInWindow(const std::vector<Arrival>& log, double Arrival::*at, double w, bool fixed) {
  std::vector<double> t;
  for (const auto& a : log) {
    t.push_back(a.*at);
  }
  std::sort(t.begin(), t.end());
  size_t best = 0;
  for (size_t i = 0, j = 0; i < t.size(); ++i) {
    const double end = fixed ? (std::floor(t[i] / w) + 1) * w : t[i] + w;
    if (fixed && i > 0 && std::floor(t[i - 1] / w) == std::floor(t[i] / w)) {
      continue;  // counted from the window's first request
    }
    j = std::max(j, i);
    while (j < t.size() && t[j] < end) {
      ++j;
    }
    best = std::max(best, j - i);
  }
  return best;
}

// The most requests whose [received, answered] touches one window: the bound that holds
// whichever instant in between a vendor counts at.
size_t maxTouching(const std::vector<Arrival>& log, double w, bool fixed) {
  size_t best = 0;
  for (const auto& s : log) {
    const double start = fixed ? std::floor(s.answered / w) * w : s.answered;
    size_t n = 0;
    for (const auto& o : log) {
      n += (o.answered >= start && o.received < start + w) ? 1 : 0;
    }
    best = std::max(best, n);
  }
  return best;
}

// A slow eCW: some search answers take half a second, others a fifth or nothing, so requests
// straddle the limit's window boundaries. The agent charges a request when its answer arrives
// (having held its place since the send), so no window of the server's log holds more than
// the limit, whether the server counts requests when they arrive or when it answers them.
void slowAnswers(PmsSim& sim, double p_half_second, double p_fifth) {
  json::Value rules = json::Value::array();
  for (const auto& [p, d] : {std::pair{p_half_second, 0.5}, std::pair{p_fifth, 0.2}}) {
    if (p > 0) {
      json::Value r = json::Value::object();
      r.set("kind", json::Value::string("delay"));
      r.set("endpoint", json::Value::string("search:*"));
      r.set("probability", json::Value::number(p));
      r.set("delay_s", json::Value::number(d));
      rules.push(std::move(r));
    }
  }
  json::Value body = json::Value::object();
  body.set("rules", std::move(rules));
  sim.adminPost("/faults", body);
}

void expectWithinLimitAtEveryBoundary(PmsSim& sim, size_t limit, double w, bool fixed,
                                      size_t windows) {
  std::vector<Arrival> log;
  ASSERT_TRUE(waitFor(
      [&] {
        log = apiArrivals(sim);
        return log.size() > 1 && log.back().answered - log.front().received >= w * windows;
      },
      std::chrono::seconds(180)))
      << log.size() << " requests";
  const size_t by_arrival = maxInWindow(log, &Arrival::received, w, fixed);
  const size_t by_answer = maxInWindow(log, &Arrival::answered, w, fixed);
  const size_t touching = maxTouching(log, w, fixed);
  EXPECT_LE(by_arrival, limit);
  EXPECT_LE(by_answer, limit);
  EXPECT_LE(touching, limit);
  // The limit, not the slow answers, paced the agent: its busiest windows were (nearly) full.
  EXPECT_GE(by_answer, limit * 3 / 4) << log.size() << " requests";
  std::printf("%zu requests; most in one %s window: %zu by arrival, %zu by answer, %zu touching\n",
              log.size(), fixed ? "fixed" : "sliding", by_arrival, by_answer, touching);
  auto stats = sim.stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
}

TEST_F(FhirPollTest, EclinicalworksSlowAnswersStayWithinARollingLimitAtEveryBoundary) {
  // eCW's 250/min scaled down to 20 per 5 s, counted by the simulator in any rolling window.
  startSim("eclinicalworks",
           {"--patients", "6", "--rate-limit", "20/5", "--rate-limit-mode", "rolling"});
  slowAnswers(*sim_, 0.15, 0.4);
  auto cfg = agentConfigWith(adapter("eclinicalworks", kUsCoreTypes,
                                     R"({"sync":"search","page_size":5,"interval_s":0.05,
                                         "rate_limits":[{"requests":20,"per_s":5}]})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  expectWithinLimitAtEveryBoundary(*sim_, 20, 5.0, false, 7);
  ASSERT_EQ(agent.stop(), 0) << agent.log();
}

TEST_F(FhirPollTest, EclinicalworksSlowAnswersStayWithinAFixedWindowLimitAtEveryBoundary) {
  // The same with windows aligned to the clock (like DrChrono's top-of-the-hour limit), here 4
  // per second: four answers take about a second, so some windows fill early and others end
  // with a request in flight. One sent just before the top of a window and answered after it
  // counts in the new window too (charged at the send only, the new window got 4 more).
  startSim("eclinicalworks",
           {"--patients", "6", "--rate-limit", "4/1", "--rate-limit-mode", "fixed"});
  slowAnswers(*sim_, 0.4, 0);
  auto cfg = agentConfigWith(adapter("eclinicalworks", kUsCoreTypes,
                                     R"({"sync":"search","page_size":5,"interval_s":0.05,
                                         "rate_limits":[{"requests":4,"per_s":1,"fixed":true,"name":"s1"}]})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  expectWithinLimitAtEveryBoundary(*sim_, 4, 1.0, true, 40);
  ASSERT_EQ(agent.stop(), 0) << agent.log();
}

TEST_F(FhirPollTest, CernerClientSecretBasicAndBulkJobFailureStartsOver) {
  startSim("cerner", {"--patients", "6", "--bulk-job-seconds", "0.2", "--client-secret", "s3cret!&"});
  sim_->setFaults(R"({"rules": [{"kind": "bulk_fail", "endpoint": "bulk-status", "count": 1},
                                {"kind": "status", "status": 502, "endpoint": "bulk-file", "count": 2}]})");
  auto a = adapter("cerner", R"(["Patient","Encounter"])",
                   R"({"group_id":")" + sim_->ready().getString("group_id") + R"("})");
  json::Value auth = *json::parse(R"({"type":"oauth2-client-credentials","client_id":"agent",
                                      "client_secret":"s3cret!&","client_auth":"basic",
                                      "scope":"system/Patient.read system/Encounter.read system/Group.read"})");
  auth.set("token_url", json::Value::string(sim_->tokenUrl()));
  a.set("auth", auth);
  AgentProcess agent(state(), agentConfigWith(a));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  const std::string log = agent.log();
  EXPECT_NE(log.find("bulk export failed on the server"), std::string::npos) << log;
  EXPECT_EQ(compareWithExpected(analyzeFhir(stored()), sim_->expected("types=Patient,Encounter")),
            std::vector<std::string>{});
  // `config show` masks the secret.
  auto shown = agent.cli({"config", "show"});
  EXPECT_EQ(shown.output.find("s3cret"), std::string::npos) << shown.output;
  EXPECT_NE(shown.output.find("********"), std::string::npos) << shown.output;
}

TEST_F(FhirPollTest, Es384KeyAndTokenExpiryMidRun) {
  auto ec = makeEcP384ClientKey(tmp_->path(), "ec");
  startSim("epic", {"--patients", "8", "--client-public-key", ec.public_pem.string(),
                    "--token-ttl", "2", "--bulk-job-seconds", "1"});
  auto a = adapter("epic", R"(["Patient","Observation"])",
                   R"({"group_id":")" + sim_->ready().getString("group_id") + R"("})");
  a.find("auth")->set("private_key_file", json::Value::string(ec.private_pem.string()));
  a.find("auth")->set("alg", json::Value::string("ES384"));
  a.find("auth")->erase("token_url");  // discovered from .well-known/smart-configuration
  AgentProcess agent(state(), agentConfigWith(a));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 3)) << agent.log();
  sim_->adminPost("/revoke-tokens", json::Value::object());
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 5)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto stats = sim_->stats();
  EXPECT_GE(stats.getInt("tokens_issued", 0), 3);
  EXPECT_GE(stats.find("requests")->getInt("smart-config"), 1);
  EXPECT_EQ(compareWithExpected(analyzeFhir(stored()), sim_->expected("types=Patient,Observation")),
            std::vector<std::string>{});
}

TEST_F(FhirPollTest, AthenahealthBulkWithDocumentedLimits) {
  // athenahealth FHIR: 100 requests/s, 50 token requests/min (the vendor defaults the adapter
  // applies), Bulk Group export; the limits are what the simulator enforces by default.
  startSim("athenahealth-fhir", {"--patients", "8", "--bulk-job-seconds", "0.2", "--bulk-file-max", "3",
                                 "--token-ttl", "1"});
  auto cfg = agentConfigWith(adapter("athenahealth", R"(["Patient","Encounter","Appointment"])",
                                     R"({"group_id":")" + sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 3)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("rate_limit_violations", -1), 0) << json::serialize(stats);
  EXPECT_GE(stats.getInt("tokens_issued", 0), 2);
  EXPECT_EQ(compareWithExpected(analyzeFhir(stored()), sim_->expected("types=Patient,Encounter,Appointment")),
            std::vector<std::string>{});
}

TEST_F(FhirPollTest, PracticeFusionAndTebraSearchWithClientSecrets) {
  for (const auto& [sim_vendor, agent_vendor, method] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"practice-fusion", "practice-fusion", "basic"}, {"tebra-fhir", "kareo", "post"}}) {
    SCOPED_TRACE(sim_vendor);
    startSim(sim_vendor, {"--patients", "6", "--client-secret", "pf-secret"});
    auto a = adapter(agent_vendor, R"(["Patient","Observation","Practitioner"])", R"({"page_size":7})");
    json::Value auth = *json::parse(R"({"type":"oauth2-client-credentials","client_id":"agent",
                                        "client_secret":"pf-secret","scope":"system/*.read"})");
    auth.set("client_auth", json::Value::string(method));
    auth.set("token_url", json::Value::string(sim_->tokenUrl()));
    a.set("auth", auth);
    const auto dir = state() / sim_vendor;
    AgentProcess agent(dir, agentConfigWith(a));
    ASSERT_TRUE(agent.start()) << agent.log();
    ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
    sim_->mutate(R"({"create": 3, "update": 6, "types": ["Patient","Observation"]})");
    ASSERT_TRUE(waitForEvents(agent, "run_complete", 3)) << agent.log();
    ASSERT_EQ(agent.stop(), 0);
    EXPECT_NE(agent.log().find("sync=search"), std::string::npos);  // the vendor default
    EXPECT_EQ(compareWithExpected(analyzeFhir(readStoredRecords(dir / "queue.db", dir / "queue.key")),
                                  sim_->expected("types=Patient,Observation,Practitioner")),
              std::vector<std::string>{});
    sim_.reset();
  }
}

// Epic refuses population searches: the Group's members, then Patient?_id= and T?patient= per
// member with _lastUpdated on the next passes, through 429s with Retry-After.
TEST_F(FhirPollTest, EpicPatientFanOutFullThenIncrementalEqualsExpected) {
  startSim("epic", {"--patients", "12", "--seed", "21", "--page-size", "4"});
  sim_->setFaults(R"({"rules": [{"kind": "429", "endpoint": "search:Observation", "count": 2,
                                 "retry_after": "seconds", "retry_after_s": 1}]})");
  const std::string types = R"(["Patient","Encounter","Observation","Condition"])";
  auto cfg = agentConfigWith(adapter("epic", types,
                                     R"({"sync":"patient-search","page_size":4,"group_id":")" +
                                         sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  // Search shows no deletions, so only creates, updates and a merge here.
  sim_->mutate(R"({"create": 6, "update": 12, "merge": 1,
                   "types": ["Encounter","Observation","Condition"]})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  const std::string log = agent.log();
  EXPECT_NE(log.find("sync=patient-search"), std::string::npos) << log;
  EXPECT_NE(log.find("event=throttled"), std::string::npos) << log;
  auto held = analyzeFhir(stored());
  EXPECT_EQ(held.duplicates(), 0u);
  EXPECT_EQ(
      compareWithExpected(held, sim_->expected("types=Patient,Encounter,Observation,Condition")),
      std::vector<std::string>{});
  auto stats = sim_->stats();
  EXPECT_EQ(stats.getInt("retry_after_violations", -1), 0);
  EXPECT_GE(stats.find("requests")->getInt("group-read"), 3);
  EXPECT_EQ(stats.find("requests")->getInt("bulk-kickoff"), 0);
  // Later passes ask only for what changed since the previous pass's start.
  auto wm = readWatermarks(state() / "queue.db", state() / "queue.key", "epic-fhir");
  EXPECT_EQ(wm.count("fanout:since:Patient"), 1u);
  EXPECT_EQ(wm.count("fanout:since:Observation"), 1u);
  EXPECT_EQ(wm.count("fanout:run"), 0u);
}

// Cerner (opaque pageContext paging, no Bundle.total): SIGKILL three times in the middle of the
// fan-out; every restart continues at the page after the last durable one, and nothing is lost
// or stored twice.
TEST_F(FhirPollTest, CernerSigkillDuringPatientFanOutThenRestartContinues) {
  startSim("cerner", {"--patients", "24", "--seed", "22"});
  // Slow pages a little so the run cannot finish before the third kill on a fast machine.
  sim_->setFaults(
      R"({"rules": [{"kind": "delay", "endpoint": "search:*", "probability": 1.0, "delay_s": 0.05}]})");
  const std::string types = R"(["Patient","Encounter","Observation","Condition"])";
  auto cfg = agentConfigWith(adapter("cerner", types,
                                     R"({"sync":"patient-search","page_size":3,"group_id":")" +
                                         sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  for (size_t kills = 0; kills < 3; ++kills) {
    ASSERT_TRUE(agent.start()) << agent.log();
    const size_t pages = countOccurrences(agent.log(), "event=page_committed");
    ASSERT_TRUE(waitForEvents(agent, "page_committed", pages + 8)) << agent.log();
    agent.kill();
  }
  ASSERT_EQ(countOccurrences(agent.log(), "event=run_complete"), 0u) << "finished too early";
  sim_->clearFaults();
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1, std::chrono::seconds(300))) << agent.log();
  const std::string log = agent.log();
  // One pass, started once and resumed after each kill (never from the first patient again).
  EXPECT_EQ(countOccurrences(log, "event=fanout_started"), 1u) << log;
  EXPECT_EQ(countOccurrences(log, "event=fanout_resume"), 3u) << log;
  EXPECT_EQ(countOccurrences(log, "at_patient=\"\""), 0u) << log;
  sim_->mutate(R"({"create": 8, "update": 16, "types": ["Patient","Encounter","Observation"]})");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 3, std::chrono::seconds(300))) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  EXPECT_EQ(held.duplicates(), 0u);
  EXPECT_EQ(
      compareWithExpected(held, sim_->expected("types=Patient,Encounter,Observation,Condition")),
      std::vector<std::string>{});
}

// athenahealth FHIR: the fan-out carries ah-practice on every request (search_params) and stays
// within the documented 100 requests/s.
TEST_F(FhirPollTest, AthenahealthPatientFanOutWithPracticeParameter) {
  startSim("athenahealth-fhir", {"--patients", "8", "--seed", "26"});
  const std::string types = R"(["Patient","Encounter","Condition"])";
  auto cfg = agentConfigWith(adapter(
      "athenahealth", types,
      R"({"sync":"patient-search","search_params":{"ah-practice":"Organization/a-1.Practice-195900"},
          "group_id":")" +
          sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"create": 3, "update": 6, "types": ["Encounter","Condition"]})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  auto held = analyzeFhir(stored());
  EXPECT_EQ(held.duplicates(), 0u);
  EXPECT_EQ(compareWithExpected(held, sim_->expected("types=Patient,Encounter,Condition")),
            std::vector<std::string>{});
  EXPECT_EQ(sim_->stats().getInt("rate_limit_violations", -1), 0);
}

// A search never shows a deletion: in their default search mode Meditech and Practice Fusion
// find them by the periodic reconcile (complete id listings), each carried exactly once.
TEST_F(FhirPollTest, MeditechAndPracticeFusionSearchCarryDeletionsByReconcile) {
  for (const std::string vendor : {"meditech", "practice-fusion"}) {
    SCOPED_TRACE(vendor);
    startSim(vendor, {"--patients", "8", "--seed", "23"});
    const std::string types = R"(["Patient","Encounter","Observation","Condition"])";
    const auto dir = state() / vendor;
    AgentProcess agent(dir, agentConfigWith(adapter(vendor, types, R"({"reconcile_s":1})")));
    ASSERT_TRUE(agent.start()) << agent.log();
    ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
    // No creates: every deleted resource is one the agent holds.
    sim_->mutate(R"({"update": 6, "delete": 6, "types": ["Encounter","Observation","Condition"]})");
    // Two reconciles after the change: the first carries the deletions, the second none again.
    const size_t reconciled = countOccurrences(agent.log(), "event=reconciled");
    ASSERT_TRUE(waitForEvents(agent, "reconciled", reconciled + 2)) << agent.log();
    ASSERT_EQ(agent.stop(), 0);
    const std::string log = agent.log();
    EXPECT_NE(log.find("sync=search"), std::string::npos) << log;  // the vendor default
    auto held = analyzeFhir(readStoredRecords(dir / "queue.db", dir / "queue.key"));
    EXPECT_EQ(held.deleted.size(), 6u);
    EXPECT_EQ(held.duplicates(), 0u);
    EXPECT_EQ(
        compareWithExpected(held, sim_->expected("types=Patient,Encounter,Observation,Condition")),
        std::vector<std::string>{});
    auto wm = readWatermarks(dir / "queue.db", dir / "queue.key", vendor + "-fhir");
    for (const auto& key : held.deleted) {
      EXPECT_EQ(wm.count("known:" + key), 0u) << key;
    }
    sim_.reset();
  }
}

// `export`: patient kicks off {base}/Patient/$export, system {base}/$export; both carry
// everything of the types, incrementally.
TEST_F(FhirPollTest, EpicPatientAndSystemLevelExports) {
  for (const std::string level : {"patient", "system"}) {
    SCOPED_TRACE(level);
    startSim("epic", {"--patients", "6", "--bulk-job-seconds", "0.2", "--seed", "24"});
    const auto dir = state() / level;
    AgentProcess agent(dir,
                       agentConfigWith(adapter("epic", R"(["Patient","Encounter","Practitioner"])",
                                               R"({"export":")" + level + R"("})")));
    ASSERT_TRUE(agent.start()) << agent.log();
    ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
    sim_->mutate(R"({"create": 2, "update": 4, "delete": 2, "types": ["Encounter"]})");
    const size_t runs = countOccurrences(agent.log(), "event=run_complete");
    ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
    ASSERT_EQ(agent.stop(), 0);
    const std::string base_path = sim_->ready()
                                      .getString("fhir_base")
                                      .substr(sim_->ready().getString("fhir_base").find("/api/"));
    const std::string want = base_path + (level == "patient" ? "/Patient/$export" : "/$export");
    size_t kickoffs = 0;
    const json::Value arrivals = sim_->adminGet("/arrivals");
    for (const auto& a : arrivals.find("arrivals")->items()) {
      if (a.getString("endpoint") == "bulk-kickoff") {
        ++kickoffs;
        EXPECT_EQ(a.getString("path"), want);
      }
    }
    EXPECT_GE(kickoffs, 3u);
    EXPECT_EQ(
        compareWithExpected(analyzeFhir(readStoredRecords(dir / "queue.db", dir / "queue.key")),
                            sim_->expected("types=Patient,Encounter,Practitioner")),
        std::vector<std::string>{});
    sim_.reset();
  }
}

// vendor "nextgen" without `sync`: the default is Bulk (NextGen offers Bulk FHIR to backend
// clients; its FHIR search is patient-access only and refuses population searches).
TEST_F(FhirPollTest, NextGenFhirDefaultsToBulk) {
  startSim("nextgen-fhir", {"--patients", "6", "--bulk-job-seconds", "0.2", "--seed", "25"});
  auto cfg =
      agentConfigWith(adapter("nextgen", R"(["Patient","Encounter","Observation"])",
                              R"({"group_id":")" + sim_->ready().getString("group_id") + R"("})"));
  AgentProcess agent(state(), cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitForEvents(agent, "run_complete", 1)) << agent.log();
  sim_->mutate(R"({"create": 2, "update": 4, "delete": 2, "types": ["Encounter","Observation"]})");
  const size_t runs = countOccurrences(agent.log(), "event=run_complete");
  ASSERT_TRUE(waitForEvents(agent, "run_complete", runs + 2)) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_NE(agent.log().find("sync=bulk"), std::string::npos) << agent.log();
  auto held = analyzeFhir(stored());
  EXPECT_EQ(compareWithExpected(held, sim_->expected("types=Patient,Encounter,Observation")),
            std::vector<std::string>{});
  EXPECT_GT(held.deleted.size(), 0u);
}

TEST_F(FhirPollTest, CheckReportsCapabilityStatementTokenAndTlsTrouble) {
  startSim("epic", {"--patients", "2"});
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  const auto* factory = registry.find("fhir-poll");
  ASSERT_NE(factory, nullptr);
  auto a = adapter("epic", R"(["Patient"])", R"({"group_id":"g"})");
  auto results = factory->check(a, state());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].level, adapters::CheckResult::Level::ok);
  EXPECT_EQ(results[0].name, "adapter epic-fhir fhir");
  EXPECT_EQ(results[0].text.rfind("CapabilityStatement FHIR 4.0.1, ", 0), 0u) << results[0].text;
  EXPECT_EQ(results[1].level, adapters::CheckResult::Level::ok);
  EXPECT_EQ(results[1].text, "token issued (SMART backend services (RS384) as client agent)");
  // The same through `pms-agent check` (the technician's view).
  {
    AgentProcess cli(state(), agentConfigWith(a));
    writeFile(cli.configFile(), json::serialize(cli.config(), true));
    auto out = cli.cli({"check"});
    EXPECT_NE(out.output.find("adapter epic-fhir fhir"), std::string::npos) << out.output;
    EXPECT_NE(out.output.find("CapabilityStatement FHIR 4.0.1"), std::string::npos) << out.output;
    EXPECT_NE(out.output.find("token issued (SMART backend services (RS384) as client agent)"),
              std::string::npos)
        << out.output;
  }
  // A CA that did not sign the server: a clear failure naming what to check.
  a.set("ca_file", json::Value::string(tls_->otherCa().cert.string()));
  results = factory->check(a, state());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].level, adapters::CheckResult::Level::fail);
  EXPECT_EQ(results[0].name, "adapter epic-fhir reachable");
  EXPECT_NE(results[0].text.find("certificate verify failed"), std::string::npos) << "[" << results[0].text << "]";
  EXPECT_NE(results[0].text.find("- check base_url, network and ca_file"), std::string::npos);
  // A key the server does not know.
  auto other = makeRsaClientKey(tmp_->path(), "other");
  a.set("ca_file", json::Value::string(tls_->ca().cert.string()));
  a.find("auth")->set("private_key_file", json::Value::string(other.private_pem.string()));
  results = factory->check(a, state());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1].level, adapters::CheckResult::Level::fail);
  EXPECT_EQ(results[1].text.rfind("token: HTTP 401 code=invalid_client", 0), 0u) << results[1].text;
}

}  // namespace
}  // namespace psa::test
