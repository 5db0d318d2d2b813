// The real `pms-agent run` relaying its queue to a real mosquitto over mutual TLS, seen by the
// real pms-cloud-sim: records queued before start arrive once each, a restart resends nothing
// already acknowledged, the retained P/status carries the status document, and a SIGKILL
// mid-drain loses nothing.
#include <gtest/gtest.h>

#include "agent_fixture.h"
#include "cloud_sim.h"
#include "cloudlink_harness.h"
#include "psa/store/sqlite_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAgentId = "practice-0042";

json::Value agentConfig(CloudEnv& env, const std::string& confirm = "broker") {
  const CertFiles& cert = env.tls.client(kAgentId);
  json::Value cfg = *json::parse(R"({"agent":{"id":"practice-0042","tenant":"acme-health","log_level":"debug"}})");
  json::Value cloud = json::Value::object();
  cloud.set("url", json::Value::string(env.broker->url()));
  cloud.set("ca_file", json::Value::string(env.tls.ca().cert.string()));
  cloud.set("cert_file", json::Value::string(cert.cert.string()));
  cloud.set("key_file", json::Value::string(cert.key.string()));
  cloud.set("confirm", json::Value::string(confirm));
  cfg.set("cloud", std::move(cloud));
  return cfg;
}

// Appends `n` records straight into the agent's store (as adapters would), agent stopped.
std::vector<std::string> prefill(const std::filesystem::path& state_dir, size_t n, size_t first = 0) {
  store::StoreOptions o;
  o.db_path = state_dir / "queue.db";
  o.key_file = state_dir / "queue.key";
  auto opened = store::SqliteStore::open(o);
  if (!opened) {
    throw std::runtime_error(opened.error().describe());
  }
  auto& st = **opened;
  std::vector<std::string> ids;
  store::AppendBatch batch;
  for (size_t i = 0; i < n; ++i) {
    store::Record r;
    r.source = "prefill";
    r.vendor = "cerner";
    r.kind = i % 2 ? store::Kind::appointment : store::Kind::patient;
    r.format = "hl7v2";
    r.payload = Sensitive<std::string>("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|CTRL" +
                                       std::to_string(first + i) + "|P|2.5\r");
    batch.records.push_back(std::move(r));
  }
  auto res = st.appendSync(std::move(batch));
  if (!res) {
    throw std::runtime_error(res.error().describe());
  }
  for (const auto& a : res->records) {
    ids.push_back(a.msg_id);
  }
  st.close();
  return ids;
}

TEST(AgentCloud, DeliversQueuedRecordsOnceAndPublishesStatus) {
  CloudEnv env({}, "psa-agent-cloud");
  CloudSim sim(env.simOptions());
  const auto state = env.tmp / "state";
  std::filesystem::create_directories(state);
  auto ids = prefill(state, 500);

  AgentProcess agent(state, agentConfig(env));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(sim.waitForUnique(500, 60s)) << agent.log();
  auto got = sim.unique();
  for (const auto& id : ids) {
    ASSERT_TRUE(got.count(id)) << id;
    EXPECT_TRUE(got[id].sha256_ok);
    EXPECT_EQ(got[id].source, "prefill");
  }
  EXPECT_EQ(got[ids[1]].kind, "appointment");

  const std::string status_topic = std::string("ps/acme-health/") + kAgentId + "/status";
  std::string status;
  ASSERT_TRUE(waitFor([&] {
    status = retainedMessage(env, status_topic);
    return status.find("\"state\":\"online\"") != std::string::npos &&
           status.find("\"queue\"") != std::string::npos;
  }, 20s)) << status;
  EXPECT_NE(status.find("\"agent_id\":\"practice-0042\""), std::string::npos) << status;

  ASSERT_EQ(agent.stop(), 0) << agent.log();
  // Clean shutdown leaves the Last Will's offline status.
  ASSERT_TRUE(waitFor([&] { return retainedMessage(env, status_topic).find("offline") != std::string::npos; }, 20s));

  // Restart: nothing acknowledged is sent again.
  const size_t before = sim.messages().size();
  ASSERT_TRUE(agent.start()) << agent.log();
  std::this_thread::sleep_for(2s);  // give a wrongly resending agent the chance to show it
  EXPECT_EQ(sim.messages().size(), before);
  EXPECT_EQ(agent.stop(), 0);
}

TEST(AgentCloud, SigkillMidDrainLosesNothing) {
  CloudEnv env({}, "psa-agent-cloud");
  CloudSim sim(env.simOptions());
  const auto state = env.tmp / "state";
  std::filesystem::create_directories(state);
  auto ids = prefill(state, 20000);

  AgentProcess agent(state, agentConfig(env));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor([&] { return sim.unique().size() >= 2000; }, 60s));
  agent.kill();
  const size_t seen_at_kill = sim.unique().size();
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(sim.waitForUnique(ids.size(), 120s)) << "got " << sim.unique().size() << " of " << ids.size();
  auto got = sim.unique();
  for (const auto& id : ids) {
    ASSERT_TRUE(got.count(id)) << id;
  }
  EXPECT_GE(got.size(), seen_at_kill);
  EXPECT_EQ(got.size(), ids.size());  // nothing the agent did not queue
  EXPECT_EQ(agent.stop(), 0);
}

