// CloudLink without a broker: option validation, lifecycle, status snapshot.
#include "psa/cloudlink/cloud_link.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <future>
#include <thread>

#include "link_harness.h"
#include "memory_queue.h"
#include "psa/store/json.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::cloudlink {
namespace {

using namespace std::chrono_literals;

TEST(CloudLinkOptions, DefaultsMatchTheDesign) {
  CloudLinkOptions o;
  EXPECT_EQ(o.max_inflight, 100u);
  EXPECT_EQ(o.confirm, Confirm::broker);
  EXPECT_EQ(o.backoff_initial, 1s);
  EXPECT_EQ(o.backoff_max, 300s);
  EXPECT_TRUE(validateOptions(goodOptions()).ok());
}

TEST(CloudLinkOptions, EachProblemIsNamed) {
  struct Case {
    std::function<void(CloudLinkOptions&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](auto& o) { o.url = "mqtt://x"; },
       "cloud.url: only mqtts:// URLs are supported (TLS is mandatory): mqtt://x"},
      {[](auto& o) { o.tenant = "a/b"; },
       "agent.tenant: must be a non-empty MQTT topic level without '/', '+', '#'"},
      {[](auto& o) { o.agent_id = ""; },
       "agent.id: must be a non-empty MQTT topic level without '/', '+', '#'"},
      {[](auto& o) { o.cert_file.clear(); },
       "cloud.ca_file, cloud.cert_file and cloud.key_file are all required (mutual TLS)"},
      {[](auto& o) { o.max_inflight = 0; }, "cloud.max_inflight: must be 1..65535"},
      {[](auto& o) { o.max_inflight = 70000; }, "cloud.max_inflight: must be 1..65535"},
      {[](auto& o) { o.keepalive = 2s; }, "cloud.keepalive: must be 5..65535 seconds"},
      {[](auto& o) {
         o.confirm = Confirm::receipt;
         o.receipt_timeout = 0ms;
       },
       "cloud.receipt_timeout and max_unreceipted must be positive in receipt mode"},
      {[](auto& o) { o.puback_timeout = 0ms; },
       "cloud.puback_timeout and connect_timeout must be positive"},
      {[](auto& o) { o.backoff_max = 1ms; }, "backoff: need 0 < backoff_initial <= backoff_max"},
      {[](auto& o) { o.retry_initial = 0ms; }, "retry: need 0 < retry_initial <= retry_max"},
      {[](auto& o) { o.max_control_bytes = 10; }, "max_control_bytes: at least 1024"},
  };
  for (const Case& c : cases) {
    CloudLinkOptions o = goodOptions();
    c.change(o);
    Status st = validateOptions(o);
    ASSERT_FALSE(st.ok()) << c.message;
    EXPECT_TRUE(st.error().is(Errc::invalid_argument));
    EXPECT_EQ(st.error().message, c.message);
  }
}

TEST(CloudLinkOptions, ConfirmNames) {
  EXPECT_EQ(parseConfirm("broker"), Confirm::broker);
  EXPECT_EQ(parseConfirm("receipt"), Confirm::receipt);
  EXPECT_EQ(parseConfirm("Receipt"), std::nullopt);
  EXPECT_EQ(confirmName(Confirm::receipt), "receipt");
}

TEST(CloudLink, CreateRejectsInvalidOptions) {
  boost::asio::io_context io;
  test::MemoryQueue queue;
  auto o = goodOptions();
  o.url = "broker.example";
  auto link = CloudLink::create(io, queue, o);
  ASSERT_FALSE(link.ok());
  EXPECT_EQ(link.error().message, "cloud.url: expected mqtts://host[:port], got: broker.example");
}

TEST(CloudLink, StopBeforeStartCompletes) {
  LinkHarness h;
  test::MemoryQueue queue;
  auto link = CloudLink::create(h.io_, queue, goodOptions());
  ASSERT_TRUE(link.ok());
  std::promise<void> done;
  (*link)->stop([&] { done.set_value(); });
  EXPECT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ((*link)->status().state, LinkState::stopped);
}

