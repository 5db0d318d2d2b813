// Error PUBACKs and poison records against the real mosquitto: a record the broker refuses is
// dead-lettered with the reason (or retried, per code) while the records behind it flow.
#include <gtest/gtest.h>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

std::vector<store::Record> withPoison(size_t before, store::Record poison, size_t after) {
  auto a = makeRecords(before, 300, "a");
  auto b = makeRecords(after, 300, "b");
  a.push_back(std::move(poison));
  for (auto& r : b) {
    a.push_back(std::move(r));
  }
  return a;
}

TEST(CloudLinkPuback, AclDeniedRecordIsDeadLetteredWhileOthersFlow) {
  // mosquitto 2.0 answers an ACL-denied QoS 1 PUBLISH from an MQTT 5 client with PUBACK 0x87.
  MosquittoOptions broker;
  broker.acl = std::string("pattern deny ps/+/%u/up/billing\n") + kDefaultAcl;
  CloudEnv env(broker);
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto poison = makeRecords(1, 300, "poison", store::Kind::billing, "x12");
  auto ids = queue.append(withPoison(40, std::move(poison[0]), 40));
  const std::string poison_id = ids[40];
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(80, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().dead == 1; }, 10s)) << runner.status().toJson();
  const auto dead = queue.deadLetters();
  ASSERT_EQ(dead.count(poison_id), 1u);
  EXPECT_EQ(dead.at(poison_id), "puback 0x87 not authorized");
  EXPECT_EQ(sim.unique().count(poison_id), 0u);
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 80; }, 10s));
  ASSERT_TRUE(waitFor([&] { return runner.status().acked == 80; }, 10s))
      << runner.status().toJson();
  const auto st = runner.status();
  EXPECT_EQ(st.dead_lettered, 1u);
  EXPECT_EQ(st.reason_codes.at(0x87), 1u);
  EXPECT_EQ(st.acked, 80u);
  EXPECT_TRUE(st.connected);
  EXPECT_TRUE(runner.stop());
}

// The ACL denies the agent every up topic (a broker-side misconfiguration, not one bad record):
// nothing is dead-lettered, the link says why and keeps retrying, and once the ACL is fixed
// (reloaded without a restart) everything is delivered.
TEST(CloudLinkPuback, AclDenyingEverythingIsRetriedNotDeadLettered) {
  MosquittoOptions broker;
  broker.acl = std::string("pattern deny ps/+/%u/up/#\n") + kDefaultAcl;
  CloudEnv env(broker);
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(20));
  auto o = env.linkOptions("agent-1");
  o.retry_initial = 200ms;
  o.retry_max = 1s;
  LinkRunner runner(queue, o);
  runner.start();
  // mosquitto 2.0.11 answers the denied publish with PUBACK 0x87 and then closes the
  // connection, so each connection sees one denial; the link reconnects with back-off.
  ASSERT_TRUE(waitFor([&] {
    const auto st = runner.status();
    return st.reason_codes.count(0x87) && st.reason_codes.at(0x87) >= 5 && st.reconnects >= 5;
  }, 30s)) << runner.status().toJson();
  auto st = runner.status();
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_EQ(st.dead_lettered, 0u);
  EXPECT_GE(st.retried, 5u);
  EXPECT_EQ(st.acked, 0u);
  EXPECT_EQ(st.last_error.rfind("broker refused: not authorized to publish records", 0), 0u) << st.last_error;
  EXPECT_NE(st.last_error.find("ps/"), std::string::npos) << st.last_error;
  EXPECT_TRUE(sim.messages().empty());

  env.broker->reloadAcl(kDefaultAcl);
  ASSERT_TRUE(sim.waitForUnique(20, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 20; }, 10s));
  for (const auto& id : ids) {
    EXPECT_EQ(sim.unique().count(id), 1u) << id;
  }
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkPuback, RecordLargerThanBrokerMaximumPacketSizeGoesInChunksAmongTheOthers) {
  // Dead-lettered before chunking; now it crosses in chunks (cloudlink_chunking_test.cpp has
  // the details) and the records around it are not held up.
  MosquittoOptions broker;
  broker.extra_conf = {"max_packet_size 4000"};
  CloudEnv env(broker);
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto big = makeRecords(1, 10000, "big");
  auto ids = queue.append(withPoison(30, std::move(big[0]), 30));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(61, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 61; }, 10s));
  EXPECT_EQ(sim.unique().at(ids[30]).size, 10000u);
  EXPECT_GT(sim.unique().at(ids[30]).chunks, 2u);
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkPuback, RecordOverBrokerMessageSizeLimitDoesNotBlockOthers) {
  // message_size_limit is not announced in CONNACK; mosquitto answers PUBACK 0x95, which
  // libmosquitto 2.0.11 treats as a protocol error and drops the connection. The link must
  // find the record that kills the connection and dead-letter it.
  MosquittoOptions broker;
  broker.extra_conf = {"message_size_limit 2000"};
  CloudEnv env(broker);
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto big = makeRecords(1, 5000, "big");
  auto ids = queue.append(withPoison(30, std::move(big[0]), 30));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(60, 60s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().dead == 1; }, 30s)) << runner.status().toJson();
  EXPECT_EQ(queue.deadLetters().count(ids[30]), 1u);
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
