// Staged apply of signed remote configs (and SIGHUP reloads) through the real broker and the real
// agent process built with the "test-tcp" line listener (agent_testsources): ACK after commit,
// like MLLP. Senders stream while configs are applied; nothing acknowledged is lost, adapters
// whose settings did not change keep their connections, failures roll back, and the applied
// config (or the last known good one) is what the agent runs after a restart.
#include <gtest/gtest.h>

#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> names(const json::Value& v, const char* key) {
  std::vector<std::string> out;
  if (const json::Value* list = v.find(key)) {
    for (const auto& n : list->items()) {
      out.push_back(n.asString());
    }
  }
  return out;
}

// Holds a listening TCP socket on a port (something else owns it).
class PortHolder {
 public:
  PortHolder() : port_(freePort()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 4) != 0) {
      throw std::runtime_error("cannot hold port");
    }
  }
  ~PortHolder() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int port_;
  int fd_ = -1;
};

bool allArrived(const CloudSim& sim, const std::vector<std::unique_ptr<LineSender>>& senders,
                std::string& missing) {
  const auto got = cloudIds(sim);
  for (const auto& s : senders) {
    for (const auto& id : s->acked()) {
      if (got.count(id) == 0) {
        missing = id;
        return false;
      }
    }
  }
  return true;
}

TEST(RemoteApply, GoodConfigAppliedWhileSixteenSendersStream) {
  RemoteFixture f(true);
  const int pa = freePort(), pb = freePort(), pc = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa), tcpAdapter("adt-b", pb)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pa) && canConnect("127.0.0.1", pb); }, 10s));

  std::vector<std::unique_ptr<LineSender>> senders;
  for (int i = 0; i < 16; ++i) {
    senders.push_back(std::make_unique<LineSender>((i < 8 ? "a" : "b") + std::to_string(i), i < 8 ? pa : pb));
  }
  auto everyoneAckedAtLeast = [&](size_t n) {
    return std::all_of(senders.begin(), senders.end(), [n](const auto& s) { return s->ackedCount() >= n; });
  };
  ASSERT_TRUE(waitFor([&] { return everyoneAckedAtLeast(20); }, 30s));

  // A unchanged, B changed (same port: handover), C new.
  json::Value r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa), tcpAdapter("adt-b", pb, "v2"),
                                               tcpAdapter("adt-c", pc)}), 1);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();
  EXPECT_EQ(names(r, "unchanged"), std::vector<std::string>{"adt-a"});
  EXPECT_EQ(names(r, "replaced"), std::vector<std::string>{"adt-b"});
  EXPECT_EQ(names(r, "started"), std::vector<std::string>{"adt-c"});
  EXPECT_TRUE(canConnect("127.0.0.1", pc));

  // Streaming goes on after the switch.
  std::vector<size_t> before;
  for (const auto& s : senders) {
    before.push_back(s->ackedCount());
  }
  ASSERT_TRUE(waitFor([&] {
    for (size_t i = 0; i < senders.size(); ++i) {
      if (senders[i]->ackedCount() < before[i] + 20) {
        return false;
      }
    }
    return true;
  }, 30s));
  for (auto& s : senders) {
    s->stop();
  }
  for (size_t i = 0; i < senders.size(); ++i) {
    EXPECT_EQ(senders[i]->unacked(), 0u) << "sender " << i;
    if (i < 8) {
      EXPECT_EQ(senders[i]->disconnects(), 0) << "sender " << i << " of the unchanged adapter lost its connection";
    } else {
      EXPECT_GE(senders[i]->disconnects(), 1) << "sender " << i << " should have been handed over";
    }
  }
  std::string missing;
  EXPECT_TRUE(waitFor([&] { return allArrived(*f.sim, senders, missing); }, 60s)) << "lost: " << missing;
  EXPECT_EQ(f.agent->stop(), 0) << f.agent->log();
}

