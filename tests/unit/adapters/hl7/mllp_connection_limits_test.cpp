// The hl7-mllp listener's connection limits on real sockets: a full listener evicts its
// longest-idle connection instead of refusing a new one, never one whose message awaits its
// commit or ACK; a peer at max_connections_per_peer makes room among its own connections only
// (another host keeps its connections); a sender trickling a frame that never completes is
// closed as idle. Nothing acknowledged is lost by any of it.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "mllp_harness.h"
#include "psa/adapters/hl7/mllp.h"

namespace psa::test {
namespace {

namespace asio = boost::asio;
namespace hl7 = psa::adapters::hl7;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// The listener closed this connection: the next receive ends (not a timeout).
bool closedByListener(hl7::MllpClient& c) {
  auto r = c.receive();
  return !r && (r.error().is(Errc::closed) || r.error().is(Errc::io));
}

// A TCP client from a chosen loopback address ("another host": 127.0.0.2), with deadlines.
class FromAddress {
 public:
  FromAddress(const std::string& from, uint16_t port) : sock_(io_) {
    boost::system::error_code ec;
    sock_.open(tcp::v4(), ec);
    if (!ec) {
      sock_.bind(tcp::endpoint(asio::ip::make_address(from), 0), ec);
    }
    if (!ec) {
      sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    }
    error_ = ec;
  }
  const boost::system::error_code& error() const { return error_; }

  bool send(std::string_view bytes) {
    boost::system::error_code ec;
    asio::write(sock_, asio::buffer(bytes), ec);
    return !ec;
  }
  // The next ACK frame; nullopt when the connection ended (or nothing came within 10 s).
  std::optional<std::string> receive(bool* ended = nullptr) {
    std::optional<std::string> out;
    bool done = false;
    asio::async_read_until(sock_, asio::dynamic_buffer(buf_), std::string("\x1c\x0d"),
                           [&](const boost::system::error_code& ec, size_t n) {
                             done = true;
                             if (ended != nullptr) {
                               *ended = static_cast<bool>(ec);
                             }
                             if (!ec) {
                               out = buf_.substr(1, n - 3);
                               buf_.erase(0, n);
                             }
                           });
    io_.restart();
    io_.run_for(10s);
    if (!done) {
      sock_.cancel();
      io_.restart();
      io_.run();
    }
    return out;
  }

 private:
  asio::io_context io_;
  tcp::socket sock_;
  std::string buf_;
  boost::system::error_code error_;
};

TEST(MllpConnectionLimits, FullListenerEvictsTheLongestIdleConnectionInsteadOfRefusing) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"max_connections":2})"));
  auto c1 = h.connect();
  EXPECT_EQ(ackOf(c1->exchange(adtMessage("EVICT1"))).code, "AA");
  auto c2 = h.connect();
  EXPECT_EQ(ackOf(c2->exchange(adtMessage("EVICT2"))).code, "AA");
  // Full: the third gets in, and c1 (idle the longest) makes room.
  auto c3 = h.connect();
  EXPECT_EQ(ackOf(c3->exchange(adtMessage("EVICT3"))).code, "AA");
  EXPECT_TRUE(closedByListener(*c1));
  EXPECT_EQ(ackOf(c2->exchange(adtMessage("EVICT4"))).code, "AA");
  EXPECT_EQ(h.counter("connections_evicted"), 1u);
  EXPECT_EQ(h.counter("connections_over_limit"), 0u);
  ASSERT_TRUE(waitFor([&] { return detailInt(h.source(), "connections_open") == 2; }, 10s));
  // Everything acknowledged is stored.
  auto stored = h.contents();
  for (const char* id : {"EVICT1", "EVICT2", "EVICT3", "EVICT4"}) {
    EXPECT_EQ(stored.queued[id], 1) << id;
  }
}

TEST(MllpConnectionLimits, AConnectionAwaitingItsCommitIsNeverEvicted) {
  ManualSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config(R"({"max_connections":2})"));
  auto busy = h.connect();
  ASSERT_TRUE(busy->send(adtMessage("HELD1")));
  ASSERT_TRUE(sink.waitHeld(1));  // its commit is outstanding: not evictable
  auto idle = h.connect();
  ASSERT_TRUE(waitFor([&] { return detailInt(h.source(), "connections_open") == 2; }, 10s));
  // Full: `busy` is older, but only `idle` may make room.
  auto third = h.connect();
  EXPECT_TRUE(closedByListener(*idle));
  EXPECT_EQ(h.counter("connections_evicted"), 1u);
  ASSERT_TRUE(third->send(adtMessage("HELD2")));
  ASSERT_TRUE(sink.waitHeld(2));
  // Full again and both commits outstanding: a fourth connection is refused.
  auto fourth = h.connect();
  EXPECT_TRUE(closedByListener(*fourth));
  EXPECT_EQ(h.counter("connections_over_limit"), 1u);
  EXPECT_EQ(h.counter("connections_evicted"), 1u);
  // The commits finish: both senders get their ACKs.
  sink.commitAll();
  auto a1 = ackOf(busy->receive());
  EXPECT_EQ(a1.code, "AA");
  EXPECT_EQ(a1.control_id, "HELD1");
  auto a2 = ackOf(third->receive());
  EXPECT_EQ(a2.code, "AA");
  EXPECT_EQ(a2.control_id, "HELD2");
}

