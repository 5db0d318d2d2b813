// A broken invariant in the real agent, end to end. MLLP senders push messages with a PHI marker
// in PID-5 through `pms-agent run` to mosquitto (mutual TLS) and pms-cloud-sim while
// PSA_TEST_FAULT (psa/store/test_fault.h) makes the store writer (inside a transaction) or the
// cloud link (handling PUBACKs) throw. The process must exit with code 70 and the fatal line
// (place, error id, exception type) in its log, with neither the exception's text nor the marker
// anywhere in the agent's files. Restarted as systemd would restart it, the agent must deliver
// every message it had acknowledged AA to the cloud exactly once (one msg-id per control id),
// and take new messages again.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "cloud_sim.h"
#include "cloudlink_harness.h"
#include "mllp_senders.h"
#include "psa/store/fatal.h"
#include "psa/store/test_fault.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

struct FaultCase {
  const char* name;
  const char* spec;   ///< PSA_TEST_FAULT
  const char* place;  ///< where fatalInvariant() is called from
};

void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.spec; }

json::Value agentConfig(CloudEnv& env, int port) {
  json::Value cfg = mllpAgentConfig(port);
  const CertFiles& cert = env.tls.client("practice-0042");
  json::Value cloud = json::Value::object();
  cloud.set("url", json::Value::string(env.broker->url()));
  cloud.set("ca_file", json::Value::string(env.tls.ca().cert.string()));
  cloud.set("cert_file", json::Value::string(cert.cert.string()));
  cloud.set("key_file", json::Value::string(cert.key.string()));
  cfg.set("cloud", std::move(cloud));
  return cfg;
}

// MSH-10 of an adtMessage() payload.
std::string controlId(const std::string& payload) {
  const std::string before = "ADT^A01^ADT_A01|";
  const size_t at = payload.find(before);
  if (at == std::string::npos) {
    return {};
  }
  const size_t from = at + before.size();
  return payload.substr(from, payload.find('|', from) - from);
}

// control id -> the distinct msg-ids the cloud received it under.
std::map<std::string, std::set<std::string>> deliveredByControlId(const CloudSim& sim) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [msg_id, m] : sim.unique()) {
    out[controlId(m.payload)].insert(msg_id);
  }
  return out;
}

void sendAll(int port, const std::string& prefix, int senders, int per_sender,
             const std::string& family, AckLedger& ledger) {
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      std::vector<std::string> ids;
      for (int k = 0; k < per_sender; ++k) {
        ids.push_back(prefix + "S" + std::to_string(s) + "M" + std::to_string(k));
      }
      // A connection cut by the agent's exit ends the sender.
      sendPipelined(port, ids, s % 2 ? 1 : 8, ledger, family);
    });
  }
  for (auto& t : threads) {
    t.join();
  }
}

class AgentFatal : public ::testing::TestWithParam<FaultCase> {};

TEST_P(AgentFatal, ExitsWith70AndTheRestartDeliversEveryAcknowledgedMessageOnce) {
  const FaultCase& fault = GetParam();
  CloudEnv env({}, "psa-agent-fatal");
  CloudSim sim(env.simOptions());
  const int port = freePort();
  const std::string marker = uniqueMarker();
  AgentProcess agent(env.tmp / "state", agentConfig(env, port));
  agent.setEnvironment("PSA_TEST_FAULT", fault.spec);
  ASSERT_TRUE(agent.start()) << agent.log();

  // Senders run until the fault ends the process under them.
  AckLedger ledger;
  std::thread load([&] { sendAll(port, "F", 4, 5000, marker, ledger); });
  const auto status = agent.process()->wait(120s);
  load.join();
  ASSERT_TRUE(status.has_value()) << "the fault did not end the agent\n" << agent.log();
  EXPECT_EQ(*status, kExitFatalInvariant) << agent.log();
  EXPECT_TRUE(ledger.others().empty()) << ledger.others().front();
  ASSERT_GT(ledger.count(), 0u) << agent.log();

  const std::string log = agent.log();
  const std::string line = "event=fatal_invariant place=" + std::string(fault.place) +
                           " error_id=" + fatalErrorId(fault.place, "psa::TestFault") +
                           " exception=psa::TestFault exit_code=70";
  EXPECT_NE(log.find(line), std::string::npos)
      << log.substr(log.size() - std::min<size_t>(log.size(), 4000));
  EXPECT_EQ(log.find(kTestFaultWhat), std::string::npos);
  EXPECT_TRUE(filesContaining(agent.stateDir(), marker).empty());
  EXPECT_TRUE(filesContaining(agent.stateDir(), kTestFaultWhat).empty());

  // The supervisor's restart (the bug does not strike again this time).
  agent.setEnvironment("PSA_TEST_FAULT", "");
  ASSERT_TRUE(agent.start()) << agent.log();
  const std::set<std::string> acked = ledger.acked();
  const std::set<std::string> attempted = ledger.attempted();
  std::map<std::string, std::set<std::string>> got;
  const bool all = waitFor(
      [&] {
        got = deliveredByControlId(sim);
        for (const auto& id : acked) {
          if (!got.count(id)) {
            return false;
          }
        }
        return true;
      },
      120s);
  size_t missing = 0;
  for (const auto& id : acked) {
    missing += got.count(id) ? 0 : 1;
  }
  ASSERT_TRUE(all) << missing << " of " << acked.size() << " acknowledged messages not delivered";
  for (const auto& [id, msg_ids] : got) {
    EXPECT_EQ(msg_ids.size(), 1u) << id << " reached the cloud under " << msg_ids.size()
                                  << " msg-ids";
    EXPECT_TRUE(attempted.count(id)) << "never sent: " << id;
  }

  // It takes new messages again.
  AckLedger after;
  sendAll(port, "A", 2, 50, marker, after);
  EXPECT_EQ(after.count(), 100u);
  ASSERT_TRUE(waitFor(
      [&] {
        got = deliveredByControlId(sim);
        for (const auto& id : after.acked()) {
          if (!got.count(id)) {
            return false;
          }
        }
        return true;
      },
      60s));
  EXPECT_EQ(agent.stop(), 0) << agent.log();
  EXPECT_TRUE(filesContaining(agent.stateDir(), marker).empty());
}

INSTANTIATE_TEST_SUITE_P(
    Faults, AgentFatal,
    ::testing::Values(FaultCase{"StoreWriter", "store.writer@40", "store.writer"},
                      FaultCase{"CloudLink", "cloud_link.puback@20", "cloud_link.handler"}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace psa::test
