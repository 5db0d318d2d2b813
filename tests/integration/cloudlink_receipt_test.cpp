// confirm = receipt: a record leaves the queue only when the cloud names its msg-id on
// P/receipt; without a receipt it is resent after receipt_timeout with the same msg-id.
// Receipts are outside input: malformed ones are counted and ignored.
#include <gtest/gtest.h>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

TEST(CloudLinkReceipt, RecordsAreReleasedOnlyByReceiptsAndResentUntilThen) {
  CloudEnv env;
  // Phase 1: a cloud that stores but never sends receipts.
  CloudSim silent(env.simOptions("silent"));
  TestStore queue(env.tmp / "store");
  auto records = makeRecords(200, 400, "rc");
  auto ids = queue.append(records);
  auto o = env.linkOptions("agent-1");
  o.confirm = cloudlink::Confirm::receipt;
  o.receipt_timeout = 1500ms;
  LinkRunner runner(queue, o);
  runner.start();
  ASSERT_TRUE(silent.waitForUnique(200, 20s));
  ASSERT_TRUE(waitFor([&] { return runner.status().retried >= 200; }, 20s))
      << runner.status().toJson();
  // PUBACKed long ago, but without receipts nothing has left the queue...
  EXPECT_EQ(queue.counts().delivered, 0u);
  EXPECT_EQ(queue.counts().pending, 200u);
  EXPECT_EQ(runner.status().acked, 0u);
  // ...and the resends carried the same msg-ids.
  ASSERT_TRUE(waitFor([&] { return silent.messages().size() >= 400; }, 20s));
  const auto unique = silent.unique();
  EXPECT_EQ(unique.size(), 200u);
  for (const auto& id : ids) {
    EXPECT_EQ(unique.count(id), 1u) << id;
  }
  silent.stop();

  // Phase 2: a cloud that confirms what it stored.
  auto opts = env.simOptions("confirming");
  opts.receipts = true;
  CloudSim confirming(opts);
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 200; }, 30s))
      << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return runner.status().acked == 200; }, 10s))
      << runner.status().toJson();
  const auto st = runner.status();
  EXPECT_GE(st.receipts, 1u);
  EXPECT_GE(st.resent, 200u);
  EXPECT_EQ(st.awaiting_receipt, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkReceipt, MalformedReceiptsAreCountedAndIgnored) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  auto o = env.linkOptions("agent-1");
  o.confirm = cloudlink::Confirm::receipt;
  o.max_control_bytes = 8192;  // a receipt of 100 msg-ids is ~2.9 KB
  o.receipt_timeout = 1500ms;
  LinkRunner runner(queue, o);
  runner.start();
  ASSERT_TRUE(runner.waitConnected());
  const std::string topic = std::string("ps/") + kTenant + "/agent-1/receipt";
  // Until the subscription is in place, publishes are lost: probe with a valid receipt.
  ASSERT_TRUE(waitFor(
      [&] {
        mosquittoPub(env, topic, "{\"msg_ids\":[]}");
        return runner.status().receipts >= 1;
      },
      10s));
  for (const std::string& bad :
       {std::string("not json"), std::string("{\"msg_ids\":[1,2]}"), std::string("[\"a\"]"),
        std::string("{\"msg_ids\":\"x\"}"), std::string(9000, '{')}) {
    ASSERT_EQ(mosquittoPub(env, topic, bad).exit_code, 0);
  }
  ASSERT_TRUE(waitFor([&] { return runner.status().receipts_invalid == 5; }, 10s))
      << runner.status().toJson();
  // Still working.
  queue.append(makeRecords(10));  // published before anyone listens: resent after the timeout
  auto opts = env.simOptions();
  opts.receipts = true;
  CloudSim sim(opts);
  queue.append(makeRecords(10, 256, "after"));
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 20; }, 20s))
      << runner.status().toJson();
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