TEST(AgentCloud, StatusShowsWhatTheBrokerAnnounced) {
  // A broker with small limits: `status` names them under CLOUD, `status --json` carries them.
  MosquittoOptions limits;
  limits.extra_conf = {"max_inflight_messages 5", "max_packet_size 200000",
                       "retain_available false"};
  CloudEnv env(limits, "psa-agent-broker");
  CloudSim sim(env.simOptions());
  const auto state = env.tmp / "state";
  std::filesystem::create_directories(state);
  auto ids = prefill(state, 50);
  AgentProcess agent(state, agentConfig(env));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(sim.waitForUnique(50, 60s)) << agent.log();
  CommandResult text;
  ASSERT_TRUE(waitFor(
      [&] {
        text = agent.cli({"status"});
        return text.output.find("broker: receive maximum 5") != std::string::npos;
      },
      30s))
      << text.output;
  EXPECT_NE(text.output.find("maximum packet 200000 bytes"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("no retained messages (status and will unretained)"),
            std::string::npos)
      << text.output;
  const CommandResult doc = agent.cli({"status", "--json"});
  auto parsed = json::parse(doc.output);
  ASSERT_TRUE(parsed) << doc.output;
  const json::Value* broker = parsed->find("cloud")->find("broker");
  ASSERT_NE(broker, nullptr) << doc.output;
  EXPECT_EQ(broker->getInt("receive_maximum"), 5);
  EXPECT_FALSE(broker->getBool("retain_available", true));
  EXPECT_NE(agent.log().find("event=link.retain_unavailable"), std::string::npos);
  EXPECT_EQ(agent.stop(), 0);
}

TEST(AgentCloud, AFiveMegabyteDocumentCrossesA32KiBBrokerInChunks) {
  // A PDF dropped as a file, larger than the broker's maximum packet: it goes in chunks and
  // arrives byte-identical, once.
  MosquittoOptions limits;
  limits.extra_conf = {"max_packet_size 32768"};
  CloudEnv env(limits, "psa-agent-chunks");
  CloudSim sim(env.simOptions());
  const auto state = env.tmp / "state";
  const auto intake = env.tmp / "intake";
  std::filesystem::create_directories(state);
  std::filesystem::create_directories(intake);
  json::Value cfg = agentConfig(env);
  json::Value drop = json::Value::object();
  drop.set("name", json::Value::string("scanned-docs"));
  drop.set("type", json::Value::string("file-drop"));
  drop.set("vendor", json::Value::string("nextgen"));
  drop.set("path", json::Value::string(intake.string()));
  drop.set("format", json::Value::string("opaque"));
  drop.set("kind", json::Value::string("clinical"));
  drop.set("stable_ms", json::Value::integer(100));
  drop.set("poll_interval_ms", json::Value::integer(100));
  cfg.set("adapters", json::Value::array({std::move(drop)}));
  AgentProcess agent(state, cfg);
  ASSERT_TRUE(agent.start()) << agent.log();

  std::string pdf = "%PDF-1.7\n";
  uint32_t x = 12345;
  while (pdf.size() < (5u << 20)) {
    x = x * 1103515245u + 12345u;
    pdf.push_back(static_cast<char>(x >> 24));
  }
  writeFile(env.tmp / "scan.pdf.part", pdf);
  std::filesystem::rename(env.tmp / "scan.pdf.part", intake / "scan.pdf");

  ASSERT_TRUE(sim.waitForUnique(1, 120s)) << agent.log();
  const SimMessage m = sim.unique().begin()->second;
  EXPECT_TRUE(m.sha256_ok);
  EXPECT_EQ(m.size, pdf.size());
  EXPECT_TRUE(m.payload == pdf) << "bytes differ";
  EXPECT_GT(m.chunks, 160u);  // 5 MiB in packets of at most 32 KiB
  EXPECT_EQ(m.kind, "clinical");
  CommandResult doc;
  ASSERT_TRUE(waitFor(
      [&] {
        doc = agent.cli({"status", "--json"});
        auto v = json::parse(doc.output);
        return v.ok() && v->find("cloud") != nullptr && v->find("cloud")->getInt("chunked") == 1 &&
               v->find("queue") != nullptr;
      },
      30s))
      << doc.output;
  EXPECT_EQ(agent.stop(), 0);
}

}  // namespace
}  // namespace psa::test
