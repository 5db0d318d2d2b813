// The unity-changed strategy against an in-process Unity MagicJson service and the real store:
// the MagicJson bodies, changed patients since the server's time, deletions derived from
// complete lists (exactly once), an in-band token loss; and retiring the token on stop over a
// real local HTTP server, bounded in time without a thread of its own.
#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "rest_sync_fixture.h"

namespace psa::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string unityConfig(const std::string& base) {
  return R"({"name":"u","base_url":")" + base +
         R"(","collections":["patients","problems","providers"],
             "auth":{"type":"unity","username":"svc","password":"pw","appname":"PSA",
                     "app_user":"jdoe","token_url":"https://pms.test/json/GetToken"}})";
}

std::string rows(const std::string& action, const std::string& rows_json) {
  std::string key = action;
  std::transform(key.begin(), key.end(), key.begin(), ::tolower);
  return R"([{")" + key + R"(info":[)" + rows_json + "]}]";
}

struct Unity {
  std::set<std::string> problems = {"p1", "p2"};
  int tokens_issued = 0;
  bool lose_token_once = false;

  api::HttpResponse operator()(const api::HttpRequest& r) {
    if (r.url == "https://pms.test/json/GetToken") {
      return ok("\"tok-" + std::to_string(++tokens_issued) + "\"");
    }
    auto body = json::parse(r.body);
    const std::string action = body ? body->getString("Action") : "";
    if (lose_token_once) {
      lose_token_once = false;
      return ok(R"([{"Error":"Magic Error - Action: )" + action +
                R"( - Invalid security token."}])");
    }
    if (action == "GetServerInfo") {
      return ok(rows(action, R"({"ServerTime":"2023-11-14T17:13:20"})"));
    }
    if (action == "GetChangedPatients") {
      return ok(rows(action, R"({"patientid":"42"})"));
    }
    if (action == "GetPatient") {
      return ok(rows(action, R"({"ID":"42","Name":"x"})"));
    }
    if (action == "GetPatientProblems") {
      std::string out;
      for (const auto& p : problems) {
        out += std::string(out.empty() ? "" : ",") + R"({"ID":")" + p + R"("})";
      }
      return ok(rows(action, out));
    }
    if (action == "GetProviders") {
      return ok(rows(action, R"({"personid":"d1"})"));
    }
    return ok(R"([{"Error":"Magic Error - Action: )" + action +
              R"( - Action is not supported."}])");
  }
};

TEST(SyncUnityChanged, ChangedPatientsTheirListsAndDeletionsExactlyOnce) {
  StrategyHarness h("allscripts", unityConfig("https://pms.test/json"));
  Unity unity;
  h.vendor().answer = [&](const api::HttpRequest& r) { return unity(r); };
  ASSERT_TRUE(h.strategy().checkAuth(*h.clients().auth));
  ASSERT_TRUE(h.run());
  const auto seen = h.vendor().seen();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[0].url, "https://pms.test/json/GetToken");
  EXPECT_EQ(seen[1].url, "https://pms.test/json/MagicJson");
  auto info = json::parse(seen[1].body);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->getString("Action"), "GetServerInfo");
  EXPECT_EQ(info->getString("Token"), "tok-1");
  EXPECT_EQ(info->getString("Appname"), "PSA");
  EXPECT_EQ(info->getString("AppUserID"), "jdoe");
  EXPECT_EQ(info->getString("Parameter6"), "");  // every key present, as Unity wants
  auto changed = json::parse(seen[2].body);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->getString("Action"), "GetChangedPatients");
  EXPECT_EQ(changed->getString("Parameter1"), "1/1/1900");
  EXPECT_EQ(h.host().carried.size(), 4u);  // patient, two problems, one provider
  EXPECT_EQ(h.watermark("since:patients"), "2023-11-14T17:13:20");
  EXPECT_TRUE(h.watermark("unity:held:42").has_value());

  unity.problems.erase("p2");
  h.vendor().clearSeen();
  ASSERT_TRUE(h.run());
  auto changed2 = json::parse(h.vendor().seen()[1].body);
  ASSERT_TRUE(changed2);
  EXPECT_EQ(changed2->getString("Parameter1"), "2023-11-14T17:13:20");
  ASSERT_EQ(h.host().carried.size(), 5u);
  auto deleted = json::parse(h.host().payloads().back());
  ASSERT_TRUE(deleted);
  const json::Value* d = deleted->find("psa_deleted");
  ASSERT_NE(d, nullptr) << h.host().payloads().back();
  EXPECT_EQ(d->getString("collection"), "problems");
  EXPECT_EQ(d->getString("id"), "p2");
  EXPECT_EQ(d->getString("patient"), "42");
  EXPECT_EQ(d->getString("absent_since"), "2023-11-14T17:13:20");
  EXPECT_EQ(h.host().counts["deletions"], 1u);

  ASSERT_TRUE(h.run());
  EXPECT_EQ(h.host().carried.size(), 5u);  // p2 is not deleted twice
}

