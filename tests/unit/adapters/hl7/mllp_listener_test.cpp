// The hl7-mllp source in-process on real sockets and the real SqliteStore: records as stored,
// ACKs, dead letters, duplicates, framing faults, limits, allow list, idle timeout, status
// (connection limits and eviction: mllp_connection_limits_test.cpp; bind retries:
// mllp_bind_retry_test.cpp).
#include <gtest/gtest.h>

#include <thread>

#include "mllp_harness.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/store/os/process_info.h"

namespace psa::test {
namespace {

namespace hl7 = psa::adapters::hl7;
using namespace std::chrono_literals;

TEST(MllpListener, StoresTheRecordThenAcknowledgesIt) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  const std::string msg = adtMessage("CTRL0001");
  auto ack = c->exchange(msg);
  ASSERT_TRUE(ack) << ack.error().describe();
  // The ACK: MSH with sender/receiver swapped, MSA|AA|<MSH-10>.
  EXPECT_EQ(ack->rfind("MSH|^~\\&|PSAGENT|PRACTICE0042|REGADT|GOODHEALTH|", 0), 0u) << *ack;
  EXPECT_NE(ack->find("|ACK^A01^ACK|"), std::string::npos) << *ack;
  EXPECT_NE(ack->find("\rMSA|AA|CTRL0001\r"), std::string::npos) << *ack;
  c->close();
  EXPECT_EQ(h.counter("ack_AA"), 1u);
  EXPECT_EQ(h.counter("accepted"), 1u);
  EXPECT_EQ(h.counter("messages"), 1u);

  auto stored = h.contents();
  ASSERT_EQ(stored.queued_total, 1u);
  ASSERT_EQ(stored.queued.count("CTRL0001"), 1u);
  EXPECT_EQ(stored.payload["CTRL0001"], msg);  // byte-exact
  const auto& info = stored.info["CTRL0001"];
  EXPECT_EQ(info.source, "test-mllp");
  EXPECT_EQ(info.vendor, "cerner");
  EXPECT_EQ(info.kind, store::Kind::patient);
  EXPECT_EQ(info.format, "hl7v2");
  EXPECT_GT(info.received_at_ms, 0);
}

TEST(MllpListener, KindFollowsMsh9AndKindMapOverrides) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"kind_map":{"ADT^A01":"other","ZPM":"provider"}})"));
  auto c = h.connect();
  std::string siu = adtMessage("SIU1");
  siu.replace(siu.find("ADT^A01^ADT_A01"), 15, "SIU^S12^SIU_S12");
  std::string zpm = adtMessage("ZPM1");
  zpm.replace(zpm.find("ADT^A01^ADT_A01"), 15, "ZPM^Z01");
  for (const auto& m : {adtMessage("ADT1"), siu, zpm}) {
    EXPECT_EQ(ackOf(c->exchange(m)).code, "AA");
  }
  c->close();
  auto stored = h.contents();
  EXPECT_EQ(stored.info["ADT1"].kind, store::Kind::other);
  EXPECT_EQ(stored.info["SIU1"].kind, store::Kind::appointment);
  EXPECT_EQ(stored.info["ZPM1"].kind, store::Kind::provider);
}

TEST(MllpListener, ResendIsAcknowledgedAgainAndStoredOnce) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  const std::string msg = adtMessage("DUP0001");
  EXPECT_EQ(ackOf(c->exchange(msg)).code, "AA");
  EXPECT_EQ(ackOf(c->exchange(msg)).code, "AA");
  // A new connection, same message: still the same identity.
  auto c2 = h.connect();
  EXPECT_EQ(ackOf(c2->exchange(msg)).code, "AA");
  // Same control id, different content: a different message.
  EXPECT_EQ(ackOf(c2->exchange(adtMessage("DUP0001", "SMITH"))).code, "AA");
  c->close();
  c2->close();
  EXPECT_EQ(h.counter("duplicates"), 2u);
  EXPECT_EQ(h.counter("accepted"), 2u);
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 2u);
  EXPECT_EQ(stored.queued["DUP0001"], 2);
}

