// Shared by the CloudLink unit tests: options that validate (nothing listens at the URL) and an
// io_context running on a thread of its own.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "psa/cloudlink/cloud_link.h"
#include "test_support.h"

namespace psa::cloudlink {

using namespace std::chrono_literals;

inline CloudLinkOptions goodOptions() {
  CloudLinkOptions o;
  o.url = "mqtts://127.0.0.1:" + std::to_string(test::freePort());  // nothing listens
  o.ca_file = "/nonexistent/ca.pem";
  o.cert_file = "/nonexistent/agent.pem";
  o.key_file = "/nonexistent/agent.key";
  o.tenant = "acme-health";
  o.agent_id = "practice-0042";
  o.backoff_initial = 50ms;
  o.backoff_max = 100ms;
  return o;
}

class LinkHarness {
 public:
  LinkHarness() : guard_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~LinkHarness() {
    guard_.reset();
    thread_.join();
  }
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace psa::cloudlink