TEST(CloudLink, UnusableFilesAreReportedRetriedAndStopIsClean) {
  LinkHarness h;
  test::MemoryQueue queue;
  queue.append(std::vector<store::Record>(3));
  auto link = CloudLink::create(h.io_, queue, goodOptions());
  ASSERT_TRUE(link.ok());
  (*link)->start();
  ASSERT_TRUE(test::waitFor([&] { return (*link)->status().reconnects >= 3; }, 10s));
  const LinkStatus st = (*link)->status();
  EXPECT_EQ(st.last_error,
            "TLS: cannot read CA file /nonexistent/ca.pem: No such file or directory");
  EXPECT_FALSE(st.connected);
  EXPECT_GT(st.last_error_at_ms, 0);
  std::promise<void> done;
  (*link)->stop([&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_EQ((*link)->status().state, LinkState::stopped);
  EXPECT_EQ(queue.counts().pending, 3u);
  EXPECT_EQ(queue.counts().leased, 0u);
}

TEST(CloudLink, DestroyingARunningLinkIsSafe) {
  LinkHarness h;
  test::MemoryQueue queue;
  auto link = CloudLink::create(h.io_, queue, goodOptions());
  ASSERT_TRUE(link.ok());
  (*link)->start();
  ASSERT_TRUE(test::waitFor([&] { return (*link)->status().reconnects >= 1; }, 10s));
  link->reset();  // no stop(): the destructor's hard path
}

TEST(CloudLink, DestroyingItInsideItsStopCallbackIsSafe) {
  // The destructor then runs on the link's own strand: it must not wait for itself.
  LinkHarness h;
  test::MemoryQueue queue;
  auto link = CloudLink::create(h.io_, queue, goodOptions());
  ASSERT_TRUE(link.ok());
  CloudLinkPtr owned = std::move(link).value();
  owned->start();
  ASSERT_TRUE(test::waitFor([&] { return owned->status().reconnects >= 1; }, 10s));
  std::promise<void> destroyed;
  owned->stop([&] {
    owned.reset();
    destroyed.set_value();
  });
  EXPECT_EQ(destroyed.get_future().wait_for(10s), std::future_status::ready);
}

TEST(CloudLink, StatusAnswersAfterTheIoContextStopped) {
  test::MemoryQueue queue;
  CloudLinkPtr link;
  {
    LinkHarness h;
    auto created = CloudLink::create(h.io_, queue, goodOptions());
    ASSERT_TRUE(created.ok());
    link = std::move(created).value();
    std::promise<void> done;
    link->stop([&] { done.set_value(); });
    ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
    h.io_.stop();
    // status() must read the state directly now instead of waiting for a strand that no
    // thread serves; so must the destructor.
    EXPECT_EQ(link->status().state, LinkState::stopped);
    link.reset();
  }
}

TEST(LinkStatus, JsonHasStableKeys) {
  LinkStatus st;
  st.state = LinkState::backoff;
  st.url = "mqtts://cloud.example:8883";
  st.confirm = "broker";
  st.last_error = "connection refused by cloud.example:8883";
  st.last_error_at_ms = 1764103460123;
  st.reason_codes[0x97] = 3;
  st.drain_rate = 410.5;
  auto v = json::parse(st.toJson());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->getString("state"), "backoff");
  EXPECT_EQ(v->getString("last_error"), "connection refused by cloud.example:8883");
  EXPECT_EQ(v->getString("last_error_at"), "2025-11-25T20:44:20.123Z");
  EXPECT_EQ(v->getString("next_retry_at"), "");
  EXPECT_FALSE(v->getBool("connected", true));
  ASSERT_NE(v->find("reason_codes"), nullptr);
  EXPECT_EQ(v->find("reason_codes")->getInt("0x97"), 3);
  EXPECT_DOUBLE_EQ(v->find("drain_rate")->asNumber(), 410.5);
  for (const char* key : {"in_flight", "awaiting_receipt", "published", "resent", "acked",
                          "dead_lettered", "retried", "connects", "reconnects", "watchdog_trips",
                          "receipts", "receipts_invalid", "control_received", "control_rejected",
                          "store_errors", "session_present", "since", "url", "confirm"}) {
    EXPECT_NE(v->find(key), nullptr) << key;
  }
}

}  // namespace
}  // namespace psa::cloudlink
