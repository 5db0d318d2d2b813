// Shared pieces of the cloud-link integration tests: generated PKI, a real mosquitto with
// mutual TLS and per-agent ACLs, the real pms-cloud-sim, and a CloudLink running on its own
// io_context threads.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cloud_sim.h"
#include "mosquitto_fixture.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/record.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::test {

inline constexpr const char* kTenant = "acme-health";

/// PKI + broker in one temp dir.
struct CloudEnv {
  explicit CloudEnv(MosquittoOptions overrides = {}, std::string_view prefix = "psa-cloud")
      : tmp(prefix), tls(tmp / "pki") {
    broker = MosquittoBroker::withMaterial(tls, tmp / "broker", std::move(overrides));
  }

  cloudlink::CloudLinkOptions linkOptions(const std::string& agent_id) {
    const CertFiles& cert = tls.client(agent_id);
    cloudlink::CloudLinkOptions o;
    o.url = broker->url();
    o.ca_file = tls.ca().cert;
    o.cert_file = cert.cert;
    o.key_file = cert.key;
    o.tenant = kTenant;
    o.agent_id = agent_id;
    // Fast reconnects and watchdogs so the tests run in seconds.
    o.backoff_initial = std::chrono::milliseconds(200);
    o.backoff_max = std::chrono::milliseconds(1000);
    o.retry_initial = std::chrono::milliseconds(200);
    o.retry_max = std::chrono::milliseconds(1000);
    o.puback_timeout = std::chrono::seconds(3);
    o.connect_timeout = std::chrono::seconds(3);
    o.drain_timeout = std::chrono::seconds(3);
    return o;
  }

  CloudSimOptions simOptions(std::string_view name = "sim") {
    CloudSimOptions o = cloudSimOptions(broker->url(), tls, tmp / name);
    o.client_id = "cloud-" + std::string(name);
    return o;
  }

  TempDir tmp;
  TlsMaterial tls;
  std::unique_ptr<MosquittoBroker> broker;
};

/// mosquitto_pub/_sub arguments for connecting as `identity` (a client certificate CN).
inline std::vector<std::string> mqttClientArgs(CloudEnv& env, const std::string& program,
                                               const std::string& identity) {
  const CertFiles& c = env.tls.client(identity);
  return {program,     "-h",         "localhost",       "-p",     std::to_string(env.broker->port()),
          "--cafile",  env.tls.ca().cert.string(),       "--cert", c.cert.string(),
          "--key",     c.key.string(), "-V",             "mqttv5"};
}

/// Publishes `payload` (QoS 1) with the real mosquitto_pub as `identity`.
inline CommandResult mosquittoPub(CloudEnv& env, const std::string& topic,
                                  const std::string& payload,
                                  const std::string& identity = "cloud") {
  auto args = mqttClientArgs(env, "mosquitto_pub", identity);
  for (const char* a : {"-q", "1", "-s", "-t"}) {
    args.emplace_back(a);
  }
  args.push_back(topic);
  return runCommand(args, std::chrono::seconds(20), {}, payload);
}

/// The retained message on `topic` (empty if none within 3 s).
inline std::string retainedMessage(CloudEnv& env, const std::string& topic) {
  auto args = mqttClientArgs(env, "mosquitto_sub", "cloud");
  for (const char* a : {"-C", "1", "-W", "3", "-t"}) {
    args.emplace_back(a);
  }
  args.push_back(topic);
  auto r = runCommand(args, std::chrono::seconds(20));
  std::string out = r.exit_code == 0 ? r.output : std::string();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
    out.pop_back();
  }
  return out;
}

/// A CloudLink on a private io_context served by two threads (as in the agent).
class LinkRunner {
 public:
  LinkRunner(store::QueueReader& reader, cloudlink::CloudLinkOptions options)
      : guard_(boost::asio::make_work_guard(io_)) {
    auto link = cloudlink::CloudLink::create(io_, reader, std::move(options));
    if (!link) {
      throw std::runtime_error(link.error().describe());
    }
    link_ = std::move(link).value();
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }
  ~LinkRunner() {
    if (link_) {
      stop();
    }
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) {
      t.join();
    }
  }

  cloudlink::CloudLink& link() { return *link_; }
  cloudlink::LinkStatus status() const { return link_->status(); }
  void start() { link_->start(); }

  /// Graceful stop; waits for completion (false on timeout).
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (!link_) {
      return true;
    }
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    link_->stop([done] { done->set_value(); });
    const bool ok = fut.wait_for(timeout) == std::future_status::ready;
    link_.reset();
    return ok;
  }

  /// Drops the link without a graceful stop (destructor path).
  void destroy() { link_.reset(); }

  bool waitConnected(std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    return waitFor([&] { return link_->status().connected; }, timeout);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  cloudlink::CloudLinkPtr link_;
  std::vector<std::thread> threads_;
};

/// Deterministic records: payload i is `size` bytes (at least a header) containing
/// "rec-<tag>-<i>" and bytes 0..255 so binary safety is exercised.
inline std::vector<store::Record> makeRecords(size_t n, size_t size = 256,
                                              const std::string& tag = "r",
                                              store::Kind kind = store::Kind::patient,
                                              const std::string& format = "hl7v2") {
  std::vector<store::Record> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    store::Record r;
    r.source = "test-source";
    r.vendor = "cerner";
    r.kind = kind;
    r.format = format;
    r.received_at_ms = 1764100000000 + static_cast<int64_t>(i);
    std::string payload = "MSH|^~\\&|rec-" + tag + "-" + std::to_string(i) + "|\r";
    for (size_t j = 0; payload.size() < size; ++j) {
      payload.push_back(static_cast<char>((i + j) & 0xff));
    }
    r.payload = Sensitive<std::string>(std::move(payload));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace psa::test