TEST(RemoteApply, PortInUseRollsBackAndTheOldListenerKeepsWorking) {
  RemoteFixture f(true);
  const int pa = freePort();
  PortHolder taken;
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pa); }, 10s));
  std::vector<std::unique_ptr<LineSender>> senders;
  senders.push_back(std::make_unique<LineSender>("a0", pa));
  senders.push_back(std::make_unique<LineSender>("a1", pa));
  ASSERT_TRUE(waitFor([&] { return senders[0]->ackedCount() >= 10 && senders[1]->ackedCount() >= 10; }, 30s));

  // The listener moves to a port something else holds: it starts beside the old one, fails,
  // and nothing changes.
  json::Value r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", taken.port())}), 1);
  EXPECT_EQ(r.getString("result"), "rejected") << json::serialize(r);
  EXPECT_EQ(r.getString("reason"), "apply_failed");
  EXPECT_NE(r.getString("error").find("cannot listen on 127.0.0.1:" + std::to_string(taken.port())),
            std::string::npos) << json::serialize(r);
  EXPECT_NE(r.getString("error").find("rolled back"), std::string::npos);

  // A new adapter whose endpoint is unreachable: rejected, the running set untouched.
  const int pd = freePort();
  r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa), tcpAdapter("adt-d", pd, "", true)}), 1);
  EXPECT_EQ(r.getString("reason"), "apply_failed") << json::serialize(r);
  EXPECT_NE(r.getString("error").find("adt-d"), std::string::npos);
  EXPECT_FALSE(canConnect("127.0.0.1", pd));

  const size_t acked = senders[0]->ackedCount();
  ASSERT_TRUE(waitFor([&] { return senders[0]->ackedCount() >= acked + 10; }, 30s));
  EXPECT_EQ(senders[0]->disconnects(), 0);
  EXPECT_EQ(senders[1]->disconnects(), 0);

  // A handover that fails (same port, the new settings cannot start): the old adapter is
  // rebuilt; its senders reconnect and nothing is lost.
  r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa, "v2", true)}), 1);
  EXPECT_EQ(r.getString("reason"), "apply_failed") << json::serialize(r);
  const size_t again = senders[0]->ackedCount();
  ASSERT_TRUE(waitFor([&] { return senders[0]->ackedCount() >= again + 10; }, 30s)) << f.agent->log();

  // A rejected version was never applied: the fixed document may reuse it.
  r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa), tcpAdapter("adt-d", pd)}), 1);
  EXPECT_EQ(r.getString("result"), "applied") << json::serialize(r);
  EXPECT_TRUE(canConnect("127.0.0.1", pd));

  for (auto& s : senders) {
    s->stop();
    EXPECT_EQ(s->unacked(), 0u);
  }
  std::string missing;
  EXPECT_TRUE(waitFor([&] { return allArrived(*f.sim, senders, missing); }, 60s)) << "lost: " << missing;
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteApply, RenameOnTheSamePortIsHandedOver) {
  RemoteFixture f(true);
  const int pa = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  std::vector<std::unique_ptr<LineSender>> senders;
  senders.push_back(std::make_unique<LineSender>("a0", pa));
  ASSERT_TRUE(waitFor([&] { return senders[0]->ackedCount() >= 10; }, 30s));
  // Started beside the old one, the new listener could not bind: the old one goes first.
  json::Value r = f.pushConfig(adaptersConfig({tcpAdapter("adt-renamed", pa)}), 1);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();
  EXPECT_EQ(names(r, "started"), std::vector<std::string>{"adt-renamed"});
  EXPECT_EQ(names(r, "stopped"), std::vector<std::string>{"adt-a"});
  const size_t acked = senders[0]->ackedCount();
  ASSERT_TRUE(waitFor([&] { return senders[0]->ackedCount() >= acked + 10; }, 30s));
  senders[0]->stop();
  EXPECT_EQ(senders[0]->unacked(), 0u);
  EXPECT_GE(senders[0]->disconnects(), 1);
  std::string missing;
  EXPECT_TRUE(waitFor([&] { return allArrived(*f.sim, senders, missing); }, 60s)) << "lost: " << missing;
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteApply, RestartUsesTheAppliedConfigAndReplayStaysRejected) {
  RemoteFixture f(true);
  const int pa = freePort(), pc = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  const std::string v5 = f.configDoc(adaptersConfig({tcpAdapter("adt-c", pc)}), 5);
  json::Value r = f.pushConfig(v5);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r);
  EXPECT_EQ(names(r, "stopped"), std::vector<std::string>{"adt-a"});
  EXPECT_TRUE(waitFor([&] { return !canConnect("127.0.0.1", pa); }, 10s));

  ASSERT_EQ(f.agent->stop(), 0);
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  EXPECT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pc); }, 10s));
  EXPECT_FALSE(canConnect("127.0.0.1", pa));
  json::Value cfg = f.waitStatusConfig([](const json::Value& c) { return c.getInt("version") == 5; });
  EXPECT_EQ(cfg.getString("origin"), "cloud") << json::serialize(cfg);

  // The very same signed document again, and an older one: replays.
  r = f.pushConfig(v5);
  EXPECT_EQ(r.getString("reason"), "replay") << json::serialize(r);
  r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa)}), 4);
  EXPECT_EQ(r.getString("reason"), "replay");
  EXPECT_FALSE(canConnect("127.0.0.1", pa));
  EXPECT_EQ(f.agent->stop(), 0);
}

