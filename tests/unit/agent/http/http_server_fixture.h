// A real HttpServer on a real io_context (one thread runs it, as in the agent) listening on
// 127.0.0.1, with a handler that answers by path and counts its calls. Shared by
// http_server_test.cpp and http_server_posix_test.cpp.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/http_server.h"
#include "http_client.h"
#include "test_support.h"

namespace psa::agent::http::testing {

inline constexpr auto kWait = std::chrono::seconds(10);
inline constexpr const char* kHello = "hello from the agent\n";

/// Settings for `listen` (port 0: any free port) with the defaults of the config schema.
inline HttpSettings settingsFor(const std::string& listen = "127.0.0.1:0") {
  HttpSettings s;
  auto ep = adapters::net::parseListenEndpoint(listen);
  EXPECT_TRUE(ep.ok()) << listen;
  if (ep) {
    s.listen = std::move(ep).value();
  }
  return s;
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() : runner_([this] { io_.run(); }) {}

  ~HttpServerTest() override {
    servers_.clear();  // stop() needs the io thread
    guard_.reset();
    io_.stop();
    runner_.join();
  }

  /// A server that is not started yet.
  HttpServer& make(HttpSettings settings) {
    servers_.push_back(std::make_unique<HttpServer>(
        io_, std::move(settings), [this](const Request& r) { return answer(r); }));
    return *servers_.back();
  }

  /// A started server that is serving (its port known).
  HttpServer& serve(HttpSettings settings) {
    HttpServer& server = make(std::move(settings));
    const Status st = server.start();
    EXPECT_TRUE(st.ok()) << st.error().message;
    EXPECT_TRUE(psa::test::waitFor([&] { return server.state() == "serving"; }, kWait))
        << server.state();
    EXPECT_NE(server.port(), 0);
    return server;
  }

  Response answer(const Request& r) {
    handled_.fetch_add(1);
    Response res;
    if (r.path() == "/") {
      res.content_type = "text/html; charset=utf-8";
      res.body = kHello;
    } else if (r.path() == "/metrics") {
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
      res.body = "psa_up 1\n";
      res.headers["Content-Security-Policy"] = "default-src 'none'";
    } else {
      res.status = 404;
      res.body = "not found\n";
    }
    return res;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_ =
      boost::asio::make_work_guard(io_);
  std::atomic<int> handled_{0};
  std::vector<std::unique_ptr<HttpServer>> servers_;
  std::thread runner_;  // last: starts once everything it may touch exists
};

/// The headers every answer carries, refusals included.
inline void expectSecurityHeaders(const HttpReply& r) {
  EXPECT_EQ(r["X-Content-Type-Options"], "nosniff");
  EXPECT_EQ(r["X-Frame-Options"], "DENY");
  EXPECT_EQ(r[bhttp::field::cache_control], "no-store");
  EXPECT_EQ(r["Referrer-Policy"], "no-referrer");
}

}  // namespace psa::agent::http::testing
