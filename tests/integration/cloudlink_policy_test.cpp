// The per-reason-code PUBACK policy, poison isolation and the stalled-link watchdog, against a
// scripted MQTT 5 broker (mutual TLS) that answers exactly as each test needs.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "cloudlink_harness.h"
#include "fake_mqtt_broker.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
using Verdict = FakeMqttBroker::Verdict;
using Action = FakeMqttBroker::Action;

struct FakeEnv {
  FakeEnv() : tmp("psa-fake"), tls(tmp / "pki"), broker(tls.server(), tls.ca().cert) {}

  cloudlink::CloudLinkOptions linkOptions() {
    cloudlink::CloudLinkOptions o;
    o.url = broker.url();
    o.ca_file = tls.ca().cert;
    o.cert_file = tls.client("agent-1").cert;
    o.key_file = tls.client("agent-1").key;
    o.tenant = kTenant;
    o.agent_id = "agent-1";
    o.backoff_initial = 100ms;
    o.backoff_max = 500ms;
    o.retry_initial = 200ms;
    o.retry_max = 400ms;
    o.puback_timeout = 2s;
    o.connect_timeout = 2s;
    o.drain_timeout = 2s;
    return o;
  }

  /// Index of the last PUBLISH of `msg_id` in arrival order (-1 if never).
  long lastIndexOf(const std::string& msg_id) {
    auto pubs = broker.publishes();
    for (long i = static_cast<long>(pubs.size()) - 1; i >= 0; --i) {
      if (pubs[static_cast<size_t>(i)].msg_id == msg_id) {
        return i;
      }
    }
    return -1;
  }

  TempDir tmp;
  TlsMaterial tls;
  FakeMqttBroker broker;
};

TEST(CloudLinkPolicy, TransientCodesAreRetriedWithBackoffWithoutBlockingOthers) {
  FakeEnv env;
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(60));
  const std::string quota = ids[5];
  const std::string impl = ids[6];
  const std::string unspecified = ids[7];
  env.broker.setPolicy([&](const FakePublish& p, int seen) -> Verdict {
    if (p.msg_id == quota && seen < 2) {
      return {Action::puback, 0x97};
    }
    if (p.msg_id == impl && seen < 1) {
      return {Action::puback, 0x83};
    }
    if (p.msg_id == unspecified && seen < 1) {
      return {Action::puback, 0x80};
    }
    return {Action::puback, 0x00};
  });
  LinkRunner runner(queue, env.linkOptions());
  runner.start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 60; }, 20s))
      << runner.status().toJson();
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_EQ(queue.attempts(quota), 2u);
  EXPECT_EQ(queue.attempts(impl), 1u);
  EXPECT_EQ(queue.attempts(unspecified), 1u);
  ASSERT_TRUE(waitFor([&] { return runner.status().acked == 60; }, 10s))
      << runner.status().toJson();
  const auto st = runner.status();
  EXPECT_EQ(st.reason_codes.at(0x97), 2u);
  EXPECT_EQ(st.reason_codes.at(0x83), 1u);
  EXPECT_EQ(st.reason_codes.at(0x80), 1u);
  EXPECT_EQ(st.retried, 4u);
  EXPECT_EQ(st.dead_lettered, 0u);
  EXPECT_EQ(st.acked, 60u);
  // No head-of-line blocking: the last record went out before the retried one finally did.
  auto pubs = env.broker.publishes();
  const auto first_of_last = std::find_if(pubs.begin(), pubs.end(),
                                          [&](const FakePublish& p) { return p.msg_id == ids[59]; });
  ASSERT_NE(first_of_last, pubs.end());
  EXPECT_LT(first_of_last - pubs.begin(), env.lastIndexOf(quota));
  // Resends carry the same msg-id (and so were recognisable as such).
  EXPECT_EQ(std::count_if(pubs.begin(), pubs.end(),
                          [&](const FakePublish& p) { return p.msg_id == quota; }),
            3);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkPolicy, PermanentCodesDeadLetterWithTheReason) {
  FakeEnv env;
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(30));
  env.broker.setPolicy([&](const FakePublish& p, int) -> Verdict {
    if (p.msg_id == ids[3]) {
      return {Action::puback, 0x99};
    }
    if (p.msg_id == ids[4]) {
      return {Action::puback, 0x90};
    }
    if (p.msg_id == ids[5]) {
      return {Action::puback, 0x87};
    }
    if (p.msg_id == ids[6]) {
      return {Action::puback, 0x10};  // no matching subscribers: still delivered
    }
    return {Action::puback, 0x00};
  });
  LinkRunner runner(queue, env.linkOptions());
  runner.start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 27 && queue.counts().dead == 3; },
                      20s))
      << runner.status().toJson();
  const auto dead = queue.deadLetters();
  EXPECT_EQ(dead.at(ids[3]), "puback 0x99 payload format invalid");
  EXPECT_EQ(dead.at(ids[4]), "puback 0x90 topic name invalid");
  EXPECT_EQ(dead.at(ids[5]), "puback 0x87 not authorized");
  const auto st = runner.status();
  EXPECT_EQ(st.dead_lettered, 3u);
  EXPECT_EQ(st.reason_codes.count(0x10), 0u);
  EXPECT_EQ(st.retried, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkPolicy, RecordThatAlwaysKillsTheConnectionIsIsolated) {
  FakeEnv env;
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(50));
  const std::string poison = ids[20];
  env.broker.setPolicy([&](const FakePublish& p, int) -> Verdict {
    return p.msg_id == poison ? Verdict{Action::drop_connection, 0} : Verdict{Action::puback, 0};
  });
  LinkRunner runner(queue, env.linkOptions());
  runner.start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 49 && queue.counts().dead == 1; },
                      30s))
      << runner.status().toJson();
  EXPECT_EQ(queue.deadLetters().at(poison),
            "the connection broke each time this record was sent alone (2 times, last: "
            "connection closed by the broker); the broker probably refuses it (e.g. over its "
            "message size limit)");
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkPolicy, HalfOpenConnectionIsDetectedAndReplaced) {
  FakeEnv env;
  TestStore queue(env.tmp / "store");
  auto ids = queue.append(makeRecords(100));
  std::atomic<bool> stalled{false};
  FakeMqttBroker* broker = &env.broker;
  env.broker.setPolicy([&](const FakePublish& p, int) -> Verdict {
    if (p.msg_id == ids[40] && !stalled.exchange(true)) {
      broker->stallCurrentConnection();  // TCP stays up, nothing is answered any more
      return {Action::ignore, 0};
    }
    return {Action::puback, 0};
  });
  LinkRunner runner(queue, env.linkOptions());
  runner.start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 100; }, 30s))
      << runner.status().toJson();
  const auto st = runner.status();
  EXPECT_GE(st.watchdog_trips, 1u);
  EXPECT_GE(st.connects, 2u);
  EXPECT_NE(st.last_error.find("link stalled: no PUBACK for 2000 ms"), std::string::npos)
      << st.last_error;
  EXPECT_GE(env.broker.connections(), 2);
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