// The CLI reports what the agent runs now, not what it started with: after a remote config
// changed agent.log_level and the adapters, `log level` shows the new configured level and
// `status` lists the new adapter set (the removed one is gone, not "failed").
TEST(RemoteApply, LogLevelAndStatusFollowTheAppliedConfig) {
  // Real hl7-mllp adapters: the CLI validates the config file, which must not name test types.
  auto mllp = [](const std::string& name, int port) {
    json::Value a = json::Value::object();
    a.set("name", json::Value::string(name));
    a.set("type", json::Value::string("hl7-mllp"));
    a.set("vendor", json::Value::string("cerner"));
    a.set("listen", json::Value::string("127.0.0.1:" + std::to_string(port)));
    return a;
  };
  RemoteFixture f;
  const int pa = freePort(), pb = freePort();
  f.agent->config().set("adapters", json::Value::array({mllp("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  auto before = f.agent->cli({"log", "level"});
  ASSERT_EQ(before.exit_code, 0) << before.output;
  EXPECT_EQ(before.output, "info (config: info)\n");

  json::Value c = adaptersConfig({mllp("adt-b", pb)});
  c.set("agent", *json::parse(R"({"log_level":"warn"})"));
  json::Value r = f.pushConfig(c, 1);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();

  auto after = f.agent->cli({"log", "level"});
  ASSERT_EQ(after.exit_code, 0) << after.output;
  EXPECT_EQ(after.output, "warn (config: warn)\n");
  auto changed = f.agent->cli({"log", "level", "debug"});
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(changed.output.find("debug (was warn; back to warn at the next restart)"), std::string::npos)
      << changed.output;

  auto status = f.agent->cli({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  auto doc = json::parse(status.output);
  ASSERT_TRUE(doc.ok()) << status.output;
  std::vector<std::string> adapters;
  for (const auto& a : doc->find("adapters")->items()) {
    adapters.push_back(a.getString("name") + ":" + a.getString("state"));
  }
  ASSERT_EQ(adapters.size(), 1u) << status.output;
  EXPECT_EQ(adapters[0].rfind("adt-b:", 0), 0u) << status.output;
  EXPECT_EQ(adapters[0].find("failed"), std::string::npos) << status.output;
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteApply, CorruptNewestConfigFallsBackToTheLastKnownGood) {
  RemoteFixture f(true);
  const int pc = freePort(), pd = freePort();
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  ASSERT_EQ(f.pushConfig(adaptersConfig({tcpAdapter("adt-c", pc)}), 1).getString("result"), "applied");
  ASSERT_EQ(f.pushConfig(adaptersConfig({tcpAdapter("adt-c", pc), tcpAdapter("adt-d", pd)}), 2).getString("result"),
            "applied");
  ASSERT_TRUE(canConnect("127.0.0.1", pd));
  ASSERT_EQ(f.agent->stop(), 0);

  // Damage the newest stored config (a bit flip inside it: the checksum catches it).
  const auto newest = f.state / "remote" / "config-current.json";
  std::string text = readFile(newest);
  const auto at = text.find("adt-d");
  ASSERT_NE(at, std::string::npos);
  text[at] = 'X';
  writeFile(newest, text);

  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  EXPECT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pc); }, 10s));
  EXPECT_FALSE(canConnect("127.0.0.1", pd));
  json::Value cfg = f.waitStatusConfig([](const json::Value& c) { return c.getInt("version") == 1; });
  EXPECT_EQ(cfg.getString("origin"), "cloud-last-known-good") << json::serialize(cfg);
  EXPECT_NE(cfg.getString("problem").find("checksum mismatch"), std::string::npos) << json::serialize(cfg);
  EXPECT_NE(f.agent->log().find("event=using_last_known_good"), std::string::npos);

  // Version 2 was applied once: it stays a replay; the cloud must send a newer version.
  EXPECT_EQ(f.pushConfig(adaptersConfig({tcpAdapter("adt-c", pc), tcpAdapter("adt-d", pd)}), 2).getString("reason"),
            "replay");
  EXPECT_EQ(f.pushConfig(adaptersConfig({tcpAdapter("adt-c", pc), tcpAdapter("adt-d", pd)}), 3).getString("result"),
            "applied");
  EXPECT_TRUE(canConnect("127.0.0.1", pd));
  EXPECT_EQ(f.agent->stop(), 0);

  // Both stored configs unusable (newest garbage, previous no longer valid with the local
  // file): the local file alone.
  writeFile(f.state / "remote" / "config-current.json", "{not json");
  f.agent->config().find("agent")->set("log_level", json::Value::string("debug"));
  std::string prev = readFile(f.state / "remote" / "config-previous.json");
  writeFile(f.state / "remote" / "config-previous.json", prev.substr(0, prev.size() / 2));
  const int pa = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  EXPECT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pa); }, 10s));
  EXPECT_NE(f.agent->log().find("event=using_local_file_only"), std::string::npos);
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteApply, SighupReloadsTheLocalFileThroughTheStagedPath) {
  RemoteFixture f(true);
  const int pa = freePort(), pe = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pa); }, 10s));
  LineSender sender("a0", pa);
  ASSERT_TRUE(waitFor([&] { return sender.ackedCount() >= 10; }, 30s));

  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa), tcpAdapter("adt-e", pe)}));
  f.agent->reload();
  EXPECT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pe); }, 20s)) << f.agent->log();
  EXPECT_TRUE(waitFor([&] { return f.agent->log().find("event=reload_applied") != std::string::npos; }, 10s));

  // Settings only a restart can apply: refused, nothing changes.
  f.agent->config().set("store", *json::parse(R"({"max_bytes": 2097152})"));
  f.agent->reload();
  EXPECT_TRUE(waitFor([&] { return f.agent->log().find("changed=store.max_bytes") != std::string::npos; }, 20s))
      << f.agent->log();
  f.agent->config().erase("store");

  // An adapter that cannot start: rolled back.
  const int pf = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa), tcpAdapter("adt-f", pf, "", true)}));
  f.agent->reload();
  EXPECT_TRUE(waitFor([&] { return f.agent->log().find("reason=apply_failed") != std::string::npos; }, 20s))
      << f.agent->log();
  EXPECT_TRUE(canConnect("127.0.0.1", pe));  // still running: the failed reload changed nothing
  EXPECT_FALSE(canConnect("127.0.0.1", pf));

  // An invalid file: every issue logged with its path, nothing changes.
  writeFile(f.agent->configFile(), "{\"agent\": {\"id\": 5}}");
  f.agent->process()->signal(SIGHUP);
  EXPECT_TRUE(waitFor([&] { return f.agent->log().find("path=agent.id") != std::string::npos; }, 20s))
      << f.agent->log();
  const size_t acked = sender.ackedCount();
  EXPECT_TRUE(waitFor([&] { return sender.ackedCount() >= acked + 10; }, 30s));
  EXPECT_EQ(sender.disconnects(), 0);
  sender.stop();
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteApply, LockRefusesPushesUntilUnlocked) {
  RemoteFixture f(true);
  const int pa = freePort();
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  auto usage = f.agent->cli({"config", "lock"});
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  auto locked = f.agent->cli({"config", "lock", "--reason", "EHR upgrade tonight, ticket 4711"});
  ASSERT_EQ(locked.exit_code, 0) << locked.output;
  EXPECT_NE(locked.output.find("config locked"), std::string::npos) << locked.output;

  json::Value r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa)}), 1);
  EXPECT_EQ(r.getString("reason"), "locked") << json::serialize(r);
  EXPECT_NE(r.getString("error").find("EHR upgrade tonight, ticket 4711"), std::string::npos);
  EXPECT_FALSE(canConnect("127.0.0.1", pa));
  json::Value cfg = f.waitStatusConfig([](const json::Value& c) { return c.getBool("locked"); });
  EXPECT_EQ(cfg.find("lock")->getString("reason"), "EHR upgrade tonight, ticket 4711") << json::serialize(cfg);
  EXPECT_EQ(cfg.find("lock")->getString("by").rfind("uid:", 0), 0u);

  // The lock survives a restart.
  ASSERT_EQ(f.agent->stop(), 0);
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa)}), 2);
  EXPECT_EQ(r.getString("reason"), "locked") << json::serialize(r);

  // Commands still work while locked.
  EXPECT_EQ(f.command("ping").getString("result"), "ok");

  auto unlocked = f.agent->cli({"config", "unlock"});
  ASSERT_EQ(unlocked.exit_code, 0) << unlocked.output;
  EXPECT_NE(unlocked.output.find("config unlocked"), std::string::npos) << unlocked.output;
  r = f.pushConfig(adaptersConfig({tcpAdapter("adt-a", pa)}), 3);
  EXPECT_EQ(r.getString("result"), "applied") << json::serialize(r);
  EXPECT_TRUE(canConnect("127.0.0.1", pa));
  cfg = f.waitStatusConfig([](const json::Value& c) { return !c.getBool("locked") && c.getInt("version") == 3; });
  EXPECT_FALSE(cfg.isNull());

  // Locking and unlocking were audited with the technician's uid.
  EXPECT_TRUE(waitFor([&] {
    int seen = 0;
    for (const auto& batch : f.reports("audit")) {
      for (const auto& e : batch.payload.find("entries")->items()) {
        seen += (e.getString("action") == "config.locked" || e.getString("action") == "config.unlocked") &&
                e.getString("actor").rfind("uid:", 0) == 0;
      }
    }
    return seen == 2;
  }, 20s));
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
