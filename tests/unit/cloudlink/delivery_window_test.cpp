// DeliveryWindow without MQTT: the book of records between publish and release, driven
// directly with packet ids and times.
#include "delivery_window.h"

#include <gtest/gtest.h>

namespace psa::cloudlink::detail {
namespace {

using namespace std::chrono_literals;

const SteadyTime t0 = SteadyTime{} + 1000s;

TEST(DeliveryWindow, BrokerModeReleasesOnPubackInOrderOfAnswers) {
  DeliveryWindow w(Confirm::broker, 120s);
  EXPECT_FALSE(w.sent(1, 10, "a", 0, t0));
  EXPECT_FALSE(w.sent(2, 11, "b", 0, t0 + 1ms));
  EXPECT_EQ(w.inFlight(), 2u);
  EXPECT_EQ(w.oldestSentAt(), t0);

  auto b = w.answered(2);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->seq, 11);
  EXPECT_EQ(b->msg_id, "b");
  w.delivered(*b, t0 + 2ms);
  EXPECT_FALSE(w.answered(2)) << "an answer for a packet id no longer in flight is not ours";
  EXPECT_FALSE(w.answered(99));
  auto a = w.answered(1);
  ASSERT_TRUE(a);
  w.delivered(*a, t0 + 3ms);