TEST(SyncUnityChanged, AnInBandTokenLossGetsANewTokenOnce) {
  StrategyHarness h("allscripts", unityConfig("https://pms.test/json"));
  Unity unity;
  h.vendor().answer = [&](const api::HttpRequest& r) { return unity(r); };
  ASSERT_TRUE(h.run());
  unity.lose_token_once = true;
  ASSERT_TRUE(h.run());
  EXPECT_EQ(unity.tokens_issued, 2);
  EXPECT_EQ(h.clients().api->counters().reauth, 1u);
}

// One HTTP/1.1 exchange on a real socket: reads a request, answers `response` (or nothing).
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~OneShotServer() {
    boost::system::error_code ec;
    if (!accepted_) {  // unblock the accept: a blocking accept does not notice a close
      asio::io_context io;
      tcp::socket c(io);
      c.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
      c.close(ec);
    }
    if (thread_.joinable()) {
      thread_.join();
    }
    acceptor_.close(ec);
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_) + "/json"; }
  /// The request as read (headers and body), once it arrived.
  std::future<std::string> request() { return got_.get_future(); }

 private:
  void serve() {
    boost::system::error_code ec;
    tcp::socket s(io_);
    acceptor_.accept(s, ec);
    accepted_ = true;
    if (ec) {
      got_.set_value("");
      return;
    }
    asio::streambuf buf;
    const size_t head = asio::read_until(s, buf, "\r\n\r\n", ec);
    std::string text(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
    size_t length = 0;
    if (auto pos = text.find("Content-Length: "); pos != std::string::npos) {
      length = std::stoul(text.substr(pos + 16));
    }
    if (!ec && text.size() < head + length) {
      asio::read(s, buf, asio::transfer_exactly(head + length - text.size()), ec);
      text.assign(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
    }
    got_.set_value(text);
    asio::write(s, asio::buffer(response_), ec);
    s.shutdown(tcp::socket::shutdown_both, ec);
  }

  std::string response_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  int port_ = 0;
  std::atomic<bool> accepted_{false};
  std::promise<std::string> got_;
  std::thread thread_;
};

TEST(SyncUnityChanged, RetiresTheTokenOnStop) {
  OneShotServer server(
      "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nToken retired.");
  StrategyHarness h("allscripts", unityConfig(server.base()));
  h.vendor().answer = [&](const api::HttpRequest& r) { return Unity{}(r); };
  ASSERT_TRUE(api::unityToken(*h.clients().auth));  // the session the adapter holds
  auto request = server.request();
  h.strategy().shutdown();
  ASSERT_EQ(request.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  const std::string text = request.get();
  EXPECT_EQ(text.rfind("POST /json/RetireSecurityToken HTTP/1.1\r\n", 0), 0u) << text;
  const auto body = json::parse(text.substr(text.find("\r\n\r\n") + 4));
  ASSERT_TRUE(body) << text;
  EXPECT_EQ(body->getString("Token"), "tok-1");
  EXPECT_EQ(body->getString("Appname"), "PSA");
}

// The token calls' limiter holds requests back for an hour: retiring gives up after its bound
// (8 s) with no request sent, instead of holding the adapter's stop.
TEST(SyncUnityChanged, RetiringIsBoundedWhenTheTokenLimiterHasNoRoom) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  StrategyHarness h("allscripts", unityConfig(server.base()));
  h.vendor().answer = [&](const api::HttpRequest& r) { return Unity{}(r); };
  ASSERT_TRUE(api::unityToken(*h.clients().auth));
  // The token calls are held back for an hour (as after a Retry-After of an hour).
  h.clients().token_limiter = std::make_shared<api::RequestLimiter>(std::vector<api::LimitRule>{},
                                                                    "", "u", Clock::system());
  h.clients().token_limiter->holdFor(std::chrono::hours(1));
  const auto t0 = std::chrono::steady_clock::now();
  h.strategy().shutdown();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, std::chrono::seconds(7));
  EXPECT_LT(took, std::chrono::seconds(20));
  auto request = server.request();
  EXPECT_EQ(request.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
}

TEST(StopSignal, StopsByItselfAfterItsBound) {
  api::StopSignal stop;
  stop.stopAfter(std::chrono::milliseconds(200));
  EXPECT_FALSE(stop.stopped());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(stop.sleepFor(std::chrono::hours(1)));  // woken at the bound, not in an hour
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  EXPECT_TRUE(stop.stopped());
  EXPECT_FALSE(stop.sleepFor(std::chrono::milliseconds(1)));
}

TEST(StopSignal, ASleepShorterThanTheBoundEndsNormally) {
  api::StopSignal stop;
  stop.stopAfter(std::chrono::hours(1));
  EXPECT_TRUE(stop.sleepFor(std::chrono::milliseconds(10)));
  EXPECT_FALSE(stop.stopped());
  stop.stop();
  EXPECT_TRUE(stop.stopped());
}

}  // namespace
}  // namespace psa::test
