// "The ACK is sent only after the record is durably committed", checked with a sink whose
// commits the test completes by hand: no ACK before the commit, ACKs in arrival order when
// commits complete out of order, store refusals answered AR/CR "retry later", and stop()
// answering what was received before it closes.
#include <gtest/gtest.h>

#include "mllp_harness.h"
#include "psa/adapters/hl7/mllp.h"

namespace psa::test {
namespace {

namespace hl7 = psa::adapters::hl7;
using namespace std::chrono_literals;

TEST(MllpCommitOrder, NoAckBeforeTheCommitCompletes) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config());
  auto c = h.connect(300ms);
  ASSERT_TRUE(c->send(adtMessage("WAIT1")));
  ASSERT_TRUE(sink.waitHeld(1));
  EXPECT_EQ(sink.records(0), 1u);
  // The record is handed over with every field filled in.
  const auto& rec = sink.batch(0).records.at(0);
  EXPECT_EQ(rec.source, "test-mllp");
  EXPECT_EQ(rec.vendor, "cerner");
  EXPECT_EQ(rec.kind, store::Kind::patient);
  EXPECT_EQ(rec.format, "hl7v2");
  EXPECT_TRUE(rec.msg_id.empty());
  EXPECT_GT(rec.received_at_ms, 0);
  EXPECT_EQ(rec.payload.reveal(), adtMessage("WAIT1"));
  ASSERT_TRUE(rec.dedupe_identity.has_value());
  EXPECT_EQ(rec.dedupe_identity->reveal().rfind("hl7v2:", 0), 0u);
  // Not committed: nothing comes back.
  auto early = c->receive();
  ASSERT_FALSE(early);
  EXPECT_TRUE(early.error().is(Errc::timeout)) << early.error().describe();
  sink.commit(0);
  auto ack = ackOf(c->receive());
  EXPECT_EQ(ack.code, "AA");
  EXPECT_EQ(ack.control_id, "WAIT1");
}

TEST(MllpCommitOrder, AcksFollowArrivalOrderWhenCommitsCompleteOutOfOrder) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config());
  auto c = h.connect(300ms);
  ASSERT_TRUE(c->send(adtMessage("FIRST")));
  ASSERT_TRUE(sink.waitHeld(1));
  ASSERT_TRUE(c->send(adtMessage("SECOND")));
  ASSERT_TRUE(sink.waitHeld(2));
  ASSERT_TRUE(c->send(adtMessage("THIRD")));
  ASSERT_TRUE(sink.waitHeld(3));
  // Second and third commit first: their ACKs wait for the first.
  sink.commit(2);
  sink.commit(1);
  auto early = c->receive();
  ASSERT_FALSE(early);
  EXPECT_TRUE(early.error().is(Errc::timeout));
  sink.commit(0);
  EXPECT_EQ(ackOf(c->receive()).control_id, "FIRST");
  EXPECT_EQ(ackOf(c->receive()).control_id, "SECOND");
  EXPECT_EQ(ackOf(c->receive()).control_id, "THIRD");
}

TEST(MllpCommitOrder, ConnectionsDoNotWaitForEachOther) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config());
  auto a = h.connect(2000ms);
  auto b = h.connect(2000ms);
  ASSERT_TRUE(a->send(adtMessage("A1")));
  ASSERT_TRUE(sink.waitHeld(1));
  ASSERT_TRUE(b->send(adtMessage("B1")));
  ASSERT_TRUE(sink.waitHeld(2));
  sink.commit(1);  // B's commit: B is answered although A's is still open
  EXPECT_EQ(ackOf(b->receive()).control_id, "B1");
  sink.commit(0);
  EXPECT_EQ(ackOf(a->receive()).control_id, "A1");
}

TEST(MllpCommitOrder, PipelinedMessagesOfOneReadShareOneAppend) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config(R"({"required_segments":["IN1"]})"));
  auto c = h.connect(2000ms);
  std::string good = adtMessage("G1");
  good.replace(good.find("DG1|"), 0, "IN1|1|PLAN001\r");
  // Two valid, one invalid, in one write (one read on the listener side, usually).
  ASSERT_TRUE(
      c->sendRaw(hl7::mllpFrame(good) + hl7::mllpFrame(adtMessage("BAD1")) + hl7::mllpFrame(good)));
  ASSERT_TRUE(waitFor(
      [&] {
        size_t recs = 0;
        size_t dead = 0;
        for (size_t k = 0; k < sink.held(); ++k) {
          recs += sink.records(k);
          dead += sink.dead(k);
        }
        return recs == 2 && dead == 1;
      },
      5s));
  // The invalid one is a dead letter with a PHI-free reason.
  std::string reason;
  for (size_t k = 0; k < sink.held(); ++k) {
    for (const auto& d : sink.batch(k).dead) {
      reason = d.reason;
      EXPECT_EQ(d.record.payload.reveal(), adtMessage("BAD1"));
      EXPECT_EQ(d.record.format, "hl7v2");
    }
  }
  EXPECT_EQ(reason,
            "HL7 100 (Segment sequence error) at IN1: required segment missing [segment 8, byte "
            "1024]");
  sink.commitAll();
  EXPECT_EQ(ackOf(c->receive()).code, "AA");
  auto bad = ackOf(c->receive());
  EXPECT_EQ(bad.code, "AE");
  EXPECT_EQ(bad.control_id, "BAD1");
  // The second "G1" is a resend: the store says duplicate, the sender still gets AA.
  EXPECT_EQ(ackOf(c->receive()).code, "AA");
}

