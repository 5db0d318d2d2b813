// cloud.urls against two real mosquitto brokers (two nodes of a "cluster", each with its own
// simulator): the link connects to either, fails over to the other when its node dies, and
// every record arrives (duplicates only with the same msg-id); an endpoint that is down from
// the start costs attempts, not records.
#include <gtest/gtest.h>

#include <set>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

struct TwoNodes {
  TwoNodes()
      : env({}, "psa-failover"),
        node_b(MosquittoBroker::withMaterial(env.tls, env.tmp / "broker-b")),
        sim_a(env.simOptions("sim-a")),
        sim_b(simOn(*node_b)) {}

  CloudSim simOn(MosquittoBroker& broker) {
    CloudSimOptions o = cloudSimOptions(broker.url(), env.tls, env.tmp / "sim-b");
    o.client_id = "cloud-sim-b";
    return CloudSim(o);
  }

  /// Every msg-id either simulator received.
  std::set<std::string> received() const {
    std::set<std::string> ids;
    for (const CloudSim* sim : {&sim_a, &sim_b}) {
      for (const auto& [id, m] : sim->unique()) {
        ids.insert(id);
      }
    }
    return ids;
  }

  CloudEnv env;
  std::unique_ptr<MosquittoBroker> node_b;
  CloudSim sim_a;
  CloudSim sim_b;
};

TEST(CloudLinkFailover, LostNodeMovesTheLinkToTheOtherAndLosesNothing) {
  TwoNodes nodes;
  TestStore queue(nodes.env.tmp / "store");
  auto ids = queue.append(makeRecords(50, 256, "before"));
  auto options = nodes.env.linkOptions("agent-1");
  options.url.clear();
  options.urls = {nodes.env.broker->url(), nodes.node_b->url()};
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return nodes.received().size() == 50; }, 30s))
      << runner.status().toJson();
  const std::string first = runner.status().url;
  ASSERT_TRUE(first == options.urls[0] || first == options.urls[1]) << first;
  MosquittoBroker& dying = first == options.urls[0] ? *nodes.env.broker : *nodes.node_b;

  dying.kill();
  auto more = queue.append(makeRecords(50, 256, "after"));
  ids.insert(ids.end(), more.begin(), more.end());
  ASSERT_TRUE(waitFor(
      [&] {
        const auto s = runner.status();
        return s.connected && s.url != first;
      },
      30s))
      << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 100; }, 30s))
      << runner.status().toJson();
  const std::set<std::string> got = nodes.received();
  for (const auto& id : ids) {
    EXPECT_EQ(got.count(id), 1u) << id;
  }
  EXPECT_EQ(got.size(), ids.size());  // nothing but our records, each msg-id once
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_GE(runner.status().connects, 2u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkFailover, EndpointDownFromTheStartCostsAttemptsNotRecords) {
  CloudEnv env({}, "psa-failover-down");
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(30));
  auto options = env.linkOptions("agent-1");
  const std::string nothing_there = "mqtts://localhost:" + std::to_string(freePort());
  options.url.clear();
  options.urls = {nothing_there, env.broker->url()};
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(30, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 30; }, 10s));
  const auto s = runner.status();
  EXPECT_EQ(s.url, env.broker->url());
  EXPECT_EQ(s.connects, 1u);
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