TEST(MllpConnectionLimits, APeerAtItsLimitEvictsItsOwnConnectionsNotAnotherHosts) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"max_connections":8,"max_connections_per_peer":3})"));
  // The practice's feed (127.0.0.1) connects first, so it is the longest idle of all.
  auto feed = h.connect();
  EXPECT_EQ(ackOf(feed->exchange(adtMessage("FEED1"))).code, "AA");
  // An interface engine on "another host" opens connection after connection, never closing.
  std::vector<std::unique_ptr<FromAddress>> engine;
  for (int i = 0; i < 12; ++i) {
    engine.push_back(std::make_unique<FromAddress>("127.0.0.2", h.port()));
    if (engine.back()->error()) {
      GTEST_SKIP() << "cannot connect from 127.0.0.2 here: " << engine.back()->error().message();
    }
    ASSERT_TRUE(engine.back()->send(hl7::mllpFrame(adtMessage("ENG" + std::to_string(i)))));
    auto ack = engine.back()->receive();
    ASSERT_TRUE(ack) << i;
    EXPECT_EQ(hl7::summarizeAck(*ack).value().code, "AA");
  }
  // It holds at most 3; the 9 oldest of its connections were closed, the feed's was not.
  EXPECT_EQ(h.counter("connections_evicted"), 9u);
  for (int i = 0; i < 9; ++i) {
    bool ended = false;
    EXPECT_FALSE(engine[static_cast<size_t>(i)]->receive(&ended)) << i;
    EXPECT_TRUE(ended) << i;
  }
  ASSERT_TRUE(waitFor([&] { return detailInt(h.source(), "connections_open") == 4; }, 10s));
  const auto st = h.source().status();
  EXPECT_EQ(st.detail.find("max_connections_per_peer")->asInt(), 3);
  EXPECT_EQ(st.detail.find("peers_open")->asInt(), 2);
  const json::Value& top = st.detail.find("top_peers")->items().at(0);
  EXPECT_EQ(top.getString("address"), "127.0.0.2");
  EXPECT_EQ(top.getInt("connections"), 3);
  EXPECT_EQ(ackOf(feed->exchange(adtMessage("FEED2"))).code, "AA");
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 14u);
}

TEST(MllpConnectionLimits, PerPeerLimitNeverExceedsMaxConnections) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"max_connections":2,"max_connections_per_peer":64})"));
  EXPECT_EQ(h.source().status().detail.find("max_connections_per_peer")->asInt(), 2);
}

TEST(MllpConnectionLimits, ASenderTricklingAFrameThatNeverEndsIsClosedAsIdle) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"idle_timeout_s":1})"));
  auto c = h.connect();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c->sendRaw(std::string("\x0bMSH|^~\\&|")));
  // One byte every 100 ms (ten times faster than the idle timeout) until the listener gives up.
  bool closed = waitFor(
      [&] {
        if (h.counter("idle_timeouts") > 0 || !c->sendRaw("A")) {
          return true;
        }
        std::this_thread::sleep_for(100ms);
        return false;
      },
      30s);
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closedByListener(*c));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  EXPECT_EQ(h.counter("idle_timeouts"), 1u);
  EXPECT_EQ(h.counter("idle_timeouts_mid_frame"), 1u);
  EXPECT_EQ(h.contents().queued_total, 0u);
}

TEST(MllpConnectionLimits, WholeFramesKeepAConnectionOpenPastTheIdleTimeout) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(R"({"idle_timeout_s":1})"));
  auto c = h.connect();
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  int k = 0;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(ackOf(c->exchange(adtMessage("ALIVE" + std::to_string(k++)))).code, "AA");
    std::this_thread::sleep_for(300ms);  // pacing the sender, not waiting for a result
  }
  EXPECT_EQ(h.counter("idle_timeouts"), 0u);
}

}  // namespace
}  // namespace psa::test
