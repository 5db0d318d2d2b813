// Write-back end to end (issue 15): real mosquitto with mutual TLS, the real agent process with
// an `hl7-mllp-out` adapter, the PMS-inbound simulator as a real process, and `pms-cloud-sim
// write` publishing signed requests. Every effect is counted in the simulator's change log;
// every result read from what the cloud received on P/down/result.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "pms_inbound_harness.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

json::Value outAdapter(const std::string& name, int port, bool enabled) {
  auto a = json::parse(R"({"type":"hl7-mllp-out","vendor":"generic","ack_timeout_s":2,
                           "connect_timeout_s":2,"retry_min_ms":100,"retry_max_s":1,
                           "max_tries":2})")
               .value();
  a.set("name", json::Value::string(name));
  a.set("connect", json::Value::string("127.0.0.1:" + std::to_string(port)));
  json::Value w = json::Value::object();
  w.set("enabled", json::Value::boolean(enabled));
  a.set("write", std::move(w));
  return a;
}

class WriteBackFixture {
 public:
  explicit WriteBackFixture(std::vector<std::string> pms_args = {}, int ack_timeout_s = 2) {
    fs::create_directories(f.env.tmp / "pms");
    pms = std::make_unique<InboundSim>(f.env.tmp / "pms", std::move(pms_args));
    key_file = f.env.tmp / "cloud.key";
    writeFile(key_file, f.key.privatePem());
    ::chmod(key_file.c_str(), 0600);
    json::Value out = outAdapter("pms-out", pms->port(), true);
    out.set("ack_timeout_s", json::Value::integer(ack_timeout_s));
    f.agent->config().set("adapters",
                          json::Value::array({out, outAdapter("pms-ro", pms->port(), false)}));
  }

  std::vector<std::string> simArgs(std::vector<std::string> args) {
    const CertFiles& cloud = f.env.tls.client("cloud");
    std::vector<std::string> argv = {binary("pms-cloud-sim").string(), "write"};
    argv.insert(argv.end(), args.begin(), args.end());
    for (const std::string& a :
         {std::string("--url"), f.env.broker->url(), std::string("--ca"),
          f.env.tls.ca().cert.string(), std::string("--cert"), cloud.cert.string(),
          std::string("--cert-key"), cloud.key.string(), std::string("--tenant"),
          std::string(kTenant), std::string("--agent"), std::string(kRemoteAgent)}) {
      argv.push_back(a);
    }
    bool has_key = false;
    for (const auto& a : args) {
      has_key = has_key || a == "--key";
    }
    if (!has_key) {
      argv.push_back("--key");
      argv.push_back(key_file.string());
    }
    return argv;
  }

  CommandResult write(std::vector<std::string> args) {
    return runCommand(simArgs(std::move(args)), 90s);
  }

  /// The signed document `write --print` produces (to publish the same bytes twice).
  std::string printed(std::vector<std::string> args) {
    args.push_back("--print");
    auto r = write(std::move(args));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string doc = r.output;
    while (!doc.empty() && (doc.back() == '\n' || doc.back() == '\r')) {
      doc.pop_back();
    }
    return doc;
  }

  std::vector<json::Value> results(const std::string& id) const {
    std::vector<json::Value> out;
    for (auto& r : f.reports("down/result")) {
      if (r.payload.getString("id") == id) {
        out.push_back(r.payload);
      }
    }
    return out;
  }

  std::vector<json::Value> finals(const std::string& id) const {
    std::vector<json::Value> out;
    for (auto& r : results(id)) {
      if (r.getString("status") != "accepted") {
        out.push_back(r);
      }
    }
    return out;
  }

  RemoteFixture f;
  std::unique_ptr<InboundSim> pms;
  fs::path key_file;
};

std::string idOfDoc(const std::string& doc) {
  auto env = json::parse(doc).value();
  auto payload = agent::base64Decode(env.getString("payload")).value();
  return json::parse(payload).value().getString("id");
}

// The MSH-10 the agent derives from a request id (hl7_out_message.h): its last 20 characters.
std::string msh10Of(const std::string& id) { return id.substr(id.size() - 20); }

