// Records larger than the broker's Maximum Packet Size, against a real mosquitto with a small
// max_packet_size (announced in CONNACK, enforced by closing the connection of a client that
// sends a larger packet): each goes as chunks (design.md "Chunked records") and pms-cloud-sim
// joins them. Each record arrives exactly once and byte-identical, small records beside them
// go whole, and neither a broker restart nor a SIGKILLed sender in the middle of the chunks
// loses or doubles a record.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>

#include "cloudlink_harness.h"
#include "psa/store/json.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxPacket = 4096;

MosquittoOptions smallPackets() {
  MosquittoOptions o;
  o.extra_conf = {"max_packet_size " + std::to_string(kMaxPacket)};
  return o;
}

/// msg-id -> payload of what was queued.
std::map<std::string, std::string> queueRecords(TestStore& store,
                                                std::vector<store::Record> records) {
  std::map<std::string, std::string> sent;
  std::vector<std::string> payloads;
  for (const auto& r : records) {
    payloads.push_back(r.payload.reveal());
  }
  auto ids = store.append(std::move(records));
  for (size_t i = 0; i < ids.size(); ++i) {
    sent[ids[i]] = payloads[i];
  }
  return sent;
}

/// Every queued record arrived once (unique by msg-id), whole and byte-identical, and none
/// was joined twice.
void expectArrivedWhole(const CloudSim& sim, const std::map<std::string, std::string>& sent,
                        size_t large_from) {
  const auto unique = sim.unique();
  for (const auto& [id, payload] : sent) {
    auto it = unique.find(id);
    ASSERT_NE(it, unique.end()) << id;
    EXPECT_TRUE(it->second.sha256_ok) << id;
    EXPECT_EQ(it->second.payload.size(), payload.size()) << id;
    EXPECT_TRUE(it->second.payload == payload) << id << ": bytes differ";
    if (payload.size() >= large_from) {
      EXPECT_GT(it->second.chunks, 1u) << id;
    } else {
      EXPECT_EQ(it->second.chunks, 0u) << id;
    }
  }
  for (const SimMessage& m : sim.messages()) {
    EXPECT_FALSE(m.duplicate && m.chunks > 0) << "record " << m.msg_id << " joined twice";
  }
}

TEST(CloudLinkChunking, LargeRecordsGoInChunksSmallOnesWhole) {
  CloudEnv env(smallPackets(), "psa-chunks");
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto records = makeRecords(12, 64 * 1024, "big");
  for (auto& r : makeRecords(10, 300, "small")) {
    records.push_back(std::move(r));
  }
  const auto sent = queueRecords(queue, std::move(records));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 60s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 20s));
  expectArrivedWhole(sim, sent, 64 * 1024);
  const cloudlink::LinkStatus s = runner.status();
  EXPECT_EQ(s.broker.maximum_packet_size, kMaxPacket);
  EXPECT_EQ(s.chunked, 12u);
  EXPECT_GE(s.chunks_published, 12u * (64 * 1024 / kMaxPacket));
  EXPECT_EQ(s.dead_lettered, 0u);
  EXPECT_EQ(s.reconnects, 0u) << "no packet over the limit: mosquitto would have disconnected";
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkChunking, ReceiptModeReleasesAChunkedRecordOnItsOwnReceipt) {
  CloudEnv env(smallPackets(), "psa-chunks-receipt");
  auto sim_options = env.simOptions();
  sim_options.receipts = true;
  CloudSim sim(sim_options);
  TestStore queue(env.tmp / "store");
  const auto sent = queueRecords(queue, makeRecords(5, 20000, "big"));
  auto options = env.linkOptions("agent-1");
  options.confirm = cloudlink::Confirm::receipt;
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 60s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 30s))
      << runner.status().toJson();
  EXPECT_EQ(runner.status().retried, 0u) << "no receipt timed out";
  expectArrivedWhole(sim, sent, 20000);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkChunking, BrokerRestartInTheMiddleOfTheChunks) {
  CloudEnv env(smallPackets(), "psa-chunks-restart");
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  const auto sent = queueRecords(queue, makeRecords(80, 64 * 1024, "big"));
  auto options = env.linkOptions("agent-1");
  options.max_inflight = 40;  // chunks of several records in flight when the broker goes
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return runner.status().chunks_published >= 200; }, 60s))
      << runner.status().toJson();
  env.broker->stop();
  env.broker->start();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 120s))
      << sim.unique().size() << " " << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 30s));
  expectArrivedWhole(sim, sent, 64 * 1024);
  EXPECT_GE(runner.status().connects, 2u);
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkChunking, SenderKilledInTheMiddleOfTheChunks) {
  CloudEnv env(smallPackets(), "psa-chunks-kill");
  CloudSim sim(env.simOptions());
  TempDir dir("psa-chunks-kill-child");
  std::map<std::string, std::string> sent;
  {
    TestStore store(dir / "store");
    sent = queueRecords(store, makeRecords(120, 64 * 1024, "big"));
  }
  const CertFiles& cert = env.tls.client("agent-1");
  auto child = [&] {
    Process::Options p;
    p.argv = {binary("cloudlink_child").string(),
              "--db",
              (dir / "store" / "queue.db").string(),
              "--key-file",
              (dir / "store" / "queue.key").string(),
              "--url",
              env.broker->url(),
              "--ca",
              env.tls.ca().cert.string(),
              "--cert",
              cert.cert.string(),
              "--key",
              cert.key.string(),
              "--tenant",
              kTenant,
              "--agent",
              "agent-1",
              "--max-inflight",
              "40",
              "--status-file",
              (dir / "status.json").string()};
    p.stdout_file = dir / "child.out";
    return std::make_unique<Process>(std::move(p));
  };
  // SIGKILL while chunks are in flight: after some chunks went out, twice.
  for (int64_t kill_at : {150, 600}) {
    std::filesystem::remove(dir / "status.json");
    auto process = child();
    ASSERT_TRUE(waitFor(
        [&] {
          auto v = json::parse(readFile(dir / "status.json"));
          return v.ok() && v->getInt("chunks_published", 0) >= kill_at;
        },
        60s))
        << readFile(dir / "status.json") << readFile(dir / "child.out");
    process->signal(SIGKILL);
    ASSERT_TRUE(process->wait(10s).has_value());
  }
  auto last = child();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 120s)) << sim.unique().size();
  expectArrivedWhole(sim, sent, 64 * 1024);
  last->signal(SIGTERM);
  last->wait(20s);
  TestStore store(dir / "store");
  EXPECT_EQ(store.counts().dead, 0u);
}

}  // namespace
}  // namespace psa::test