TEST(MllpListener, DedupeOffStoresEveryCopy) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"dedupe":false})"));
  auto c = h.connect();
  const std::string msg = adtMessage("NODEDUP");
  EXPECT_EQ(ackOf(c->exchange(msg)).code, "AA");
  EXPECT_EQ(ackOf(c->exchange(msg)).code, "AA");
  c->close();
  EXPECT_EQ(h.contents().queued["NODEDUP"], 2);
}

TEST(MllpListener, InvalidMessageGetsAeWithLocationAndIsDeadLettered) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"required_segments":["PID","IN1"]})"));
  auto c = h.connect();
  auto ack = ackOf(c->exchange(adtMessage("BAD0001")));
  EXPECT_EQ(ack.code, "AE");
  EXPECT_EQ(ack.control_id, "BAD0001");
  ASSERT_EQ(ack.errors.size(), 1u);
  EXPECT_EQ(ack.errors[0], "HL7 100 (Segment sequence error) at IN1 severity E");
  // Unsupported version: AR (a reject), also dead-lettered.
  std::string v9 = adtMessage("BAD0002");
  v9.replace(v9.find("|P|2.5.1"), 8, "|P|9.9");
  auto ack2 = ackOf(c->exchange(v9));
  EXPECT_EQ(ack2.code, "AR");
  ASSERT_EQ(ack2.errors.size(), 2u);  // the version, and IN1 missing
  EXPECT_EQ(ack2.errors[0].rfind("HL7 203 (Unsupported version id) at MSH-12", 0), 0u)
      << ack2.errors[0];
  // The connection keeps serving.
  std::string good = adtMessage("GOOD0001");
  good.replace(good.find("DG1|"), 0, "IN1|1|PLAN001\r");
  EXPECT_EQ(ackOf(c->exchange(good)).code, "AA");
  c->close();
  EXPECT_EQ(h.counter("dead_letters"), 2u);
  EXPECT_EQ(h.counter("ack_AE"), 1u);
  EXPECT_EQ(h.counter("ack_AR"), 1u);
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 1u);
  EXPECT_EQ(stored.dead_total, 2u);
  EXPECT_EQ(stored.dead_reason["BAD0001"],
            "HL7 100 (Segment sequence error) at IN1: required segment missing [segment 8, byte "
            "1024]");
  EXPECT_NE(stored.dead_reason["BAD0002"].find("HL7 203"), std::string::npos);
}

TEST(MllpListener, UnparseableFrameGetsArAndIsDeadLettered) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  auto ack = ackOf(c->exchange("this is not HL7\rPID|1\r"));
  EXPECT_EQ(ack.code, "AR");
  ASSERT_EQ(ack.errors.size(), 1u);
  EXPECT_EQ(ack.errors[0].rfind("HL7 100 (Segment sequence error)", 0), 0u) << ack.errors[0];
  EXPECT_EQ(ackOf(c->exchange(adtMessage("AFTER1"))).code, "AA");
  c->close();
  auto stored = h.contents();
  EXPECT_EQ(stored.dead_total, 1u);
  EXPECT_EQ(stored.queued_total, 1u);
}

TEST(MllpListener, EnhancedModeAnswersCaAndHonoursMsh15) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"ack_mode":"auto"})"));
  auto c = h.connect();
  // MSH-15 AL: enhanced, CA.
  auto enh = ackOf(c->exchange(adtMessage("ENH1", "DOE", 800, "|||AL|NE")));
  EXPECT_EQ(enh.code, "CA");
  EXPECT_EQ(enh.control_id, "ENH1");
  // No MSH-15/16: original, AA.
  EXPECT_EQ(ackOf(c->exchange(adtMessage("ORIG1"))).code, "AA");
  // MSH-15 NE: no ACK at all, but stored; the next answer read is the next message's.
  ASSERT_TRUE(c->send(adtMessage("NOACK1", "DOE", 800, "|||NE|NE")));
  EXPECT_EQ(ackOf(c->exchange(adtMessage("ENH3", "DOE", 800, "|||AL|NE"))).control_id, "ENH3");
  c->close();
  EXPECT_EQ(h.counter("acks_suppressed"), 1u);
  EXPECT_EQ(h.counter("ack_CA"), 2u);
  auto stored = h.contents();
  EXPECT_EQ(stored.queued.count("NOACK1"), 1u);
}

