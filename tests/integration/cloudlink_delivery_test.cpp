// Records flow from the queue through the real link, a real mosquitto (mutual TLS, ACL per
// agent) to the real pms-cloud-sim: exactly once by msg-id, byte-identical.
#include <gtest/gtest.h>

#include "cloudlink_harness.h"
#include <iostream>

#include "test_store.h"
#include "psa/cloudlink/envelope.h"

namespace psa::test {
namespace {

TEST(CloudLinkDelivery, AllRecordsArriveOnceByteIdentical) {
  CloudEnv env;
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  auto records = makeRecords(500, 700);
  std::map<std::string, std::string> sent;  // msg_id -> payload
  auto ids = queue.append(records);
  for (size_t i = 0; i < ids.size(); ++i) {
    sent[ids[i]] = records[i].payload.reveal();
  }
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(sent.size(), std::chrono::seconds(30)))
      << "received " << sim.unique().size() << " status " << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == sent.size(); },
                      std::chrono::seconds(10)));
  for (const auto& [id, m] : sim.unique()) {
    ASSERT_TRUE(sent.count(id)) << id;
    EXPECT_TRUE(m.sha256_ok);
    EXPECT_EQ(m.payload, sent[id]);
    EXPECT_EQ(m.kind, "patient");
    EXPECT_EQ(m.prop_kind, "patient");
    EXPECT_EQ(m.agent, "agent-1");
    EXPECT_EQ(m.tenant, kTenant);
    EXPECT_EQ(m.format, "hl7v2");
    EXPECT_EQ(m.content_type, "x-application/hl7-v2+er7");
    EXPECT_EQ(m.source, "test-source");
    EXPECT_EQ(m.vendor, "cerner");
    EXPECT_EQ(m.sha256, psa::sha256Hex(sent[id]));
  }
  // The store commits the acks first; the link counts them when the commit reports back.
  ASSERT_TRUE(waitFor([&] { return runner.status().acked == sent.size(); }, std::chrono::seconds(10)))
      << runner.status().toJson();
  auto st = runner.status();
  EXPECT_TRUE(st.connected);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkDelivery, NoPayloadByteReachesTheLog) {
  MosquittoOptions broker;
  broker.acl = std::string("pattern deny ps/+/%u/up/billing\n") + kDefaultAcl;
  CloudEnv env(broker);
  const std::string marker = uniqueMarker();
  const auto log_file = env.tmp / "agent.log";
  ASSERT_TRUE(log::setFile(log_file, 100u << 20, 1));
  log::setLevel(log::Level::debug);  // libmosquitto's own lines included
  {
    CloudSim sim(env.simOptions());
    TestStore queue(env.tmp / "store");
    auto records = makeRecords(50, 300, marker);
    // A record the broker refuses: the dead-letter path logs too.
    records[7].kind = store::Kind::billing;
    queue.append(std::move(records));
    LinkRunner runner(queue, env.linkOptions("agent-1"));
    runner.start();
    ASSERT_TRUE(sim.waitForUnique(49, std::chrono::seconds(30)));
    ASSERT_TRUE(waitFor([&] { return runner.status().dead_lettered == 1; },
                        std::chrono::seconds(10)));
    env.broker->stop();  // disconnect/reconnect paths
    env.broker->start();
    ASSERT_TRUE(runner.waitConnected());
    EXPECT_TRUE(runner.stop());
  }
  log::setLevel(log::Level::info);
  log::setFile({}, 0, 0);
  const std::string text = readFile(log_file);
  EXPECT_NE(text.find("link.connected"), std::string::npos);  // the log was written
  EXPECT_NE(text.find("record.dead_letter"), std::string::npos);
  EXPECT_NE(text.find("link.disconnected"), std::string::npos);
  EXPECT_EQ(text.find(marker), std::string::npos) << "payload bytes in the log";
  EXPECT_EQ(text.find("MSH|"), std::string::npos) << "payload bytes in the log";
}

TEST(CloudLinkDelivery, AcksReachTheStoreInBatches) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  queue.append(makeRecords(5000, 200));
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 5000; }, std::chrono::seconds(60)))
      << runner.status().toJson();
  const auto c = queue.counts();
  EXPECT_EQ(c.acked_records, 5000u);
  // Never one store commit per PUBACK: PUBACKs that arrive while an ack is being applied
  // accumulate into the next batch.
  std::cout << "ack calls for 5000 records: " << c.ack_calls << "\n";
  EXPECT_LT(c.ack_calls, 5000u / 4);
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
