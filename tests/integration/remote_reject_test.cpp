// Signed config documents and commands that must be refused, through the real broker and the
// real agent process: every rejection reason arrives on P/config/state or P/cmd/result with
// the exact reason (and JSON paths for schema errors), is audited, and changes nothing.
#include <gtest/gtest.h>

#include "psa/store/sqlite_store.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

std::string reasonOf(const json::Value& v) { return v.getString("reason"); }

std::vector<std::string> errorPaths(const json::Value& v) {
  std::vector<std::string> out;
  if (const json::Value* e = v.find("errors")) {
    for (const auto& item : e->items()) {
      out.push_back(item.getString("path"));
    }
  }
  return out;
}

// The envelope with one member replaced.
std::string withMember(const std::string& envelope, const std::string& key, json::Value value) {
  json::Value v = *json::parse(envelope);
  v.set(key, std::move(value));
  return json::serialize(v);
}

json::Value logLevel(const std::string& level) {
  json::Value c = json::Value::object();
  json::Value a = json::Value::object();
  a.set("log_level", json::Value::string(level));
  c.set("agent", std::move(a));
  return c;
}

TEST(RemoteReject, EveryBadConfigDocumentIsRefusedWithItsReason) {
  RemoteFixture f;
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  // Not JSON at all.
  json::Value r = f.pushConfig("this is not json");
  ASSERT_FALSE(r.isNull()) << f.agent->log();
  EXPECT_EQ(r.getString("result"), "rejected");
  EXPECT_EQ(reasonOf(r), "malformed");
  EXPECT_TRUE(r.find("version")->isNull());

  // Payload not base64.
  r = f.pushConfig(withMember(f.configDoc(logLevel("debug"), 1), "payload", json::Value::string("!!notbase64")));
  EXPECT_EQ(reasonOf(r), "malformed") << json::serialize(r);

  // Missing signature.
  json::Value unsigned_doc = *json::parse(f.configDoc(logLevel("debug"), 1));
  unsigned_doc.erase("sig");
  r = f.pushConfig(json::serialize(unsigned_doc));
  EXPECT_EQ(reasonOf(r), "bad_signature") << json::serialize(r);

  // Tampered payload: a valid signature of other bytes.
  const std::string good = f.configDoc(logLevel("debug"), 1);
  const std::string other = f.configDoc(logLevel("error"), 1);
  r = f.pushConfig(withMember(good, "payload", *json::parse(other)->find("payload")));
  EXPECT_EQ(reasonOf(r), "bad_signature") << json::serialize(r);

  // Signature of the wrong length.
  r = f.pushConfig(withMember(good, "sig", json::Value::string(agent::base64Encode("short"))));
  EXPECT_EQ(reasonOf(r), "bad_signature");

  // Signed by a key the agent does not know; and an unknown key id on a good signature.
  auto stranger = std::move(agent::SigningKey::generate()).value();
  const int64_t now = Clock::system()->nowMs();
  r = f.pushConfig(stranger.envelope(agent::makeConfigPayload(kRemoteAgent, 1, now, now + 60000, logLevel("debug"))));
  EXPECT_EQ(reasonOf(r), "unknown_key") << json::serialize(r);
  r = f.pushConfig(withMember(good, "key_id", json::Value::string("0000000000000000")));
  EXPECT_EQ(reasonOf(r), "unknown_key");
  // A known key id with another key's signature.
  r = f.pushConfig(stranger.envelope(agent::makeConfigPayload(kRemoteAgent, 1, now, now + 60000, logLevel("debug")),
                                     f.key.keyId()));
  EXPECT_EQ(reasonOf(r), "bad_signature");

  // Authentic but for another agent.
  r = f.pushConfig(f.configDoc(logLevel("debug"), 3, 300000, 0, "practice-0099"));
  EXPECT_EQ(reasonOf(r), "wrong_agent") << json::serialize(r);
  EXPECT_EQ(r.getInt("version"), 3);

  // Expired; not yet valid.
  r = f.pushConfig(f.configDoc(logLevel("debug"), 4, 1000, -60000));
  EXPECT_EQ(reasonOf(r), "expired") << json::serialize(r);
  r = f.pushConfig(f.configDoc(logLevel("debug"), 5, 3600000, 3600000));
  EXPECT_EQ(reasonOf(r), "not_yet_valid") << json::serialize(r);

  // Payload JSON that is not valid JSON (signed).
  r = f.pushConfig(f.key.envelope("{\"agent_id\":"));
  EXPECT_EQ(reasonOf(r), "malformed");

  // Payload schema: version missing, config not an object, unknown member.
  r = f.pushConfig(f.key.envelope(R"({"agent_id":"practice-0042","issued_at":"2026-01-01T00:00:00Z",)"
                                  R"("expires_at":"2999-01-01T00:00:00Z","config":[],"colour":1})"));
  EXPECT_EQ(reasonOf(r), "schema") << json::serialize(r);
  auto paths = errorPaths(r);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "version"), paths.end()) << json::serialize(r);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "config"), paths.end());
  EXPECT_NE(std::find(paths.begin(), paths.end(), "colour"), paths.end());

  // Config schema: every error with its path.
  json::Value bad = *json::parse(R"({"agent":{"log_level":"loud"},"adapters":[{"name":"x"}],"widgets":1})");
  r = f.pushConfig(bad, 6);
  EXPECT_EQ(reasonOf(r), "schema") << json::serialize(r);
  paths = errorPaths(r);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "config.agent.log_level"), paths.end()) << json::serialize(r);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "config.widgets"), paths.end()) << json::serialize(r);
  // The adapters are validated against the adapter schemas (after the top-level checks pass).
  r = f.pushConfig(*json::parse(R"({"adapters":[{"name":"x","vendor":"cerner"}]})"), 6);
  EXPECT_EQ(reasonOf(r), "schema") << json::serialize(r);
  paths = errorPaths(r);
  EXPECT_NE(std::find(paths.begin(), paths.end(), "config.adapters[0].type"), paths.end()) << json::serialize(r);

  // Forbidden changes: agent id, trust anchors, state dir.
  for (const auto& [section, key, value] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"agent", "id", "practice-0099"},
           {"agent", "state_dir", "/tmp/elsewhere"},
           {"cloud", "ca_file", "/tmp/evil-ca.pem"},
           {"cloud", "config_signing_key", "/tmp/evil.pub.pem"},
           {"control", "socket", "/tmp/evil.sock"}}) {
    json::Value c = json::Value::object();
    json::Value s = json::Value::object();
    s.set(key, json::Value::string(value));
    c.set(section, std::move(s));
    r = f.pushConfig(c, 7);
    EXPECT_EQ(reasonOf(r), "forbidden") << section << "." << key << " " << json::serialize(r);
    paths = errorPaths(r);
    EXPECT_EQ(paths, std::vector<std::string>{"config." + section + "." + key}) << json::serialize(r);
  }
  // Repeating the local value unchanged is not a change.
  json::Value same = logLevel("debug");
  same.find("agent")->set("id", json::Value::string(kRemoteAgent));
  r = f.pushConfig(same, 10);
  EXPECT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();

  // Replay: the same version, an older one.
  r = f.pushConfig(logLevel("info"), 10);
  EXPECT_EQ(reasonOf(r), "replay") << json::serialize(r);
  r = f.pushConfig(logLevel("info"), 9);
  EXPECT_EQ(reasonOf(r), "replay");
  r = f.pushConfig(logLevel("info"), 11);
  EXPECT_EQ(r.getString("result"), "applied");

  // Everything was audited and uploaded: one entry per rejection and per applied config.
  size_t rejected = 0;
  size_t applied = 0;
  ASSERT_TRUE(waitFor([&] {
    rejected = applied = 0;
    for (const auto& batch : f.reports("audit")) {
      for (const auto& e : batch.payload.find("entries")->items()) {
        rejected += e.getString("action") == "config.rejected";
        applied += e.getString("action") == "config.applied";
      }
    }
    return applied == 2 && rejected >= 22;
  }, 20s)) << "rejected " << rejected << " applied " << applied;
  EXPECT_EQ(rejected, 22u);
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteReject, BadCommandsAreRefusedWithTheirReason) {
  RemoteFixture f;
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  const json::Value no_args = json::Value::object();

  json::Value r = f.sendCommandDoc("ping", "garbage", "");
  EXPECT_EQ(r.getString("result"), "rejected") << f.agent->log();
  EXPECT_EQ(reasonOf(r), "malformed");
  EXPECT_TRUE(r.find("id")->isNull());

  // Tampered.
  const std::string good = f.commandDoc("ping", no_args, "c1");
  const std::string other = f.commandDoc("ping", no_args, "c2");
  r = f.sendCommandDoc("ping", withMember(good, "payload", *json::parse(other)->find("payload")), "");
  EXPECT_EQ(reasonOf(r), "bad_signature");
  // Unknown key.
  auto stranger = std::move(agent::SigningKey::generate()).value();
  const int64_t now = Clock::system()->nowMs();
  r = f.sendCommandDoc("ping", stranger.envelope(agent::makeCommandPayload(kRemoteAgent, "c3", now, now + 60000, "ping", no_args)), "");
  EXPECT_EQ(reasonOf(r), "unknown_key");
  // Wrong agent, expired.
  r = f.sendCommandDoc("ping", f.commandDoc("ping", no_args, "c4", 60000, "practice-0099"), "c4");
  EXPECT_EQ(reasonOf(r), "wrong_agent");
  r = f.sendCommandDoc("ping", f.commandDoc("ping", no_args, "c5", 1000, kRemoteAgent, -60000), "c5");
  EXPECT_EQ(reasonOf(r), "expired");
  r = f.sendCommandDoc("ping", f.commandDoc("ping", no_args, "c5b", 60000, kRemoteAgent, 3600000), "c5b");
  EXPECT_EQ(reasonOf(r), "not_yet_valid");
  // The topic and the signed command disagree (a signed ping replayed onto rotate-key).
  r = f.sendCommandDoc("rotate-key", f.commandDoc("ping", no_args, "c6"), "c6");
  EXPECT_EQ(reasonOf(r), "schema") << json::serialize(r);
  // Unknown command, bad args.
  r = f.command("self-destruct");
  EXPECT_EQ(r.getString("result"), "rejected");
  EXPECT_EQ(reasonOf(r), "unknown_command");
  EXPECT_NE(r.getString("error").find("unknown command \"self-destruct\""), std::string::npos) << json::serialize(r);
  r = f.command("set-log-level", *json::parse(R"({"level":"loud"})"));
  EXPECT_EQ(reasonOf(r), "bad_args") << json::serialize(r);
  r = f.command("ping", *json::parse(R"({"force":true})"));
  EXPECT_EQ(reasonOf(r), "bad_args");
  // Replay of an accepted command id.
  r = f.sendCommandDoc("ping", good, "c1");
  EXPECT_EQ(r.getString("result"), "ok") << json::serialize(r);
  r = f.sendCommandDoc("ping", good, "c1");
  EXPECT_EQ(reasonOf(r), "replay") << json::serialize(r);
  // ... also after a restart.
  ASSERT_EQ(f.agent->stop(), 0);
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  r = f.sendCommandDoc("ping", good, "c1");
  EXPECT_EQ(reasonOf(r), "replay") << json::serialize(r);
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteReject, NoSigningKeyConfiguredRefusesEverything) {
  RemoteFixture f;
  f.agent->config().find("cloud")->erase("config_signing_key");
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  json::Value r = f.pushConfig(f.configDoc(logLevel("debug"), 1));
  EXPECT_EQ(reasonOf(r), "unknown_key");
  EXPECT_NE(r.getString("error").find("no cloud.config_signing_key"), std::string::npos) << json::serialize(r);

  // Unauthenticated junk is answered every time but audited at a bounded rate (10 a minute),
  // so whoever can publish to our topics cannot grow the audit log without limit.
  for (int i = 0; i < 14; ++i) {
    EXPECT_EQ(reasonOf(f.pushConfig("junk " + std::to_string(i))), "malformed");
  }
  EXPECT_EQ(f.reports("config/state").size(), 15u);
  ASSERT_EQ(f.agent->stop(), 0);
  store::StoreOptions o;
  o.db_path = f.state / "queue.db";
  o.key_file = f.state / "queue.key";
  auto opened = store::SqliteStore::open(o);
  ASSERT_TRUE(opened.ok());
  auto entries = (*opened)->auditEntries(0, 10000);
  ASSERT_TRUE(entries.ok());
  size_t audited = 0;
  for (const auto& e : *entries) {
    audited += e.actor == "unauthenticated" && e.action == "config.rejected";
  }
  EXPECT_EQ(audited, 10u);
  (*opened)->close();
}

}  // namespace
}  // namespace psa::test