TEST(MllpListener, EnhancedErOnlyAcknowledgesErrors) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"ack_mode":"enhanced","required_segments":["IN1"]})"));
  auto c = h.connect();
  std::string valid = adtMessage("ER0", "DOE", 800, "|||ER|NE");
  valid.replace(valid.find("DG1|"), 0, "IN1|1|PLAN001\r");
  ASSERT_TRUE(c->send(valid));                                      // accepted: no CA sent
  ASSERT_TRUE(c->send(adtMessage("ER1", "DOE", 800, "|||ER|NE")));  // invalid: CE
  auto ack = ackOf(c->receive());
  EXPECT_EQ(ack.code, "CE");
  EXPECT_EQ(ack.control_id, "ER1");
  c->close();
  auto stored = h.contents();
  EXPECT_EQ(stored.queued.count("ER0"), 1u);
  EXPECT_EQ(stored.dead.count("ER1"), 1u);
}

TEST(MllpListener, FramingFaultsAreSkippedAndTheConnectionKeepsServing) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  // Junk before the start block, then a good frame.
  ASSERT_TRUE(c->sendRaw("GET / HTTP/1.0\r\n\r\n" + hl7::mllpFrame(adtMessage("F1"))));
  EXPECT_EQ(ackOf(c->receive()).control_id, "F1");
  // A frame cut by a new start block: the partial one is discarded, never acknowledged.
  ASSERT_TRUE(
      c->sendRaw("\x0b" + adtMessage("PARTIAL").substr(0, 200) + hl7::mllpFrame(adtMessage("F2"))));
  EXPECT_EQ(ackOf(c->receive()).control_id, "F2");
  // A keep-alive (empty frame) gets no answer.
  ASSERT_TRUE(c->sendRaw(hl7::mllpFrame("")));
  EXPECT_EQ(ackOf(c->exchange(adtMessage("F3"))).control_id, "F3");
  // End block without CR: delivered anyway.
  ASSERT_TRUE(c->sendRaw("\x0b" + adtMessage("F4") + "\x1c"));
  EXPECT_EQ(ackOf(c->exchange(adtMessage("F5"))).control_id, "F4");
  EXPECT_EQ(ackOf(c->receive()).control_id, "F5");
  c->close();
  EXPECT_EQ(h.counter("framing_errors"), 2u);
  EXPECT_EQ(h.counter("keepalives"), 1u);
  EXPECT_EQ(h.counter("missing_end_cr"), 1u);
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 5u);
  EXPECT_EQ(stored.queued.count("PARTIAL"), 0u);
}

TEST(MllpListener, ConnectionCutMidFrameStoresNothingOfIt) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  ASSERT_TRUE(c->sendRaw(hl7::mllpFrame(adtMessage("WHOLE1")) + "\x0b" +
                         adtMessage("CUT1").substr(0, 300)));
  EXPECT_EQ(ackOf(c->receive()).control_id, "WHOLE1");
  ASSERT_TRUE(c->shutdownSend());
  auto end = c->receive();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed)) << end.error().describe();
  ASSERT_TRUE(waitFor([&] { return h.counter("framing_errors") == 1; }, 5s));
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 1u);
  EXPECT_EQ(stored.dead_total, 0u);
}

TEST(MllpListener, OversizeMessageIsRejectedWith207AndDiscarded) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"max_message_bytes":2048})"));
  auto c = h.connect();
  auto ack = ackOf(c->exchange(adtMessage("BIG0001", "DOE", 8000)));
  EXPECT_EQ(ack.code, "AR");
  EXPECT_EQ(ack.control_id, "BIG0001");
  EXPECT_EQ(ack.text, "message larger than 2048 bytes (max_message_bytes); not accepted");
  ASSERT_EQ(ack.errors.size(), 1u);
  EXPECT_EQ(ack.errors[0], "HL7 207 (Application internal error) severity E");
  EXPECT_EQ(ackOf(c->exchange(adtMessage("SMALL01", "DOE", 1500))).code, "AA");
  c->close();
  EXPECT_EQ(h.counter("oversize"), 1u);
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 1u);
  EXPECT_EQ(stored.dead_total, 0u);
}

