// Signed remote commands end to end (real broker, real agent process, answers on P/cmd/result):
// ping, status, restart-adapter, set-log-level, rotate-key, retry-dead (by id and all), bundle
// (chunks reassembled and checked against their sha256), an unknown command; each audited.
#include <gtest/gtest.h>

#include "psa/cloudlink/envelope.h"
#include "psa/store/sqlite_store.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

// Dead letters straight into the agent's store (agent stopped), as an adapter would at ingest.
std::vector<std::string> prefillDead(const std::filesystem::path& state_dir, size_t n) {
  store::StoreOptions o;
  o.db_path = state_dir / "queue.db";
  o.key_file = state_dir / "queue.key";
  auto opened = store::SqliteStore::open(o);
  if (!opened) {
    throw std::runtime_error(opened.error().describe());
  }
  store::AppendBatch batch;
  for (size_t i = 0; i < n; ++i) {
    store::DeadLetterInput d;
    d.record.source = "adt-x";
    d.record.vendor = "cerner";
    d.record.kind = store::Kind::patient;
    d.record.format = "hl7v2";
    d.record.payload = Sensitive<std::string>("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|DEAD" + std::to_string(i) + "|P|2.5\r");
    d.reason = "test: rejected at ingest";
    batch.dead.push_back(std::move(d));
  }
  auto res = (*opened)->appendSync(std::move(batch));
  if (!res) {
    throw std::runtime_error(res.error().describe());
  }
  (*opened)->close();
  return res->dead_ids;
}

std::set<std::string> auditedActions(RemoteFixture& f) {
  std::set<std::string> out;
  for (const auto& batch : f.reports("audit")) {
    for (const auto& e : batch.payload.find("entries")->items()) {
      out.insert(e.getString("action"));
    }
  }
  return out;
}

