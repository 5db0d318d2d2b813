// The hl7-mllp listener whose port another program holds at start: asked to retry, it shows
// "retrying" with the attempts and the next one, binds once the test releases the port, and
// serves; stop() ends the retries. The port is held by a real socket of this test.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "mllp_harness.h"

namespace psa::test {
namespace {

namespace asio = boost::asio;
namespace hl7 = psa::adapters::hl7;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Listens on 127.0.0.1 (any free port) until release().
class PortHolder {
 public:
  PortHolder() : acc_(io_) {
    acc_.open(tcp::v4());
    acc_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acc_.listen();
    port_ = acc_.local_endpoint().port();
  }
  uint16_t port() const { return port_; }
  void release() { acc_.close(); }

 private:
  asio::io_context io_;
  tcp::acceptor acc_;
  uint16_t port_ = 0;
};

TEST(MllpBindRetry, AHeldPortIsBoundOnceFreeAndTheListenerServes) {
  PortHolder holder;
  MllpHarness h;
  const std::string listen = "127.0.0.1:" + std::to_string(holder.port());
  const std::string err = h.start(MllpHarness::config(R"({"listen":")" + listen + "\"}"));
  ASSERT_EQ(err.rfind("listen " + listen + ": ", 0), 0u) << err;
  EXPECT_EQ(h.source().status().state, "failed");
  ASSERT_TRUE(h.source().retryStartInBackground());
  EXPECT_FALSE(h.source().retryStartInBackground()) << "only once";

  auto st = h.source().status();
  EXPECT_EQ(st.state, "retrying");
  EXPECT_FALSE(st.healthy);
  EXPECT_EQ(detailInt(st, "bind_attempts"), 1);
  const int64_t next = detailInt(st, "next_bind_attempt_in_ms");
  EXPECT_GE(next, 0);
  EXPECT_LE(next, 1000);
  EXPECT_EQ(st.last_error.rfind("listen " + listen + ": ", 0), 0u) << st.last_error;

  // The first retry (after 1 s) fails too, and the next one is further off.
  ASSERT_TRUE(waitFor([&] { return detailInt(h.source().status(), "bind_attempts") >= 2; }, 30s));
  st = h.source().status();
  EXPECT_EQ(st.state, "retrying");
  EXPECT_GT(detailInt(st, "next_bind_attempt_in_ms"), 0);
  EXPECT_LE(detailInt(st, "next_bind_attempt_in_ms"), 2000);

  holder.release();
  ASSERT_TRUE(waitFor([&] { return h.source().status().state == "listening"; }, 60s))
      << h.source().status().state;
  st = h.source().status();
  EXPECT_TRUE(st.healthy);
  EXPECT_EQ(st.detail.find("bind_attempts"), nullptr);
  EXPECT_EQ(st.detail.find("endpoints")->items().at(0).asString(), listen);

  auto o = h.clientOptions();
  o.port = holder.port();
  auto c = hl7::MllpClient::connect(o);
  ASSERT_TRUE(c) << c.error().describe();
  auto ack = c.value()->exchange(adtMessage("AFTERBIND1"));
  ASSERT_TRUE(ack) << ack.error().describe();
  EXPECT_EQ(hl7::summarizeAck(*ack).value().code, "AA");
  c.value()->close();
  ASSERT_TRUE(h.stop());
  EXPECT_EQ(h.contents().queued["AFTERBIND1"], 1);
}

TEST(MllpBindRetry, StopEndsTheRetries) {
  PortHolder holder;
  MllpHarness h;
  const std::string listen = "127.0.0.1:" + std::to_string(holder.port());
  ASSERT_FALSE(h.start(MllpHarness::config(R"({"listen":")" + listen + "\"}")).empty());
  ASSERT_TRUE(h.source().retryStartInBackground());
  auto source = h.sourcePtr();
  ASSERT_TRUE(h.stop(10s));
  EXPECT_EQ(source->status().state, "stopped");
  EXPECT_EQ(source->status().detail.find("next_bind_attempt_in_ms"), nullptr);
}

TEST(MllpBindRetry, NoRetryAfterASuccessfulStart) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config());
  EXPECT_FALSE(h.source().retryStartInBackground());
  EXPECT_EQ(h.source().status().state, "listening");
}

}  // namespace
}  // namespace psa::test