TEST(WriteBack, SignedBookingLandsOnceAndResendsAnswerTheSameResult) {
  const std::string marker = uniqueMarker();
  WriteBackFixture w;
  ASSERT_TRUE(w.f.startAgent()) << w.f.agent->log();

  auto r = w.write({"--target", "pms-out", "--wait", "60"});
  ASSERT_EQ(r.exit_code, 0) << r.output << w.f.agent->log();
  EXPECT_NE(r.output.find("\"status\":\"accepted\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"status\":\"delivered\""), std::string::npos) << r.output;
  ASSERT_EQ(w.pms->changes().size(), 1u);
  const std::string msh10 = w.pms->changes()[0].getString("msh10");
  EXPECT_NE(r.output.find("\"pms_ref\":\"" + msh10 + "\""), std::string::npos) << r.output;

  // The same signed document again (a resend): the same final result, no second effect.
  const fs::path body = w.f.env.tmp / "body.hl7";
  writeFile(body, "MSH|^~\\&|PS|PS|PMS|CLINIC|||SIU^S12||P|2.5.1\rPID|1||MRN7^^^C^MR||" + marker +
                      "^JANE\r");
  const std::string doc = w.printed({"--target", "pms-out", "--body-file", body.string()});
  const std::string id = idOfDoc(doc);
  ASSERT_EQ(mosquittoPub(w.f.env, w.f.topic("down/appointment"), doc).exit_code, 0);
  ASSERT_TRUE(waitFor([&] { return !w.finals(id).empty(); }, 60s)) << w.f.agent->log();
  const json::Value first = w.finals(id)[0];
  EXPECT_EQ(first.getString("status"), "delivered");
  EXPECT_EQ(first.getString("pms_ref"), msh10Of(id));
  ASSERT_EQ(mosquittoPub(w.f.env, w.f.topic("down/appointment"), doc).exit_code, 0);
  ASSERT_TRUE(waitFor([&] { return w.finals(id).size() >= 2; }, 30s)) << w.f.agent->log();
  EXPECT_EQ(json::serialize(w.finals(id)[1]), json::serialize(first));
  EXPECT_EQ(w.pms->changes(msh10Of(id)).size(), 1u);
  EXPECT_EQ(w.pms->changes().size(), 2u);

  // Audit: one entry per outcome, no PHI; and the marker nowhere the agent writes.
  ASSERT_EQ(w.f.agent->stop(), 0);
  auto audit = w.f.agent->cli({"audit", "verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_TRUE(filesContaining(w.f.state, marker).empty());
  EXPECT_TRUE(filesContaining(w.f.env.tmp / "pms", marker).empty());
}

TEST(WriteBack, RejectionsCarryTheirReasonAndApplyNothing) {
  WriteBackFixture w;
  ASSERT_TRUE(w.f.startAgent()) << w.f.agent->log();
  auto other = agent::SigningKey::generate().value();
  const fs::path other_key = w.f.env.tmp / "other.key";
  writeFile(other_key, other.privatePem());
  ::chmod(other_key.c_str(), 0600);
  const fs::path junk = w.f.env.tmp / "junk.hl7";
  writeFile(junk, "this is not HL7");

  struct Case {
    std::vector<std::string> args;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {{"--target", "pms-out", "--key", other_key.string(), "--key-id", w.f.key.keyId()},
       "bad_signature"},
      {{"--target", "pms-out", "--key", other_key.string()}, "unknown_key"},
      {{"--target", "pms-out", "--payload-agent", "practice-9999"}, "wrong_agent"},
      {{"--target", "pms-out", "--issued-at", "2020-01-01T00:00:00Z", "--expires", "60"},
       "expired"},
      {{"--target", "pms-ro"}, "write_disabled"},
      {{"--target", "no-such-adapter"}, "unknown_target"},
      {{"--target", "pms-out", "--body-file", junk.string()}, "bad_body"},
      {{"--target", "pms-out", "--format", "csv"}, "unsupported_format"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--wait", "30"});
    auto r = w.write(args);
    EXPECT_EQ(r.exit_code, 1) << c.reason << ": " << r.output;
    EXPECT_NE(r.output.find("\"status\":\"rejected\""), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"reason\":\"" + c.reason + "\""), std::string::npos) << r.output;
  }
  EXPECT_TRUE(w.pms->changes().empty());

  // Replayed id: a second, different document under an id already used.
  const std::string id = "01JE0000000000000000000R01";
  auto first = w.write({"--target", "pms-out", "--id", id, "--wait", "60"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path other_body = w.f.env.tmp / "other.hl7";
  writeFile(other_body, "MSH|^~\\&|PS|PS|PMS|C|||SIU^S15||P|2.5.1\rPID|1||MRN9^^^C^MR\r");
  auto replay = w.write(
      {"--target", "pms-out", "--id", id, "--body-file", other_body.string(), "--wait", "30"});
  EXPECT_EQ(replay.exit_code, 1) << replay.output;
  EXPECT_NE(replay.output.find("\"reason\":\"replayed_id\""), std::string::npos) << replay.output;
  EXPECT_EQ(w.pms->changes().size(), 1u);
}

TEST(WriteBack, PmsDownRequestsQueueThenApplyInOrder) {
  WriteBackFixture w;
  ASSERT_TRUE(w.f.startAgent()) << w.f.agent->log();
  w.pms->kill();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    // Same patient (the default booking's PID-3): they must apply in issue order.
    const std::string doc = w.printed({"--target", "pms-out"});
    ids.push_back(idOfDoc(doc));
    ASSERT_EQ(mosquittoPub(w.f.env, w.f.topic("down/appointment"), doc).exit_code, 0);
  }
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& id : ids) {
          if (w.results(id).empty()) {
            return false;
          }
        }
        return true;
      },
      30s))
      << w.f.agent->log();
  for (const auto& id : ids) {
    EXPECT_EQ(w.results(id)[0].getString("status"), "accepted");
  }
  EXPECT_TRUE(w.pms->changes().empty());
  w.pms->start();
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& id : ids) {
          if (w.finals(id).empty()) {
            return false;
          }
        }
        return true;
      },
      90s))
      << w.f.agent->log();
  auto changes = w.pms->changes();
  ASSERT_EQ(changes.size(), 3u);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(changes[i].getString("msh10"), msh10Of(ids[i]));
    EXPECT_EQ(w.finals(ids[i]).size(), 1u);
    EXPECT_EQ(w.finals(ids[i])[0].getString("status"), "delivered");
  }
}

