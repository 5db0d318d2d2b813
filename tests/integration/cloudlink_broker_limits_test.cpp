// What a broker announces (or refuses) in CONNACK, against a real mosquitto configured with
// small limits: a QoS 0 broker is not used and nothing is lost; a broker without retained
// messages gets an unretained will and status and the records flow; the records in flight
// stay within the broker's Receive Maximum; every limit shows in the link's status.
#include <gtest/gtest.h>

#include <algorithm>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

TEST(CloudLinkBrokerLimits, QosZeroBrokerIsRefusedAndRecordsStayQueued) {
  MosquittoOptions broker;
  broker.listener_conf = {"max_qos 0"};
  CloudEnv env(broker);
  TestStore queue(env.tmp / "store");
  queue.append(makeRecords(5));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(waitFor(
      [&] { return runner.status().last_error.rfind("broker grants QoS 0 only", 0) == 0; }, 30s))
      << runner.status().toJson();
  // It keeps trying (the broker may be fixed) with back-off, and never calls it connected.
  ASSERT_TRUE(waitFor([&] { return runner.status().reconnects >= 2; }, 30s))
      << runner.status().toJson();
  const cloudlink::LinkStatus s = runner.status();
  EXPECT_FALSE(s.connected);
  EXPECT_EQ(s.connects, 0u);
  EXPECT_EQ(s.published, 0u);
  EXPECT_NE(s.toJson().find("broker grants QoS 0 only"), std::string::npos);
  EXPECT_TRUE(runner.stop());
  const auto counts = queue.counts();
  EXPECT_EQ(counts.pending, 5u);
  EXPECT_EQ(counts.dead, 0u);
}

TEST(CloudLinkBrokerLimits, BrokerWithoutRetainedMessagesGetsUnretainedWillAndRecordsFlow) {
  MosquittoOptions broker;
  broker.extra_conf = {"retain_available false"};
  CloudEnv env(broker);
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(20));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(20, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 20; }, 10s));
  const cloudlink::LinkStatus s = runner.status();
  EXPECT_TRUE(s.connected);
  ASSERT_TRUE(s.broker.announced);
  EXPECT_FALSE(s.broker.retain_available);
  EXPECT_NE(cloudlink::brokerLimitsText(s.broker).find("no retained messages"), std::string::npos);
  // The first CONNECT (retained will) was refused; the link said why and came back at once.
  EXPECT_NE(s.last_error.find("retain not supported; reconnecting with an unretained will"),
            std::string::npos)
      << s.toJson();
  const auto unique = sim.unique();
  for (const auto& id : ids) {
    EXPECT_EQ(unique.count(id), 1u) << id;
  }
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkBrokerLimits, RecordsInFlightStayWithinReceiveMaximum) {
  MosquittoOptions broker;
  broker.extra_conf = {"max_inflight_messages 3", "max_packet_size 100000"};
  CloudEnv env(broker);
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(300));
  auto options = env.linkOptions("agent-1");
  options.max_inflight = 100;
  LinkRunner runner(queue, options);
  runner.start();
  uint64_t most_in_flight = 0;
  // Every status read while the records flow: the window never exceeds what the broker takes.
  ASSERT_TRUE(waitFor(
      [&] {
        most_in_flight = std::max(most_in_flight, runner.status().in_flight);
        return sim.unique().size() >= 300;
      },
      60s))
      << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 300; }, 10s));
  const cloudlink::LinkStatus s = runner.status();
  EXPECT_EQ(s.broker_receive_maximum, 3);
  EXPECT_EQ(s.broker.receive_maximum, 3);
  EXPECT_EQ(s.broker.maximum_packet_size, 100000u);
  EXPECT_GT(most_in_flight, 0u);
  EXPECT_LE(most_in_flight, 3u);
  const json::Value doc = *json::parse(s.toJson());
  EXPECT_EQ(doc.find("broker")->getInt("receive_maximum"), 3);
  EXPECT_EQ(doc.find("broker")->getInt("maximum_packet_size"), 100000);
  for (const auto& id : ids) {
    EXPECT_EQ(sim.unique().count(id), 1u) << id;
  }
  EXPECT_TRUE(runner.stop());
}

// Topic Alias Maximum: the agent sends each P/up/{kind} topic once per connection and the
// alias afterwards; the subscriber still sees the whole topic (the broker resolves it). A broker
// that allows none gets the topic every time.
void deliverWithAliases(int max_topic_alias, bool expect_aliases) {
  MosquittoOptions broker;
  broker.listener_conf = {"max_topic_alias " + std::to_string(max_topic_alias)};
  CloudEnv env(broker, "psa-alias");
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  std::vector<store::Record> records;
  for (store::Kind kind : {store::Kind::patient, store::Kind::appointment, store::Kind::billing}) {
    for (auto& r : makeRecords(20, 200, std::string(store::kindName(kind)), kind)) {
      records.push_back(std::move(r));
    }
  }
  auto ids = queue.append(std::move(records));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(60, 30s)) << runner.status().toJson();
  for (const auto& [id, m] : sim.unique()) {
    EXPECT_EQ(m.topic, "ps/" + std::string(kTenant) + "/agent-1/up/" + m.prop_kind) << id;
    EXPECT_EQ(m.kind, m.prop_kind) << id;
  }
  const cloudlink::LinkStatus s = runner.status();
  EXPECT_EQ(s.broker.topic_alias_maximum, max_topic_alias);
  if (expect_aliases) {
    // Three kinds: three publishes carried the topic, the others the alias alone.
    EXPECT_EQ(s.aliased, s.published - 3) << s.toJson();
  } else {
    EXPECT_EQ(s.aliased, 0u) << s.toJson();
  }
  EXPECT_EQ(s.reconnects, 0u) << "an alias the broker did not know would have cost the connection";
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkBrokerLimits, TopicAliasesReplaceTheTopicWhenTheBrokerAllowsThem) {
  deliverWithAliases(10, true);
}

TEST(CloudLinkBrokerLimits, NoTopicAliasesWhenTheBrokerAllowsNone) { deliverWithAliases(0, false); }

}  // namespace
}  // namespace psa::test