TEST(RemoteCommands, EachCommandEndToEnd) {
  RemoteFixture f(true);
  std::filesystem::create_directories(f.state);
  const auto dead = prefillDead(f.state, 3);
  const int pa = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", pa); }, 10s));

  // ping
  json::Value r = f.command("ping");
  ASSERT_EQ(r.getString("result"), "ok") << json::serialize(r) << f.agent->log();
  EXPECT_TRUE(r.find("data")->getBool("pong"));
  EXPECT_EQ(r.getString("command"), "ping");

  // status: publishes P/status now.
  const size_t statuses = f.reports("status").size();
  r = f.command("status");
  EXPECT_EQ(r.getString("result"), "ok") << json::serialize(r);
  EXPECT_TRUE(waitFor([&] { return f.reports("status").size() > statuses; }, 10s));
  EXPECT_EQ(f.reports("status").back().payload.getString("agent_id"), kRemoteAgent);

  // restart-adapter: the sender's connection is closed after its ACKs, it reconnects.
  LineSender sender("a0", pa);
  ASSERT_TRUE(waitFor([&] { return sender.ackedCount() >= 10; }, 30s));
  r = f.command("restart-adapter", *json::parse(R"({"name":"adt-a"})"));
  EXPECT_EQ(r.getString("result"), "ok") << json::serialize(r);
  EXPECT_EQ(r.find("data")->getString("restarted"), "adt-a");
  const size_t acked = sender.ackedCount();
  EXPECT_TRUE(waitFor([&] { return sender.ackedCount() >= acked + 10; }, 30s));
  EXPECT_GE(sender.connects(), 2);
  sender.stop();
  EXPECT_EQ(sender.unacked(), 0u);
  r = f.command("restart-adapter", *json::parse(R"({"name":"nope"})"));
  EXPECT_EQ(r.getString("reason"), "bad_args") << json::serialize(r);
  EXPECT_NE(r.getString("error").find("no running adapter named \"nope\""), std::string::npos);
  r = f.command("restart-adapter");
  EXPECT_EQ(r.getString("reason"), "bad_args");

  // set-log-level
  r = f.command("set-log-level", *json::parse(R"({"level":"debug"})"));
  EXPECT_EQ(r.getString("result"), "ok") << json::serialize(r);
  EXPECT_EQ(r.find("data")->getString("level"), "debug");
  EXPECT_EQ(r.find("data")->getString("previous"), "info");
  EXPECT_TRUE(waitFor([&] { return f.agent->log().find("level=debug") != std::string::npos; }, 20s));
  r = f.command("set-log-level", *json::parse(R"({"level":"info"})"));
  EXPECT_EQ(r.find("data")->getString("previous"), "debug");

  // rotate-key
  r = f.command("rotate-key");
  EXPECT_EQ(r.getString("result"), "ok") << json::serialize(r);
  const int64_t key_id = r.find("data")->getInt("key_id");
  EXPECT_GE(key_id, 2);
  r = f.command("rotate-key");
  EXPECT_EQ(r.find("data")->getInt("key_id"), key_id + 1);

  // retry-dead by id: the record goes to the cloud with its original msg-id.
  r = f.command("retry-dead", *json::parse("{\"id\":\"" + dead[0] + "\"}"));
  EXPECT_EQ(r.getString("result"), "ok") << json::serialize(r);
  EXPECT_TRUE(waitFor([&] { return f.sim->unique().count(dead[0]) == 1; }, 30s));
  r = f.command("retry-dead", *json::parse("{\"id\":\"" + dead[0] + "\"}"));
  EXPECT_EQ(r.getString("reason"), "bad_args") << json::serialize(r);  // no longer dead
  r = f.command("retry-dead");
  EXPECT_EQ(r.getString("reason"), "bad_args");
  r = f.command("retry-dead", *json::parse(R"({"all":true})"));
  EXPECT_EQ(r.find("data")->getInt("retried"), 2) << json::serialize(r);
  EXPECT_TRUE(waitFor([&] { return f.sim->unique().count(dead[1]) == 1 && f.sim->unique().count(dead[2]) == 1; }, 30s));

  // unknown
  r = f.command("format-disk");
  EXPECT_EQ(r.getString("result"), "rejected");
  EXPECT_EQ(r.getString("reason"), "unknown_command");

  // Every command audited.
  std::set<std::string> actions;
  EXPECT_TRUE(waitFor([&] {
    actions = auditedActions(f);
    for (const char* a : {"command.ping", "command.status", "command.restart-adapter", "command.set-log-level",
                          "command.rotate-key", "command.retry-dead", "command.unknown"}) {
      if (actions.count(a) == 0) {
        return false;
      }
    }
    return true;
  }, 20s)) << ::testing::PrintToString(actions);
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteCommands, BundleArrivesInChunksWithItsSha256) {
  RemoteFixture f;
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  // Some log volume so the bundle spans several chunks.
  for (int i = 0; i < 5; ++i) {
    f.command("ping");
  }
  const std::string id = "bundle-1";
  const size_t before = f.reports("cmd/result").size();
  auto pub = mosquittoPub(f.env, f.topic("cmd/bundle"), f.commandDoc("bundle", json::Value::object(), id));
  ASSERT_EQ(pub.exit_code, 0) << pub.output;
  std::map<int64_t, std::string> chunks;
  json::Value first;
  ASSERT_TRUE(waitFor([&] {
    auto list = f.reports("cmd/result");
    for (size_t i = before; i < list.size(); ++i) {
      const json::Value& p = list[i].payload;
      if (p.getString("id") != id) {
        continue;
      }
      EXPECT_EQ(p.getString("result"), "ok") << json::serialize(p);
      const json::Value* data = p.find("data");
      if (data == nullptr) {
        return true;
      }
      first = *data;
      chunks[data->getInt("chunk")] = data->getString("data");
    }
    return !first.isNull() && static_cast<int64_t>(chunks.size()) == first.getInt("chunks");
  }, 30s)) << f.agent->log();
  std::string bytes;
  for (const auto& [k, b64] : chunks) {
    auto part = agent::base64Decode(b64);
    ASSERT_TRUE(part.has_value()) << "chunk " << k;
    bytes += *part;
  }
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), first.getInt("size"));
  EXPECT_EQ(psa::sha256Hex(bytes), first.getString("sha256"));
  // The same tar.gz as `pms-agent bundle` (stored deflate: member names readable).
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes.substr(0, 2), std::string("\x1f\x8b", 2));
  EXPECT_NE(bytes.find("status.json"), std::string::npos);
  EXPECT_NE(bytes.find("config.json"), std::string::npos);
  EXPECT_NE(first.getString("file").find(".tar.gz"), std::string::npos);
  // No key material in the bundle.
  EXPECT_EQ(bytes.find("PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(waitFor([&] { return auditedActions(f).count("command.bundle") == 1; }, 20s));
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
