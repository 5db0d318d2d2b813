// P/status from the agent: on state changes (an adapter failing is noticed without any command),
// at cloud.status_interval_s (which the cloud may change at run time), with the config version,
// source and lock; tuning values that only apply at start are reported as pending until then.
#include <gtest/gtest.h>

#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

int64_t statusMs(const Report& r) {
  int64_t ms = 0;
  parseRfc3339(r.payload.getString("at"), ms);
  return ms;
}

bool sendRaw(int port, const std::string& line) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
  char buf[16];
  ok = ok && ::recv(fd, buf, sizeof buf, 0) > 0;  // "OK"
  ::close(fd);
  return ok;
}

TEST(RemoteStatus, PublishedOnStateChangesAndAtTheInterval) {
  RemoteFixture f(true);
  const int pa = freePort();
  f.agent->config().set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  ASSERT_TRUE(waitFor([&] { return !f.reports("status").empty(); }, 20s));

  // An adapter failing is a state change: a status saying so goes out without being asked.
  ASSERT_TRUE(sendRaw(pa, "BREAK\n"));
  json::Value failed;
  EXPECT_TRUE(waitFor([&] {
    for (const auto& r : f.reports("status")) {
      for (const auto& a : r.payload.find("adapters")->items()) {
        if (a.getString("name") == "adt-a" && a.getString("state") == "failed") {
          failed = a;
          return true;
        }
      }
    }
    return false;
  }, 10s));
  EXPECT_FALSE(failed.getBool("healthy", true));

  // The cloud shortens the interval: statuses then arrive about every 5 s with nothing changing.
  json::Value c = *json::parse(R"({"cloud":{"status_interval_s":5},"adapters":[]})");
  c.set("adapters", json::Value::array({tcpAdapter("adt-a", pa)}));
  ASSERT_EQ(f.pushConfig(c, 1).getString("result"), "applied");
  const size_t n = f.reports("status").size();
  ASSERT_TRUE(waitFor([&] { return f.reports("status").size() >= n + 3; }, 30s));
  auto list = f.reports("status");
  const int64_t gap = statusMs(list[n + 2]) - statusMs(list[n + 1]);
  EXPECT_GE(gap, 4000) << gap;
  EXPECT_LE(gap, 7000) << gap;
  EXPECT_EQ(list.back().payload.find("config")->getInt("version"), 1);
  EXPECT_EQ(list.back().payload.getString("state"), "online");
  EXPECT_EQ(f.agent->stop(), 0);
}

TEST(RemoteStatus, TuningValuesApplyAtTheNextStart) {
  RemoteFixture f;
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  json::Value c = *json::parse(R"({"store":{"max_bytes":3145728},"cloud":{"max_inflight":7},"agent":{"log_level":"debug"}})");
  json::Value r = f.pushConfig(c, 1);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r);
  std::vector<std::string> pending;
  for (const auto& p : r.find("pending_restart")->items()) {
    pending.push_back(p.asString());
  }
  EXPECT_EQ(pending, (std::vector<std::string>{"store.max_bytes", "cloud.max_inflight"}));
  json::Value cfg = f.waitStatusConfig([](const json::Value& s) { return s.getInt("version") == 1; });
  EXPECT_EQ(cfg.find("pending_restart")->items().size(), 2u) << json::serialize(cfg);

  ASSERT_EQ(f.agent->stop(), 0);
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  json::Value status;
  ASSERT_TRUE(waitFor([&] {
    auto list = f.reports("status");
    if (list.empty() || list.back().payload.find("queue") == nullptr) {
      return false;
    }
    status = list.back().payload;
    return status.find("queue")->getInt("max_bytes") == 3145728;
  }, 20s)) << json::serialize(status);
  EXPECT_EQ(status.find("config")->find("pending_restart")->items().size(), 0u);
  EXPECT_EQ(status.find("config")->getString("log_level"), "debug") << json::serialize(status);
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