TEST(MllpCommitOrder, StoreFullClosedAndIoErrorsAnswerRetryLater) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config());
  auto c = h.connect(2000ms);
  struct Case {
    Errc code;
    const char* id;
    const char* text;
    const char* extra;  // MSH-15/16
    const char* answer;
  };
  const Case cases[] = {
      {Errc::full, "FULL1", "receiver queue full; message not accepted, retry later", "", "AR"},
      {Errc::closed, "CLOSED1", "receiver shutting down; message not accepted, retry later", "",
       "AR"},
      {Errc::io, "IO1", "receiver storage error; message not accepted, retry later", "", "AR"},
      {Errc::full, "FULL2", "receiver queue full; message not accepted, retry later", "|||AL|NE",
       "CR"},
  };
  size_t k = 0;
  for (const auto& cs : cases) {
    ASSERT_TRUE(c->send(adtMessage(cs.id, "DOE", 900, cs.extra)));
    ASSERT_TRUE(sink.waitHeld(k + 1));
    sink.fail(k++, cs.code, "test refusal");
    auto ack = ackOf(c->receive());
    EXPECT_EQ(ack.code, cs.answer) << cs.id;
    EXPECT_EQ(ack.control_id, cs.id);
    EXPECT_EQ(ack.text, cs.text);
    ASSERT_EQ(ack.errors.size(), 1u);
    EXPECT_EQ(ack.errors[0], "HL7 207 (Application internal error) severity E");
  }
  EXPECT_EQ(h.counter("store_refused"), 4u);
  EXPECT_EQ(h.counter("ack_AR"), 3u);
  EXPECT_EQ(h.counter("ack_CR"), 1u);
  EXPECT_EQ(h.counter("ack_AA"), 0u);
}

TEST(MllpCommitOrder, RefusedMessageWhoseSenderForbidsRejectsClosesTheConnection) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config());
  auto c = h.connect(2000ms);
  ASSERT_TRUE(c->send(adtMessage("SU1", "DOE", 900, "|||SU|NE")));  // SU: success only
  ASSERT_TRUE(sink.waitHeld(1));
  sink.fail(0, Errc::full, "test");
  auto end = c->receive();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed)) << end.error().describe();
}

TEST(MllpCommitOrder, StopAnswersPendingMessagesAfterTheirCommitThenCloses) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config());
  auto c = h.connect(2000ms);
  ASSERT_TRUE(c->send(adtMessage("PEND1")));
  ASSERT_TRUE(sink.waitHeld(1));
  auto src = h.sourcePtr();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  src->stop([done] { done->set_value(); });
  // Not done while an answer is owed.
  EXPECT_EQ(fut.wait_for(300ms), std::future_status::timeout);
  EXPECT_EQ(src->status().state, "stopping");
  sink.commit(0);
  EXPECT_EQ(ackOf(c->receive()).control_id, "PEND1");
  auto end = c->receive();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed));
  EXPECT_EQ(fut.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(src->status().state, "stopped");
}

TEST(MllpCommitOrder, PipelineLimitPausesReading) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config(R"({"max_pipeline":4})"));
  auto c = h.connect(2000ms);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c->send(adtMessage("PL" + std::to_string(i))));
    ASSERT_TRUE(waitFor(
        [&] { return h.counter("messages") >= static_cast<uint64_t>(std::min(i + 1, 4)); }, 5s));
  }
  // Four unanswered messages: the listener stops reading until they are answered.
  ASSERT_TRUE(waitFor([&] { return h.counter("messages") == 4; }, 5s));
  EXPECT_FALSE(waitFor([&] { return h.counter("messages") > 4; }, 300ms));
  // Answering them lets the rest in. A message is counted when it is read and reaches the
  // sink a moment later (after validation, possibly several in one append): keep answering
  // until all ten records are held.
  auto heldRecords = [&] {
    size_t n = 0;
    for (size_t k = 0; k < sink.held(); ++k) {
      n += sink.records(k);
    }
    return n;
  };
  ASSERT_TRUE(waitFor(
      [&] {
        sink.commitAll();
        return h.counter("messages") == 10 && heldRecords() == 10;
      },
      10s))
      << heldRecords() << " records held in " << sink.held() << " appends";
  sink.commitAll();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(ackOf(c->receive()).control_id, "PL" + std::to_string(i));
  }
}

}  // namespace
}  // namespace psa::test
