// The cloud -> agent direction (P/config/set, P/cmd/+ to the ControlSink; bad input counted
// and dropped), the retained status and its Last Will, and the agent -> cloud helpers
// (P/config/state, P/cmd/result, P/audit), against a real mosquitto with real clients.
#include <gtest/gtest.h>

#include <future>
#include <mutex>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

const std::string kPrefix = std::string("ps/") + kTenant + "/agent-1";

class RecordingSink : public cloudlink::ControlSink {
 public:
  void onConfigDocument(std::string payload) override {
    std::lock_guard lock(mu_);
    configs_.push_back(std::move(payload));
  }
  void onCommand(std::string name, std::string payload) override {
    std::lock_guard lock(mu_);
    commands_.emplace_back(std::move(name), std::move(payload));
  }
  void onWriteRequest(std::string kind, std::string payload) override {
    std::lock_guard lock(mu_);
    writes_.emplace_back(std::move(kind), std::move(payload));
  }
  std::vector<std::pair<std::string, std::string>> writes() const {
    std::lock_guard lock(mu_);
    return writes_;
  }
  std::vector<std::string> configs() const {
    std::lock_guard lock(mu_);
    return configs_;
  }
  std::vector<std::pair<std::string, std::string>> commands() const {
    std::lock_guard lock(mu_);
    return commands_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> configs_;
  std::vector<std::pair<std::string, std::string>> commands_;
  std::vector<std::pair<std::string, std::string>> writes_;
};

TEST(CloudLinkControl, ConfigAndCommandsReachTheSinkAndBadOnesAreDropped) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  RecordingSink sink;
  auto o = env.linkOptions("agent-1");
  o.max_control_bytes = 4096;
  LinkRunner runner(queue, o);
  runner.link().setControlSink(&sink);
  runner.start();
  ASSERT_TRUE(runner.waitConnected());
  // Subscriptions are made right after CONNACK; wait until the broker has them.
  ASSERT_TRUE(waitFor(
      [&] {
        mosquittoPub(env, kPrefix + "/cmd/ping", "{\"probe\":1}");
        return !sink.commands().empty();
      },
      10s));
  const std::string config = "{\"payload\":\"eyJ2ZXJzaW9uIjoxfQ==\",\"sig\":\"x\",\"key_id\":\"k1\"}";
  ASSERT_EQ(mosquittoPub(env, kPrefix + "/config/set", config).exit_code, 0);
  ASSERT_EQ(mosquittoPub(env, kPrefix + "/cmd/restart-adapter", "{\"id\":\"c1\"}").exit_code, 0);
  ASSERT_EQ(mosquittoPub(env, kPrefix + "/cmd/bad name!", "{}").exit_code, 0);
  ASSERT_EQ(mosquittoPub(env, kPrefix + "/config/set", std::string(5000, 'x')).exit_code, 0);
  ASSERT_TRUE(waitFor([&] { return runner.status().control_rejected >= 2; }, 10s))
      << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return sink.configs().size() == 1; }, 10s));
  EXPECT_EQ(sink.configs()[0], config);
  auto cmds = sink.commands();
  ASSERT_GE(cmds.size(), 2u);
  EXPECT_EQ(cmds.back().first, "restart-adapter");
  EXPECT_EQ(cmds.back().second, "{\"id\":\"c1\"}");
  const auto st = runner.status();
  EXPECT_EQ(st.control_rejected, 2u);
  EXPECT_EQ(st.control_received, cmds.size() + 1);
  // The link's own P/cmd/result is not looped back to it as a command.
  auto done = std::make_shared<std::promise<Status>>();
  runner.link().publishCommandResult("{\"id\":\"c1\",\"result\":\"ok\"}",
                                     [done](Status s) { done->set_value(std::move(s)); });
  auto f = done->get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(sink.commands().size(), cmds.size());
  EXPECT_TRUE(runner.stop());
}

