// The `hl7-mllp-out` delivery engine against the PMS-inbound simulator
// (tests/sim/pms_inbound_sim.py) as a real process over real sockets (issue 15): delivered
// with pms_ref, AE/AR as failed with the ERR text, slow and late ACKs, dropped connections,
// a killed and restarted PMS, stale ACKs, TLS; every effect counted in the simulator's change
// log, which must hold each message exactly once.
#include "psa/adapters/write/hl7_outbound.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "pms_inbound_harness.h"
#include "psa/adapters/write/hl7_out_message.h"
#include "psa/store/json.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::adapters::write {
namespace {

namespace fs = std::filesystem;
using test::InboundSim;
using test::Process;
using test::TempDir;
using test::waitFor;
using DStatus = DeliveryOutcome::Status;
using namespace std::chrono_literals;

// An io_context on its own thread with one engine.
class Target {
 public:
  explicit Target(Hl7OutboundSettings s) : work_(io_.get_executor()) {
    auto out = Hl7Outbound::create(io_.get_executor(), std::move(s));
    if (!out) {
      throw std::runtime_error(out.error().message);
    }
    out_ = std::move(out).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Target() {
    out_->stop();
    work_.reset();
    thread_.join();
  }

  /// Starts a delivery; the outcome lands in the returned slot.
  std::shared_ptr<std::optional<DeliveryOutcome>> start(WriteRequest r) {
    auto slot = std::make_shared<std::optional<DeliveryOutcome>>();
    out_->deliver(std::move(r), [this, slot](DeliveryOutcome o) {
      std::lock_guard lock(mu_);
      *slot = std::move(o);
    });
    return slot;
  }
  bool done(const std::shared_ptr<std::optional<DeliveryOutcome>>& slot) {
    std::lock_guard lock(mu_);
    return slot->has_value();
  }
  DeliveryOutcome wait(const std::shared_ptr<std::optional<DeliveryOutcome>>& slot) {
    if (!waitFor([&] { return done(slot); }, 120s)) {
      throw std::runtime_error("no outcome within 120 s");
    }
    std::lock_guard lock(mu_);
    return **slot;
  }
  DeliveryOutcome deliver(WriteRequest r) { return wait(start(std::move(r))); }
  Hl7Outbound& engine() { return *out_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::shared_ptr<Hl7Outbound> out_;
  std::thread thread_;
  std::mutex mu_;
};

Hl7OutboundSettings settingsFor(int port) {
  Hl7OutboundSettings s;
  s.name = "pms-out";
  s.vendor = "generic";
  s.host = "127.0.0.1";
  s.port = static_cast<uint16_t>(port);
  s.ack_timeout = 20s;
  s.connect_timeout = 10s;
  s.retry_min = 50ms;
  s.retry_max = 500ms;
  s.max_tries = 200;
  s.write.enabled = true;
  return s;
}

std::string newId() {
  static std::atomic<int> n{0};
  char tail[8];
  std::snprintf(tail, sizeof tail, "%04d", n++ % 10000);
  return std::string("01JEKX4Z9Q8M3T6V7W2Y5B") + tail;
}

std::string siuBody(const std::string& marker, const std::string& msh10 = {},
                    const std::string& pid3 = "MRN-1^^^PMS^MR",
                    const std::string& type = "SIU^S12^SIU_S12") {
  return "MSH|^~\\&|PS|CLOUD|PMS|CLINIC|||" + type + "|" + msh10 +
         "|P|2.5.1\r"
         "SCH|A-1|||||||Checkup|30|min\r"
         "PID|1||" +
         pid3 + "||" + marker +
         "^JANE\r"
         "AIS|1||CHECKUP\r";
}

WriteRequest request(std::string body) {
  WriteRequest r;
  r.id = newId();
  r.agent_id = "practice-1";
  const int64_t now = Clock::system()->nowMs();
  r.issued_at_ms = now;
  r.expires_at_ms = now + 3600 * 1000;
  r.target = "pms-out";
  r.op = WriteOp::create;
  r.kind = Kind::appointment;
  r.format = WriteFormat::hl7v2;
  r.body = std::move(body);
  return r;
}

TEST(Hl7Outbound, CreateIsDeliveredWithTheAckedControlId) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {});
  Target target(settingsFor(sim.port()));
  const std::string marker = test::uniqueMarker();
  WriteRequest r = request(siuBody(marker));
  const std::string id = r.id;
  const DeliveryOutcome o = target.deliver(std::move(r));
  ASSERT_EQ(o.status, DStatus::delivered) << o.error;
  EXPECT_EQ(o.pms_ref, controlIdFor(id));
  EXPECT_EQ(o.control_id, controlIdFor(id));
  EXPECT_EQ(o.attempts, 1);
  const auto changes = sim.changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].getString("msh10"), controlIdFor(id));
  EXPECT_EQ(changes[0].getString("type"), "SIU");
  EXPECT_EQ(changes[0].getString("trigger"), "S12");
  EXPECT_TRUE(test::filesContaining(dir.path(), marker).empty());
  EXPECT_EQ(target.engine().stats().connects, 1u);
}

