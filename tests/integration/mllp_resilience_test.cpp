// The hl7-mllp adapter inside the real `pms-agent run` process when something takes its
// resources: a port another program (this test) holds at start is retried with back-off,
// shown in `status` and `check`, and bound once free; one host opening connection after
// connection cannot crowd out another host's feed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "mllp_senders.h"

namespace psa::test {
namespace {

namespace asio = boost::asio;
namespace hl7 = psa::adapters::hl7;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

json::Value statusJson(const AgentProcess& agent) {
  auto r = agent.cli({"status", "--json"});
  auto doc = json::parse(r.output);
  return doc ? std::move(doc).value() : json::Value::object();
}

json::Value adapterStatus(const AgentProcess& agent) {
  const json::Value doc = statusJson(agent);
  if (const json::Value* list = doc.find("adapters"); list && !list->items().empty()) {
    return list->items().front();
  }
  return json::Value::object();
}

std::string lineWith(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos) {
    return {};
  }
  const size_t begin = text.rfind('\n', at);
  const size_t end = text.find('\n', at);
  return text.substr(begin == std::string::npos ? 0 : begin + 1,
                     end == std::string::npos ? std::string::npos : end - begin - 1);
}

// Listens on 127.0.0.1:`port` until released (this process is "another program"). Not
// inherited by the agent this test starts (which would then hold the port itself).
class PortHolder {
 public:
  explicit PortHolder(int port) : acc_(io_) {
    acc_.open(tcp::v4());
    ::fcntl(acc_.native_handle(), F_SETFD, FD_CLOEXEC);
    acc_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)));
    acc_.listen();
  }
  void release() { acc_.close(); }

 private:
  asio::io_context io_;
  tcp::acceptor acc_;
};

TEST(MllpResilience, APortHeldAtStartIsRetriedShownAndBoundOnceFree) {
  TempDir tmp("psa-mllp-res");
  const int port = freePort();
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  const std::string me = "(pid " + std::to_string(::getpid()) + "), not the agent";
  auto holder = std::make_unique<PortHolder>(port);
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));
  ASSERT_TRUE(agent.start()) << agent.log();

  // status --json: retrying, the attempts, when the next one is due.
  json::Value a = adapterStatus(agent);
  EXPECT_EQ(a.getString("state"), "retrying") << a.getString("state");
  EXPECT_FALSE(a.getBool("healthy", true));
  const json::Value* detail = a.find("detail");
  ASSERT_NE(detail, nullptr);
  EXPECT_GE(detail->getInt("bind_attempts"), 1);
  ASSERT_NE(detail->find("next_bind_attempt_in_ms"), nullptr);
  EXPECT_EQ(a.getString("last_error").rfind("listen " + listen + ": ", 0), 0u)
      << a.getString("last_error");
  // status, for people.
  auto r = agent.cli({"status"});
  const std::string line = lineWith(r.output, "pms-adt ");
  EXPECT_NE(line.find("FAIL retrying"), std::string::npos) << r.output;
  EXPECT_NE(line.find("next bind attempt in "), std::string::npos) << line;
  EXPECT_NE(line.find("last error"), std::string::npos) << line;
  // check names this test as the holder of the port.
  r = agent.cli({"check"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(listen + " is held by "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(me), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("running adapter is retrying: listen " + listen), std::string::npos)
      << r.output;

  holder->release();
  ASSERT_TRUE(waitFor([&] { return adapterStatus(agent).getString("state") == "listening"; }, 90s))
      << agent.log();
  auto c = mllpConnect(port);
  ASSERT_NE(c, nullptr);
  auto ack = c->exchange(adtMessage("BOUNDLATE1"));
  ASSERT_TRUE(ack) << ack.error().describe();
  EXPECT_EQ(hl7::summarizeAck(*ack).value().code, "AA");
  c->close();
  r = agent.cli({"check"});
  const std::string ok = lineWith(r.output, "listening on " + listen);
  EXPECT_EQ(ok.rfind("OK", 0), 0u) << r.output;
  EXPECT_NE(ok.find("(pms-agent pid "), std::string::npos) << ok;

  ASSERT_EQ(agent.stop(), 0) << agent.log();
  const std::string log = agent.log();
  EXPECT_NE(log.find("event=adapter_start_failed"), std::string::npos) << log;
  EXPECT_NE(log.find("retrying=true"), std::string::npos) << log;
  EXPECT_NE(log.find("event=bind_recovered"), std::string::npos) << log;
  EXPECT_EQ(
      readStore(agent.stateDir() / "queue.db", agent.stateDir() / "queue.key").queued["BOUNDLATE1"],
      1);

  // The agent stopped and another program on the port: check does not call it the agent.
  holder = std::make_unique<PortHolder>(port);
  r = agent.cli({"check"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string held = lineWith(r.output, listen + " is held by ");
  EXPECT_EQ(held.rfind("FAIL", 0), 0u) << r.output;
  EXPECT_NE(held.find(me), std::string::npos) << held;
}

// A client from a chosen loopback address, for "another host".
tcp::socket connectFrom(asio::io_context& io, const std::string& from, int port,
                        boost::system::error_code& ec) {
  tcp::socket s(io);
  s.open(tcp::v4(), ec);
  if (!ec) {
    s.bind(tcp::endpoint(asio::ip::make_address(from), 0), ec);
  }
  if (!ec) {
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)), ec);
  }
  return s;
}

TEST(MllpResilience, OneHostOpeningConnectionAfterConnectionCannotCrowdOutAnother) {
  TempDir tmp("psa-mllp-res");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));  // default limits: 512, 64 per peer
  ASSERT_TRUE(agent.start()) << agent.log();
  // The practice's feed: one connection, used now and then.
  auto feed = mllpConnect(port);
  ASSERT_NE(feed, nullptr);
  EXPECT_EQ(hl7::summarizeAck(feed->exchange(adtMessage("FEED1")).value()).value().code, "AA");
  // An engine on "another host" opens 200 connections and closes none.
  asio::io_context io;
  std::vector<tcp::socket> engine;
  for (int i = 0; i < 200; ++i) {
    boost::system::error_code ec;
    engine.push_back(connectFrom(io, "127.0.0.2", port, ec));
    if (ec) {
      GTEST_SKIP() << "cannot connect from 127.0.0.2 here: " << ec.message();
    }
  }
  ASSERT_TRUE(waitFor(
      [&] {
        const json::Value a = adapterStatus(agent);
        const json::Value* c = a.find("counters");
        return c != nullptr && c->getInt("connections_evicted") == 136;
      },
      60s))
      << json::serialize(statusJson(agent));
  const json::Value a = adapterStatus(agent);
  const json::Value* top = a.find("detail")->find("top_peers");
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(top->items().at(0).getString("address"), "127.0.0.2");
  EXPECT_EQ(top->items().at(0).getInt("connections"), 64);
  EXPECT_EQ(a.find("counters")->getInt("connections_over_limit"), 0);
  // The feed's connection is still there, and a new one from its host gets in too.
  EXPECT_EQ(hl7::summarizeAck(feed->exchange(adtMessage("FEED2")).value()).value().code, "AA");
  auto second = mllpConnect(port);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(hl7::summarizeAck(second->exchange(adtMessage("FEED3")).value()).value().code, "AA");
  engine.clear();
  feed->close();
  second->close();
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  EXPECT_NE(agent.log().find("event=connection_evicted"), std::string::npos);
  auto stored = readStore(agent.stateDir() / "queue.db", agent.stateDir() / "queue.key");
  EXPECT_EQ(stored.queued_total, 3u);
}

}  // namespace
}  // namespace psa::test