TEST(WriteBack, KillMidWriteThenRestartGivesOneResultAndOneEffect) {
  // The PMS applies at once but answers the first receipt 4 s late: the agent is killed after
  // the effect and before the answer; after the restart it resends the same MSH-10, which the
  // PMS answers without applying it again.
  WriteBackFixture w({"--late-ms", "4000"}, 10);
  ASSERT_TRUE(w.f.startAgent()) << w.f.agent->log();
  const std::string doc = w.printed({"--target", "pms-out"});
  const std::string id = idOfDoc(doc);
  ASSERT_EQ(mosquittoPub(w.f.env, w.f.topic("down/appointment"), doc).exit_code, 0);
  ASSERT_TRUE(waitFor([&] { return w.pms->changes().size() == 1; }, 30s)) << w.f.agent->log();
  w.f.agent->kill();
  EXPECT_TRUE(w.finals(id).empty());
  ASSERT_TRUE(w.f.startAgent()) << w.f.agent->log();
  ASSERT_TRUE(waitFor([&] { return !w.finals(id).empty(); }, 60s)) << w.f.agent->log();
  // Give a second final result every chance to show up: an unrelated request goes through
  // after it, and results leave in commit order.
  auto after = w.write({"--target", "pms-out", "--wait", "60"});
  ASSERT_EQ(after.exit_code, 0) << after.output;
  EXPECT_EQ(w.finals(id).size(), 1u);
  EXPECT_EQ(w.finals(id)[0].getString("status"), "delivered");
  EXPECT_EQ(w.pms->changes(msh10Of(id)).size(), 1u);
}

}  // namespace
}  // namespace psa::test