TEST(Hl7Outbound, RefusalsAreFailedWithTheErrText) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--accept-types", "SIU", "--reject-msh10", "REJ-1"});
  Target target(settingsFor(sim.port()));
  const std::string marker = test::uniqueMarker();

  const DeliveryOutcome no_pid3 = target.deliver(request(siuBody(marker, {}, "")));
  ASSERT_EQ(no_pid3.status, DStatus::failed);
  EXPECT_EQ(no_pid3.error,
            "AE: HL7 101 (Required field missing) at PID-3 severity E; patient identifier "
            "(PID-3) required");

  const DeliveryOutcome rule = target.deliver(request(siuBody(marker, "REJ-1")));
  ASSERT_EQ(rule.status, DStatus::failed);
  EXPECT_NE(rule.error.find("AE: HL7 207 (Application internal error)"), std::string::npos)
      << rule.error;
  EXPECT_NE(rule.error.find("rejected by simulator rule"), std::string::npos);

  const DeliveryOutcome type = target.deliver(request(siuBody(marker, {}, "M1", "ADT^A08")));
  ASSERT_EQ(type.status, DStatus::failed);
  EXPECT_NE(type.error.find("AR: HL7 200 (Unsupported message type) at MSH-9"), std::string::npos)
      << type.error;

  for (const auto* o : {&no_pid3, &rule, &type}) {
    EXPECT_EQ(o->attempts, 1);
    EXPECT_EQ(o->error.find(marker), std::string::npos);
  }
  EXPECT_TRUE(sim.changes().empty());
  // The connection stays usable after refusals.
  EXPECT_EQ(target.deliver(request(siuBody(marker))).status, DStatus::delivered);
  EXPECT_EQ(sim.changes().size(), 1u);
  EXPECT_EQ(target.engine().stats().connects, 1u);
}

TEST(Hl7Outbound, SlowAckWithinTheTimeoutIsDelivered) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--slow-ms", "700"});
  Target target(settingsFor(sim.port()));
  const DeliveryOutcome o = target.deliver(request(siuBody("X")));
  ASSERT_EQ(o.status, DStatus::delivered) << o.error;
  EXPECT_EQ(o.attempts, 1);
  EXPECT_EQ(target.engine().stats().timeouts, 0u);
  EXPECT_EQ(sim.changes().size(), 1u);
}

TEST(Hl7Outbound, DroppedConnectionResendsTheSameControlIdAppliedOnce) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--drop-every", "2"});
  Target target(settingsFor(sim.port()));
  const DeliveryOutcome first = target.deliver(request(siuBody("X")));
  ASSERT_EQ(first.status, DStatus::delivered) << first.error;
  // The simulator applies the second message received, then closes without an ACK.
  WriteRequest r = request(siuBody("X"));
  const std::string msh10 = controlIdFor(r.id);
  const DeliveryOutcome second = target.deliver(std::move(r));
  ASSERT_EQ(second.status, DStatus::delivered) << second.error;
  EXPECT_EQ(second.pms_ref, msh10);
  EXPECT_EQ(second.attempts, 2);
  EXPECT_GE(target.engine().stats().disconnects, 1u);
  EXPECT_EQ(sim.changes(msh10).size(), 1u);
  EXPECT_EQ(sim.changes().size(), 2u);
}