TEST(MllpListener, TooMuchJunkClosesTheConnection) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  ASSERT_TRUE(c->sendRaw(std::string(100 * 1024, 'x')));
  auto end = c->receive();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed)) << end.error().describe();
  // Others are not affected.
  auto c2 = h.connect();
  EXPECT_EQ(ackOf(c2->exchange(adtMessage("OK1"))).code, "AA");
}

TEST(MllpListener, PipelinedMessagesAreAnsweredInOrder) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  std::string burst;
  constexpr int kCount = 600;
  for (int i = 0; i < kCount; ++i) {
    std::string m = adtMessage("P" + std::to_string(i), "DOE", 700);
    if (i % 7 == 3) {
      m.replace(m.find("|P|2.5.1"), 8, "|P|9.9");  // some rejects in between
    }
    burst += hl7::mllpFrame(m);
  }
  ASSERT_TRUE(c->sendRaw(burst));
  for (int i = 0; i < kCount; ++i) {
    auto ack = ackOf(c->receive());
    ASSERT_EQ(ack.control_id, "P" + std::to_string(i));
    EXPECT_EQ(ack.code, i % 7 == 3 ? "AR" : "AA");
  }
  c->close();
}

TEST(MllpListener, AllowListRefusesOtherAddresses) {
  {
    MllpHarness h;
    h.startOrDie(MllpHarness::config(R"({"allow":["10.0.0.0/8","fd00::/8"]})"));
    auto c = h.connect();
    auto r = c->exchange(adtMessage("DENIED1"));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(Errc::closed) || r.error().is(Errc::io)) << r.error().describe();
    EXPECT_EQ(h.counter("connections_refused"), 1u);
    EXPECT_EQ(h.contents().queued_total, 0u);
  }
  {
    MllpHarness h;
    h.startOrDie(MllpHarness::config(R"({"allow":["10.0.0.0/8","127.0.0.0/8"]})"));
    auto c = h.connect();
    EXPECT_EQ(ackOf(c->exchange(adtMessage("ALLOWED1"))).code, "AA");
  }
}

TEST(MllpListener, Ipv6Listener) {
  MllpHarness h;
  const std::string err = h.start(MllpHarness::config(R"({"listen":["[::1]:0"],"allow":["::1"]})"));
  if (!err.empty()) {
    GTEST_SKIP() << "no IPv6 loopback here: " << err;
  }
  auto o = h.clientOptions();
  o.host = "::1";
  auto c = hl7::MllpClient::connect(o);
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(ackOf(c.value()->exchange(adtMessage("V6MSG1"))).code, "AA");
  EXPECT_EQ(c.value()->peer(), "[::1]:" + std::to_string(h.port()));
}

TEST(MllpListener, IdleConnectionIsClosed) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"idle_timeout_s":1})"));
  auto c = h.connect();
  EXPECT_EQ(ackOf(c->exchange(adtMessage("IDLE1"))).code, "AA");
  const auto t0 = std::chrono::steady_clock::now();
  auto end = c->receive();  // nothing to receive: the listener closes after 1 s idle
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed)) << end.error().describe();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  EXPECT_EQ(h.counter("idle_timeouts"), 1u);
}