// Write-back (issue 15): P/down/{kind} reaches the sink with its kind; an unknown kind is dropped
// and counted; the agent's own P/down/result goes out and is not looped back as a request.
TEST(CloudLinkControl, WriteRequestsReachTheSinkAndResultsGoOut) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  RecordingSink sink;
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.link().setControlSink(&sink);
  runner.start();
  ASSERT_TRUE(runner.waitConnected());
  TempDir sub_dir("psa-sub");
  auto args = mqttClientArgs(env, "mosquitto_sub", "cloud");
  for (const char* a : {"-q", "1", "-v", "-t", "ps/+/agent-1/down/result"}) {
    args.emplace_back(a);
  }
  Process::Options popts;
  popts.argv = args;
  popts.stdout_file = sub_dir / "out";
  Process sub(std::move(popts));
  ASSERT_TRUE(waitFor(
      [&] {
        mosquittoPub(env, kPrefix + "/down/appointment", "{\"probe\":1}");
        return !sink.writes().empty();
      },
      10s));
  EXPECT_EQ(sink.writes()[0].first, "appointment");
  const uint64_t rejected = runner.status().control_rejected;
  ASSERT_EQ(mosquittoPub(env, kPrefix + "/down/not-a-kind", "{}").exit_code, 0);
  ASSERT_TRUE(waitFor([&] { return runner.status().control_rejected == rejected + 1; }, 10s));
  const size_t before = sink.writes().size();
  auto sendResult = [&](const std::string& json) {
    auto done = std::make_shared<std::promise<Status>>();
    runner.link().publishWriteResult(json, [done](Status s) { done->set_value(std::move(s)); });
    auto f = done->get_future();
    return f.wait_for(10s) == std::future_status::ready && f.get().ok();
  };
  ASSERT_TRUE(waitFor(
      [&] {
        EXPECT_TRUE(sendResult("{\"id\":\"w1\",\"status\":\"accepted\"}"));
        return readFile(sub_dir / "out").find("w1") != std::string::npos;
      },
      10s));
  EXPECT_NE(readFile(sub_dir / "out")
                .find(kPrefix + "/down/result {\"id\":\"w1\",\"status\":\"accepted\"}"),
            std::string::npos);
  EXPECT_EQ(sink.writes().size(), before);
  EXPECT_TRUE(runner.stop());
}

// Persistent session (clean start off, session expiry): a config document the cloud publishes
// while the agent is offline is held by the broker and handed over when the agent reconnects
// with the same client id, which the CONNACK reports as a present session.
TEST(CloudLinkControl, DocumentsSentWhileOfflineArriveAfterReconnect) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  {
    RecordingSink sink;
    LinkRunner runner(queue, env.linkOptions("agent-1"));
    runner.link().setControlSink(&sink);
    runner.start();
    ASSERT_TRUE(runner.waitConnected());
    ASSERT_TRUE(waitFor(
        [&] {
          mosquittoPub(env, kPrefix + "/cmd/ping", "{\"probe\":1}");
          return !sink.commands().empty();
        },
        10s));
    EXPECT_FALSE(runner.status().session_present);  // a new session the first time
    ASSERT_TRUE(runner.stop());
  }
  const std::string config = "{\"payload\":\"eyJ2ZXJzaW9uIjoyfQ==\",\"sig\":\"y\",\"key_id\":\"k1\"}";
  ASSERT_EQ(mosquittoPub(env, kPrefix + "/config/set", config).exit_code, 0);

  RecordingSink sink;
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.link().setControlSink(&sink);
  runner.start();
  ASSERT_TRUE(runner.waitConnected());
  EXPECT_TRUE(runner.status().session_present) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return !sink.configs().empty(); }, 10s)) << runner.status().toJson();
  EXPECT_EQ(sink.configs()[0], config);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkControl, RetainedStatusOnlineThenOfflineFromTheWill) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.link().setStatusProvider([] { return std::string("{\"state\":\"online\",\"queue\":0}"); });
  runner.start();
  ASSERT_TRUE(runner.waitConnected());
  ASSERT_TRUE(waitFor([&] { return retainedMessage(env, kPrefix + "/status") ==
                                   "{\"state\":\"online\",\"queue\":0}"; },
                      10s));
  runner.link().publishStatus("{\"state\":\"online\",\"queue\":7}");
  ASSERT_TRUE(waitFor([&] { return retainedMessage(env, kPrefix + "/status") ==
                                   "{\"state\":\"online\",\"queue\":7}"; },
                      10s));
  ASSERT_TRUE(runner.stop());
  EXPECT_EQ(retainedMessage(env, kPrefix + "/status"), "{\"state\":\"offline\"}");
}