TEST(Hl7Outbound, LateAckAfterTheTimeoutResendsWithOneEffect) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--late-ms", "4000"});
  auto s = settingsFor(sim.port());
  s.ack_timeout = 1s;
  Target target(s);
  WriteRequest r = request(siuBody("X", "LATE-1"));
  const DeliveryOutcome o = target.deliver(std::move(r));
  ASSERT_EQ(o.status, DStatus::delivered) << o.error;
  EXPECT_EQ(o.pms_ref, "LATE-1");
  EXPECT_GE(o.attempts, 2);
  EXPECT_GE(target.engine().stats().timeouts, 1u);
  EXPECT_EQ(sim.changes("LATE-1").size(), 1u);
  EXPECT_EQ(sim.changes().size(), 1u);
}

TEST(Hl7Outbound, StaleAckIsIgnored) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--stale-ack"});
  Target target(settingsFor(sim.port()));
  const DeliveryOutcome o = target.deliver(request(siuBody("X", "C-77")));
  ASSERT_EQ(o.status, DStatus::delivered) << o.error;
  EXPECT_EQ(o.pms_ref, "C-77");
  EXPECT_EQ(o.attempts, 1);
  EXPECT_GE(target.engine().stats().stale_acks, 1u);
}

TEST(Hl7Outbound, DeliveryResumesAfterThePmsIsKilledAndRestarted) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {});
  Target target(settingsFor(sim.port()));
  ASSERT_EQ(target.deliver(request(siuBody("X", "K-1"))).status, DStatus::delivered);
  sim.kill();
  auto pending = target.start(request(siuBody("X", "K-2")));
  // Retrying against a dead port: at least two connection attempts fail before the restart.
  ASSERT_TRUE(waitFor([&] { return target.engine().stats().connect_failures >= 2; }, 60s));
  EXPECT_FALSE(target.done(pending));
  sim.start();
  const DeliveryOutcome o = target.wait(pending);
  ASSERT_EQ(o.status, DStatus::delivered) << o.error;
  EXPECT_EQ(o.pms_ref, "K-2");
  EXPECT_EQ(sim.changes("K-1").size(), 1u);
  EXPECT_EQ(sim.changes("K-2").size(), 1u);
  EXPECT_GE(target.engine().stats().connects, 2u);
  // And the next request goes out on the new connection at once.
  ASSERT_EQ(target.deliver(request(siuBody("X", "K-3"))).status, DStatus::delivered);
  EXPECT_EQ(sim.changes().size(), 3u);
}

TEST(Hl7Outbound, PmsKilledAfterApplyingBeforeAnsweringAppliesOnce) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--late-ms", "600000"});
  Target target(settingsFor(sim.port()));
  auto pending = target.start(request(siuBody("X", "KA-1")));
  // Applied (the change log is written before the answer), then the PMS dies unanswered.
  ASSERT_TRUE(waitFor([&] { return sim.changes("KA-1").size() == 1; }, 60s));
  sim.kill();
  sim.setArgs({});
  sim.start();
  const DeliveryOutcome o = target.wait(pending);
  ASSERT_EQ(o.status, DStatus::delivered) << o.error;
  EXPECT_EQ(o.pms_ref, "KA-1");
  EXPECT_GE(o.attempts, 2);
  EXPECT_EQ(sim.changes("KA-1").size(), 1u);  // the restarted PMS deduped the resend
}

TEST(Hl7Outbound, WithoutDedupeOnTheReceiverAResendIsAppliedTwice) {
  // Why the MSH-10 must stay stable: a receiver that dedupes on it is what makes the resend
  // after a lost ACK harmless. The simulator without dedupe shows the double effect.
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--drop-every", "1", "--no-dedupe-msh10"});
  auto s = settingsFor(sim.port());
  s.max_tries = 2;
  Target target(s);
  const DeliveryOutcome o = target.deliver(request(siuBody("X", "ND-1")));
  EXPECT_EQ(o.status, DStatus::retryable);
  EXPECT_EQ(o.attempts, 2);
  EXPECT_EQ(sim.changes("ND-1").size(), 2u);
}