TEST(MllpListener, PortInUseFailsStartWithAHint) {
  MllpHarness a;
  a.startOrDie(MllpHarness::config());
  MllpHarness b;
  const std::string err =
      b.start(MllpHarness::config(R"({"listen":"127.0.0.1:)" + std::to_string(a.port()) + "\"}"));
  // The OS's words differ ("Address already in use" on Linux); the address and the hint do not
  // (Windows may answer WSAEACCES when the holder has the port exclusively).
  EXPECT_EQ(err.rfind("listen 127.0.0.1:" + std::to_string(a.port()) + ": ", 0), 0u) << err;
  const bool in_use =
      err.find("(another program listens there; change listen or stop it)") != std::string::npos;
  const bool held = err.find("another program holds the port exclusively") != std::string::npos;
  EXPECT_TRUE(in_use || held) << err;
  EXPECT_EQ(b.source().status().state, "failed");
  EXPECT_FALSE(b.source().status().healthy);
}

TEST(MllpListener, StatusReportsCountersAndLatency) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  EXPECT_EQ(h.source().status().state, "listening");
  EXPECT_EQ(h.source().type(), "hl7-mllp");
  EXPECT_EQ(h.source().name(), "test-mllp");
  auto c = h.connect();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(ackOf(c->exchange(adtMessage("S" + std::to_string(i)))).code, "AA");
  }
  // Latency is recorded when the write completes, which may be just after the client read it.
  ASSERT_TRUE(waitFor(
      [&] { return h.source().status().detail.find("ack_latency")->getInt("count") == 20; }, 5s));
  auto st = h.source().status();
  EXPECT_EQ(st.counters["messages"], 20u);
  EXPECT_EQ(st.counters["ack_AA"], 20u);
  EXPECT_EQ(st.counters["connections"], 1u);
  EXPECT_GT(st.counters["bytes_in"], 20u * 1000);
  EXPECT_GT(st.counters["bytes_out"], 20u * 50);
  EXPECT_GT(st.last_message_ms, 0);
  const json::Value* lat = st.detail.find("ack_latency");
  ASSERT_NE(lat, nullptr);
  EXPECT_EQ(lat->getInt("count"), 20);
  EXPECT_GT(lat->getInt("p50_us"), 0);
  EXPECT_GE(lat->getInt("p99_us"), lat->getInt("p50_us"));
  EXPECT_EQ(st.detail.find("connections_open")->asInt(), 1);
  c->close();
  ASSERT_TRUE(h.stop());
}

TEST(MllpListener, CheckReportsListeningOrFreePort) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto cfg = MllpHarness::config(R"({"listen":"127.0.0.1:)" + std::to_string(h.port()) + "\"}");
  auto lines = h.factory().check(cfg, h.tmp().path());
  ASSERT_EQ(lines.size(), 1u);
  if (runningUnderWine()) {  // no owning process from GetExtendedTcpTable (tests/windows)
    EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::warn);
    EXPECT_EQ(lines[0].text.rfind("something listens on 127.0.0.1:", 0), 0u) << lines[0].text;
  } else {
    EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::ok);
  }
  // This process holds the port: as the agent would, it is the program running the check.
  const std::string pid = " pid " + std::to_string(os::currentProcessId()) + ")";
  if (!runningUnderWine()) {
    EXPECT_EQ(lines[0].text.rfind("listening on 127.0.0.1:" + std::to_string(h.port()) + " (", 0),
              0u)
        << lines[0].text;
    EXPECT_NE(lines[0].text.find(pid), std::string::npos) << lines[0].text;
  }
  ASSERT_TRUE(h.stop());
  const int port = freePort();
  auto free_cfg = MllpHarness::config(R"({"listen":"127.0.0.1:)" + std::to_string(port) + "\"}");
  lines = h.factory().check(free_cfg, h.tmp().path());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::warn);
  EXPECT_EQ(lines[0].text.rfind("nothing listens on 127.0.0.1:" + std::to_string(port), 0), 0u)
      << lines[0].text;
  auto tls_cfg = MllpHarness::config(R"({"tls":{"cert_file":"missing.pem","key_file":"k"}})");
  lines = h.factory().check(tls_cfg, h.tmp().path());
  ASSERT_GE(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::fail);
  EXPECT_EQ(lines[0].text.rfind("tls.cert_file " + (h.tmp().path() / "missing.pem").string(), 0),
            0u)
      << lines[0].text;
}