  EXPECT_EQ(w.inFlight(), 0u);
  EXPECT_EQ(w.awaitingReceipt(), 0u);
  EXPECT_FALSE(w.oldestSentAt());
  ASSERT_TRUE(w.hasPendingAcks());
  EXPECT_EQ(w.takePendingAcks(), (std::vector<int64_t>{11, 10}));
  EXPECT_FALSE(w.hasPendingAcks());
}

TEST(DeliveryWindow, ResendsAreRecognised) {
  DeliveryWindow w(Confirm::broker, 120s);
  EXPECT_TRUE(w.sent(1, 10, "a", /*attempts=*/2, t0)) << "leased before: a resend";
  EXPECT_FALSE(w.sent(2, 11, "b", 0, t0));
  EXPECT_EQ(w.releaseAll(), 2u);
  EXPECT_EQ(w.inFlight(), 0u);
  // Leased again after the connection ended: same seq, a resend, once.
  EXPECT_TRUE(w.sent(3, 11, "b", 0, t0 + 1s));
  EXPECT_TRUE(w.answered(3));
  EXPECT_FALSE(w.sent(4, 11, "b", 0, t0 + 2s));
}

TEST(DeliveryWindow, ReceiptModeWaitsForTheReceipt) {
  DeliveryWindow w(Confirm::receipt, 10s);
  w.sent(1, 10, "a", 0, t0);
  w.sent(2, 11, "b", 0, t0);
  w.sent(3, 12, "c", 0, t0);
  w.delivered(*w.answered(1), t0 + 1s);
  w.delivered(*w.answered(2), t0 + 1s);
  EXPECT_EQ(w.awaitingReceipt(), 2u);
  EXPECT_FALSE(w.hasPendingAcks()) << "a PUBACK alone does not release in receipt mode";

  // The receipt names an awaited record, a record still in flight, and one we never sent.
  EXPECT_EQ(w.receipt({"a", "c", "zzz"}), 2u);
  EXPECT_EQ(w.takePendingAcks(), (std::vector<int64_t>{10}));
  EXPECT_EQ(w.awaitingReceipt(), 1u);
  // "c" was receipted before its PUBACK: released on the PUBACK.
  w.delivered(*w.answered(3), t0 + 2s);
  EXPECT_EQ(w.takePendingAcks(), (std::vector<int64_t>{12}));

  // "b" never gets its receipt: it times out once, and counts as released.
  EXPECT_TRUE(w.takeReceiptTimeouts(t0 + 10s).empty());
  auto timed_out = w.takeReceiptTimeouts(t0 + 11s);
  ASSERT_EQ(timed_out.size(), 1u);
  EXPECT_EQ(timed_out[0], (std::pair<std::string, int64_t>{"b", 11}));
  EXPECT_EQ(w.awaitingReceipt(), 0u);
  EXPECT_TRUE(w.takeReceiptTimeouts(t0 + 60s).empty());
  EXPECT_TRUE(w.sent(4, 11, "b", 0, t0 + 12s)) << "the resend after a receipt timeout";
}

TEST(DeliveryWindow, BrokerModeIgnoresReceipts) {
  DeliveryWindow w(Confirm::broker, 10s);
  w.sent(1, 10, "a", 0, t0);
  EXPECT_EQ(w.receipt({"a"}), 0u);
  EXPECT_EQ(w.inFlight(), 1u);
}

TEST(DeliveryWindow, ReleaseAllKeepsPendingAcks) {
  DeliveryWindow w(Confirm::receipt, 10s);
  w.sent(1, 10, "a", 0, t0);
  w.sent(2, 11, "b", 0, t0);
  w.delivered(*w.answered(1), t0);
  w.receipt({"a"});
  w.delivered(*w.answered(2), t0);
  w.sent(3, 12, "c", 0, t0);
  EXPECT_EQ(w.releaseAll(), 2u) << "one awaiting its receipt, one in flight";
  EXPECT_EQ(w.takePendingAcks(), (std::vector<int64_t>{10})) << "acknowledged stays acknowledged";
  EXPECT_TRUE(w.takeReceiptTimeouts(t0 + 60s).empty());
}

TEST(DeliveryWindow, AConnectionDeathMakesSuspectsAndProbesOneAtATime) {
  DeliveryWindow w(Confirm::broker, 10s);
  w.sent(1, 10, "a", 0, t0);
  w.sent(2, 11, "b", 0, t0);
  EXPECT_EQ(w.window(100), 100u);
  EXPECT_FALSE(w.suspectInflight("broken pipe", t0 + 1s));
  w.releaseAll();
  EXPECT_TRUE(w.probing());
  EXPECT_EQ(w.suspects(), 2u);
  EXPECT_EQ(w.window(100), 1u);

  // A suspect that gets its PUBACK is cleared.
  EXPECT_FALSE(w.beforePublish("a"));
  w.sent(3, 10, "a", 0, t0 + 2s);
  w.delivered(*w.answered(3), t0 + 2s);
  EXPECT_EQ(w.suspects(), 1u);

  // The other breaks the connection twice while alone in flight: convicted.
  for (int death = 1; death <= DeliveryWindow::kPoisonStrikes; ++death) {
    EXPECT_FALSE(w.beforePublish("b"));
    w.sent(10 + death, 11, "b", 0, t0 + std::chrono::seconds(3 * death));
    auto convicted =
        w.suspectInflight("connection lost", t0 + std::chrono::seconds(3 * death) + 100ms);
    EXPECT_EQ(convicted.has_value(), death == DeliveryWindow::kPoisonStrikes);
    w.releaseAll();
  }
  auto conviction = w.beforePublish("b");
  ASSERT_TRUE(conviction);
  EXPECT_EQ(conviction->strikes, DeliveryWindow::kPoisonStrikes);
  EXPECT_EQ(conviction->last_error, "connection lost");
  EXPECT_FALSE(w.probing());
  EXPECT_EQ(w.window(100), 100u);
}

TEST(DeliveryWindow, ALateDeathIsNoStrike) {
  DeliveryWindow w(Confirm::broker, 10s);
  w.sent(1, 10, "a", 0, t0);
  w.sent(2, 11, "b", 0, t0);
  w.suspectInflight("x", t0);
  w.releaseAll();
  w.beforePublish("a");
  w.sent(3, 10, "a", 0, t0);
  // Sent long before the connection died: not what killed it.
  EXPECT_FALSE(w.suspectInflight("x", t0 + DeliveryWindow::kPoisonWindow + 1s));
  w.releaseAll();
  w.beforePublish("a");
  w.sent(4, 10, "a", 0, t0 + 20s);
  EXPECT_FALSE(w.suspectInflight("x", t0 + 20s + 1ms)) << "the first strike only";
}

TEST(DeliveryWindow, ProbingEndsWhenItsBudgetIsSpent) {
  DeliveryWindow w(Confirm::broker, 10s);
  w.sent(1, 10, "a", 0, t0);
  w.suspectInflight("x", t0);
  w.releaseAll();
  ASSERT_TRUE(w.probing());
  // The suspect was delivered some other way (e.g. dead-lettered by an operator): other records
  // go one at a time only for a while.
  for (size_t i = 0; i < 1 + DeliveryWindow::kProbeMargin; ++i) {
    EXPECT_FALSE(w.beforePublish("other-" + std::to_string(i)));
    EXPECT_TRUE(w.probing());
  }
  EXPECT_FALSE(w.beforePublish("one-more"));
  EXPECT_FALSE(w.probing());
}

TEST(DeliveryWindow, NothingInFlightMeansNoSuspects) {
  DeliveryWindow w(Confirm::broker, 10s);
  EXPECT_FALSE(w.suspectInflight("x", t0));
  EXPECT_FALSE(w.probing());
  EXPECT_EQ(w.releaseAll(), 0u);
}

TEST(DeliveryWindow, AChunkedRecordIsReleasedWhenEveryChunkIsAnswered) {
  DeliveryWindow w(Confirm::broker, 120s);
  EXPECT_FALSE(w.sent(std::vector<int>{1, 2, 3}, 10, "big", 0, t0));
  EXPECT_FALSE(w.sent(4, 11, "small", 0, t0));
  EXPECT_EQ(w.inFlight(), 2u);
  EXPECT_EQ(w.publishesInFlight(), 4u);
  EXPECT_FALSE(w.answered(2)) << "chunk 2 of 3: the record still awaits chunks 1 and 3";
  EXPECT_FALSE(w.answered(2)) << "the same packet id again is not ours";
  EXPECT_FALSE(w.answered(1));
  EXPECT_EQ(w.publishesInFlight(), 2u);
  auto big = w.answered(3);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->seq, 10);
  EXPECT_TRUE(big->unanswered.empty());
  EXPECT_EQ(w.inFlight(), 1u);
}

