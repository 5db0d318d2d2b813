// Outages with a real mosquitto: restarted mid-stream, down while records arrive, killed
// (SIGKILL) in receipt mode, frozen (SIGSTOP: half-open connections). No record is lost, and
// every duplicate carries the msg-id of the original.
#include <gtest/gtest.h>

#include <set>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

/// Every msg-id arrived, nothing unknown arrived, every copy is byte-identical.
void expectAllDelivered(const CloudSim& sim, const std::map<std::string, std::string>& sent) {
  std::map<std::string, int> copies;
  for (const SimMessage& m : sim.messages()) {
    ASSERT_EQ(sent.count(m.msg_id), 1u) << "unknown msg-id " << m.msg_id;
    EXPECT_TRUE(m.sha256_ok) << m.msg_id;
    EXPECT_EQ(m.payload, sent.at(m.msg_id)) << m.msg_id;
    ++copies[m.msg_id];
  }
  EXPECT_EQ(copies.size(), sent.size());
}

std::map<std::string, std::string> appendRecords(TestStore& queue, size_t n,
                                                 const std::string& tag) {
  auto records = makeRecords(n, 512, tag);
  auto ids = queue.append(records);
  std::map<std::string, std::string> sent;
  for (size_t i = 0; i < n; ++i) {
    sent[ids[i]] = records[i].payload.reveal();
  }
  return sent;
}

TEST(CloudLinkOutage, BrokerRestartMidStreamLosesNothing) {
  CloudEnv env;
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto sent = appendRecords(queue, 20000, "restart");
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(waitFor([&] { return runner.status().acked >= 2000; }, 30s))
      << runner.status().toJson();
  env.broker->stop();  // SIGTERM: mosquitto saves the simulator's queued messages
  ASSERT_TRUE(waitFor([&] { return !runner.status().connected; }, 10s));
  EXPECT_LT(queue.counts().delivered, sent.size()) << "stream ended before the outage";
  env.broker->start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 60s))
      << runner.status().toJson();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 30s)) << sim.unique().size();
  expectAllDelivered(sim, sent);
  const auto st = runner.status();
  EXPECT_GE(st.connects, 2u);
  EXPECT_EQ(st.dead_lettered, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkOutage, RecordsQueueWhileBrokerIsDownAndDrainWhenItReturns) {
  CloudEnv env;
  CloudSim sim(env.simOptions());
  env.broker->stop();
  TestStore queue(env.tmp / "store");
  auto o = env.linkOptions("agent-1");
  LinkRunner runner(queue, o);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return runner.status().reconnects >= 1; }, 10s));
  auto sent = appendRecords(queue, 1000, "down1");
  auto more = appendRecords(queue, 1000, "down2");
  sent.insert(more.begin(), more.end());
  ASSERT_TRUE(waitFor([&] { return runner.status().reconnects >= 3; }, 20s));
  auto st = runner.status();
  EXPECT_FALSE(st.connected);
  EXPECT_TRUE(st.state == cloudlink::LinkState::backoff ||
              st.state == cloudlink::LinkState::connecting)
      << cloudlink::linkStateName(st.state);
  EXPECT_NE(st.last_error.find("connection refused"), std::string::npos) << st.last_error;
  // The sample may land inside a connection attempt; only a backoff has a next attempt time.
  if (st.state == cloudlink::LinkState::backoff) {
    EXPECT_GT(st.next_retry_ms, 0);
  } else {
    EXPECT_EQ(st.next_retry_ms, 0);
  }
  ASSERT_TRUE(waitFor([&] {
    const auto s = runner.status();
    return s.state == cloudlink::LinkState::backoff && s.next_retry_ms > 0;
  }, 20s));
  EXPECT_EQ(st.published, 0u);
  EXPECT_EQ(queue.counts().pending, sent.size());
  env.broker->start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 30s))
      << runner.status().toJson();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 30s));
  expectAllDelivered(sim, sent);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkOutage, BrokerKilledInReceiptModeLosesNothing) {
  CloudEnv env;
  auto sim_opts = env.simOptions();
  sim_opts.receipts = true;
  CloudSim sim(sim_opts);
  TestStore queue(env.tmp / "store");
  auto sent = appendRecords(queue, 5000, "kill");
  auto o = env.linkOptions("agent-1");
  o.confirm = cloudlink::Confirm::receipt;
  o.receipt_timeout = 2s;
  LinkRunner runner(queue, o);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return runner.status().acked >= 1000; }, 30s))
      << runner.status().toJson();
  env.broker->kill();  // SIGKILL: whatever it had accepted but not delivered is gone
  ASSERT_TRUE(waitFor([&] { return !runner.status().connected; }, 10s));
  env.broker->start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 90s))
      << runner.status().toJson() << " delivered " << queue.counts().delivered;
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 30s));
  expectAllDelivered(sim, sent);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkOutage, FrozenBrokerIsDetectedAndTheLinkRecovers) {
  CloudEnv env;
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto sent = appendRecords(queue, 20000, "frozen");
  auto o = env.linkOptions("agent-1");
  o.puback_timeout = 2s;
  o.connect_timeout = 2s;
  LinkRunner runner(queue, o);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return runner.status().acked >= 2000; }, 30s));
  env.broker->pause();  // SIGSTOP: TCP connections stay open, nothing answers
  ASSERT_TRUE(waitFor([&] { return runner.status().watchdog_trips >= 1; }, 20s))
      << runner.status().toJson();
  // The trip aborts the session; the link reports the disconnect when the session has ended.
  ASSERT_TRUE(waitFor([&] { return !runner.status().connected; }, 10s))
      << runner.status().toJson();
  EXPECT_NE(runner.status().last_error.find("link stalled: no PUBACK"), std::string::npos)
      << runner.status().last_error;
  // New attempts reach the kernel's backlog but the TLS handshake never completes.
  ASSERT_TRUE(waitFor([&] { return runner.status().watchdog_trips >= 2; }, 20s))
      << runner.status().toJson();
  env.broker->resume();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 60s))
      << runner.status().toJson();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 30s));
  expectAllDelivered(sim, sent);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkOutage, GracefulStopDrainsInFlightAndKeepsTheRest) {
  CloudEnv env;
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto sent = appendRecords(queue, 20000, "stop");
  {
    LinkRunner runner(queue, env.linkOptions("agent-1"));
    runner.start();
    ASSERT_TRUE(waitFor([&] { return runner.status().acked >= 1000; }, 30s));
    ASSERT_TRUE(runner.stop());
  }
  const auto c = queue.counts();
  EXPECT_EQ(c.leased, 0u) << "stop() must return every leased record";
  EXPECT_EQ(c.delivered + c.pending, sent.size());
  // A new link picks up where the old one stopped.
  LinkRunner again(queue, env.linkOptions("agent-1"));
  again.start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); }, 60s));
  ASSERT_TRUE(sim.waitForUnique(sent.size(), 30s));
  expectAllDelivered(sim, sent);
}

}  // namespace
}  // namespace psa::test