TEST(Hl7Outbound, RequestsQueueInOrderOneInFlight) {
  TempDir dir("hl7out");
  InboundSim sim(dir, {"--slow-ms", "50"});
  Target target(settingsFor(sim.port()));
  std::vector<std::shared_ptr<std::optional<DeliveryOutcome>>> slots;
  for (int k = 0; k < 8; ++k) {
    slots.push_back(target.start(request(siuBody("X", "Q-" + std::to_string(k)))));
  }
  for (auto& slot : slots) {
    EXPECT_EQ(target.wait(slot).status, DStatus::delivered);
  }
  const auto changes = sim.changes();
  ASSERT_EQ(changes.size(), 8u);
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(changes[static_cast<size_t>(k)].getString("msh10"), "Q-" + std::to_string(k));
  }
}

TEST(Hl7Outbound, UnreachablePmsIsRetryableAfterMaxTries) {
  auto s = settingsFor(test::freePort());
  s.max_tries = 3;
  s.retry_min = 10ms;
  Target target(s);
  const DeliveryOutcome o = target.deliver(request(siuBody("X")));
  ASSERT_EQ(o.status, DStatus::retryable);
  EXPECT_EQ(o.attempts, 0);
  EXPECT_NE(o.error.find("no answer after 3 tries: connecting to 127.0.0.1:"), std::string::npos)
      << o.error;
}

TEST(Hl7Outbound, SwitchesDryRunAndExpiryNeedNoPms) {
  auto s = settingsFor(test::freePort());
  s.write.enabled = false;
  {
    Target disabled(s);
    const DeliveryOutcome o = disabled.deliver(request(siuBody("X")));
    EXPECT_EQ(o.status, DStatus::rejected);
    EXPECT_EQ(o.error, "writes are disabled on this target");
  }
  s.write.enabled = true;
  s.write.dry_run = true;
  Target dry(s);
  const DeliveryOutcome o = dry.deliver(request(siuBody("X")));
  EXPECT_EQ(o.status, DStatus::delivered);
  EXPECT_EQ(o.pms_ref, "dry-run");
  EXPECT_EQ(o.attempts, 0);
  WriteRequest old = request(siuBody("X"));
  old.expires_at_ms = old.issued_at_ms - 1;
  EXPECT_EQ(dry.deliver(old).status, DStatus::expired);
  WriteRequest fhir = request(R"({"resourceType":"Appointment"})");
  fhir.format = WriteFormat::fhir_json;
  EXPECT_EQ(dry.deliver(fhir).status, DStatus::rejected);
  EXPECT_EQ(dry.engine().stats().connects, 0u);
}

TEST(Hl7Outbound, Tls) {
  TempDir dir("hl7out");
  test::TlsMaterial tls(dir / "tls");
  InboundSim sim(dir, {"--cert", tls.server().cert.string(), "--key", tls.server().key.string()});
  auto s = settingsFor(sim.port());
  s.tls = true;
  s.ca_file = tls.ca().cert;
  {
    Target target(s);
    const DeliveryOutcome o = target.deliver(request(siuBody("X", "T-1")));
    ASSERT_EQ(o.status, DStatus::delivered) << o.error;
    EXPECT_EQ(sim.changes("T-1").size(), 1u);
  }
  s.ca_file = tls.otherCa().cert;
  s.max_tries = 2;
  Target untrusted(s);
  const DeliveryOutcome o = untrusted.deliver(request(siuBody("X", "T-2")));
  EXPECT_EQ(o.status, DStatus::retryable);
  EXPECT_NE(o.error.find("certificate verify failed"), std::string::npos) << o.error;
  EXPECT_TRUE(sim.changes("T-2").empty());
}

}  // namespace
}  // namespace psa::adapters::write