TEST(MllpListener, StopAnswersWhatWasReceivedThenCloses) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  std::string burst;
  for (int i = 0; i < 50; ++i) {
    burst += hl7::mllpFrame(adtMessage("STOP" + std::to_string(i)));
  }
  ASSERT_TRUE(c->sendRaw(burst));
  // Wait until the listener has read everything, then stop it.
  ASSERT_TRUE(waitFor([&] { return h.counter("messages") == 50; }, 10s));
  auto src = h.sourcePtr();
  auto done = std::make_shared<std::promise<void>>();
  src->stop([done] { done->set_value(); });
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(ackOf(c->receive()).control_id, "STOP" + std::to_string(i));
  }
  auto end = c->receive();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed));
  EXPECT_EQ(done->get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(src->status().state, "stopped");
  // No new connections after stop.
  auto again = hl7::MllpClient::connect(h.clientOptions());
  EXPECT_FALSE(again);
  // stop() again completes at once.
  auto done2 = std::make_shared<std::promise<void>>();
  src->stop([done2] { done2->set_value(); });
  EXPECT_EQ(done2->get_future().wait_for(5s), std::future_status::ready);
}

TEST(MllpListener, StoreAtBudgetAnswersArQueueFullAndStoresNothingUnacknowledged) {
  store::StoreOptions o;
  o.max_bytes = 1 << 20;
  MllpHarness h(o);
  h.startOrDie(MllpHarness::config());
  auto c = h.connect();
  std::vector<std::string> accepted;
  hl7::AckSummary refused;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "FULL" + std::to_string(i);
    auto ack = ackOf(c->exchange(adtMessage(id, "DOE", 30000)));
    if (ack.code == "AA") {
      accepted.push_back(id);
      continue;
    }
    refused = ack;
    break;
  }
  ASSERT_FALSE(accepted.empty());
  EXPECT_EQ(refused.code, "AR");
  EXPECT_EQ(refused.text, "receiver queue full; message not accepted, retry later");
  ASSERT_EQ(refused.errors.size(), 1u);
  EXPECT_EQ(refused.errors[0], "HL7 207 (Application internal error) severity E");
  EXPECT_EQ(h.counter("store_refused"), 1u);
  EXPECT_NE(h.source().status().last_error.find("store refused 1 message(s)"), std::string::npos);
  c->close();
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, accepted.size());
  for (const auto& id : accepted) {
    EXPECT_EQ(stored.queued[id], 1) << id;
  }
  EXPECT_EQ(stored.queued.count(refused.control_id), 0u);
}

TEST(MllpListener, ManyConcurrentConnectionsAreAllAnswered) {
  MllpHarness h;
  // 300 senders on one host: above the default per-peer limit (64).
  h.startOrDie(MllpHarness::config(R"({"max_connections_per_peer":300})"));
  constexpr int kConnections = 300;
  constexpr int kPerConnection = 3;
  std::vector<hl7::MllpClientPtr> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(h.connect());
  }
  ASSERT_TRUE(waitFor(
      [&] { return h.source().status().detail.find("connections_open")->asInt() == kConnections; },
      10s));
  // Every connection sends all its messages first, then reads the answers.
  for (int i = 0; i < kConnections; ++i) {
    std::string burst;
    for (int k = 0; k < kPerConnection; ++k) {
      burst += hl7::mllpFrame(adtMessage("C" + std::to_string(i) + "_" + std::to_string(k)));
    }
    ASSERT_TRUE(clients[i]->sendRaw(burst));
  }
  for (int i = 0; i < kConnections; ++i) {
    for (int k = 0; k < kPerConnection; ++k) {
      auto ack = ackOf(clients[i]->receive());
      ASSERT_EQ(ack.control_id, "C" + std::to_string(i) + "_" + std::to_string(k));
      ASSERT_EQ(ack.code, "AA");
    }
  }
  for (auto& c : clients) {
    c->close();
  }
  EXPECT_EQ(h.contents().queued_total, static_cast<size_t>(kConnections * kPerConnection));
}

}  // namespace
}  // namespace psa::test