TEST(DeliveryWindow, AFailedChunkDecidesTheRecordAndLaterAnswersAreNotOurs) {
  DeliveryWindow w(Confirm::broker, 120s);
  w.sent(std::vector<int>{1, 2, 3}, 10, "big", 0, t0);
  EXPECT_FALSE(w.answered(1, true));
  auto failed = w.answered(2, false);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->seq, 10);
  EXPECT_EQ(w.inFlight(), 0u);
  EXPECT_EQ(w.publishesInFlight(), 0u);
  EXPECT_FALSE(w.answered(3, true)) << "the record was decided by chunk 2";
}

TEST(DeliveryWindow, AbandonedAndReleasedChunkedRecordsLeaveNoPacketIds) {
  DeliveryWindow w(Confirm::receipt, 120s);
  w.sent(std::vector<int>{1, 2}, 10, "big", 0, t0);
  w.abandon(10);
  EXPECT_EQ(w.inFlight(), 0u);
  EXPECT_EQ(w.publishesInFlight(), 0u);
  EXPECT_FALSE(w.answered(1));
  w.sent(std::vector<int>{5, 6}, 11, "big2", 0, t0);
  EXPECT_EQ(w.receipt({"big2"}), 1u) << "a receipt names the record, not its chunks";
  EXPECT_FALSE(w.answered(5));
  auto r = w.answered(6);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->receipted);
  w.sent(std::vector<int>{7, 8}, 12, "big3", 0, t0);
  EXPECT_EQ(w.releaseAll(), 1u);
  EXPECT_EQ(w.publishesInFlight(), 0u);
}

}  // namespace
}  // namespace psa::cloudlink::detail