TEST(CloudLinkControl, AgentMessagesArriveOnTheirTopics) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  LinkRunner runner(queue, env.linkOptions("agent-1"));
  runner.start();
  ASSERT_TRUE(runner.waitConnected());
  TempDir sub_dir("psa-sub");
  auto args = mqttClientArgs(env, "mosquitto_sub", "cloud");
  for (const char* a : {"-q", "1", "-v", "-t", "ps/+/agent-1/config/state", "-t",
                        "ps/+/agent-1/cmd/result", "-t", "ps/+/agent-1/audit"}) {
    args.emplace_back(a);
  }
  Process::Options popts;
  popts.argv = args;
  popts.stdout_file = sub_dir / "out";
  Process sub(std::move(popts));
  auto publishAndWait = [&](auto&& publish) {
    auto done = std::make_shared<std::promise<Status>>();
    publish([done](Status s) { done->set_value(std::move(s)); });
    auto f = done->get_future();
    return f.wait_for(10s) == std::future_status::ready && f.get().ok();
  };
  // Until mosquitto_sub has subscribed, probes are lost; keep probing.
  ASSERT_TRUE(waitFor(
      [&] {
        publishAndWait([&](auto cb) { runner.link().publishAudit("[\"probe\"]", cb); });
        return readFile(sub_dir / "out").find("probe") != std::string::npos;
      },
      10s));
  EXPECT_TRUE(publishAndWait([&](auto cb) {
    runner.link().publishConfigState("{\"version\":3,\"result\":\"applied\"}", cb);
  }));
  EXPECT_TRUE(publishAndWait([&](auto cb) {
    runner.link().publishCommandResult("{\"id\":\"c9\",\"result\":\"ok\"}", cb);
  }));
  EXPECT_TRUE(publishAndWait(
      [&](auto cb) { runner.link().publishAudit("[{\"action\":\"config.applied\"}]", cb); }));
  ASSERT_TRUE(waitFor([&] { return readFile(sub_dir / "out").find("config.applied") !=
                                   std::string::npos; },
                      10s));
  const std::string out = readFile(sub_dir / "out");
  EXPECT_NE(out.find(kPrefix + "/config/state {\"version\":3,\"result\":\"applied\"}"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(kPrefix + "/cmd/result {\"id\":\"c9\",\"result\":\"ok\"}"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(kPrefix + "/audit [{\"action\":\"config.applied\"}]"), std::string::npos)
      << out;
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkControl, AgentMessagesAreHeldWhileOfflineAndSentAfterReconnect) {
  CloudEnv env;
  TestStore queue(env.tmp / "store");
  env.broker->stop();
  auto o = env.linkOptions("agent-1");
  o.max_control_queue = 2;
  LinkRunner runner(queue, o);
  runner.start();
  std::atomic<int> ok{0};
  std::promise<Status> overflow;
  runner.link().publishConfigState("{\"version\":3,\"result\":\"applied\"}",
                                   [&](Status s) { ok += s.ok() ? 1 : 0; });
  runner.link().publishAudit("[{\"action\":\"config.applied\"}]",
                             [&](Status s) { ok += s.ok() ? 1 : 0; });
  runner.link().publishAudit("[{\"action\":\"one.too.many\"}]",
                             [&](Status s) { overflow.set_value(std::move(s)); });
  auto overflow_result = overflow.get_future();
  ASSERT_EQ(overflow_result.wait_for(10s), std::future_status::ready);
  const Status full = overflow_result.get();
  ASSERT_FALSE(full.ok());
  EXPECT_TRUE(full.error().is(Errc::full));
  EXPECT_EQ(full.error().message, "cloud link queue full (2 messages)");
  ASSERT_TRUE(waitFor([&] { return runner.status().reconnects >= 2; }, 10s));
  EXPECT_EQ(ok.load(), 0);
  env.broker->start();
  ASSERT_TRUE(waitFor([&] { return ok.load() == 2; }, 15s)) << runner.status().toJson();
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
