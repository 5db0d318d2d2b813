// What the rest-poll strategy tests share: a vendor played by an in-process HttpTransport (each
// test answers requests with a function and reads back what was sent), the real SQLite store
// (TestStore) behind a SyncHost, and a RestSync + strategy built from a real profile, so a
// strategy's requests, records and watermarks are tested without the Python simulator.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "psa/adapters/api/http_time.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "test_store.h"
#include "test_support.h"
// White-box: the strategies are private to the adapter library. Included by path from the
// source tree (the headers find their siblings next to themselves), so the suite's include
// directories stay public-only.
#include "../../../../adapters/src/api/api_client.h"
#include "../../../../adapters/src/api/api_common.h"
#include "../../../../adapters/src/api/auth.h"
#include "../../../../adapters/src/api/rest_sync.h"
#include "../../../../adapters/src/api/sync_strategy.h"
#include "../../../../adapters/src/api/url.h"

namespace psa::adapters::api {
const json::Value* restProfile(const std::string& name);
}  // namespace psa::adapters::api

namespace psa::test {

namespace api = psa::adapters::api;

/// The vendor: `answer` decides every response; every request is kept. Each answer carries a
/// Date header of `server_ms` (the server's clock the strategies take watermarks from).
class FakeVendor final : public api::HttpTransport {
 public:
  std::function<api::HttpResponse(const api::HttpRequest&)> answer;
  int64_t server_ms = 1700000000000;  // 2023-11-14T22:13:20Z

  Result<api::HttpResponse> send(const api::HttpRequest& req) override {
    std::function<api::HttpResponse(const api::HttpRequest&)> f;
    {
      std::lock_guard lock(mu_);
      seen_.push_back(req);
      f = answer;
    }
    api::HttpResponse r = f ? f(req) : api::HttpResponse{404, {}, ""};
    r.headers.emplace_back("Date", api::formatHttpDate(server_ms));
    return r;
  }
  Result<api::HttpResponse> sendStreaming(const api::HttpRequest& req,
                                          const api::BodySink&) override {
    return send(req);
  }
  void cancelAll() override {}

  std::vector<api::HttpRequest> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  /// The URLs requested so far (with their queries), in order.
  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& r : seen()) {
      out.push_back(r.url);
    }
    return out;
  }
  void clearSeen() {
    std::lock_guard lock(mu_);
    seen_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<api::HttpRequest> seen_;
};

inline api::HttpResponse ok(std::string body) {
  return api::HttpResponse{200, {}, std::move(body)};
}

/// The adapter side: the real store, and the records it took as new (not duplicates).
class StoreHost final : public api::SyncHost {
 public:
  StoreHost(store::SqliteStore& store, std::string scope)
      : store_(store), scope_(std::move(scope)) {}

  Result<size_t> commit(store::AppendBatch batch) override {
    std::vector<store::Record> copy = batch.records;
    auto r = store_.appendSync(std::move(batch));
    if (!r) {
      return std::move(r).error();
    }
    size_t fresh = 0;
    for (size_t i = 0; i < r->records.size(); ++i) {
      if (!r->records[i].duplicate) {
        carried.push_back(copy[i]);
        ++fresh;
      }
    }
    return fresh;
  }
  Result<std::optional<std::string>> watermark(const std::string& key) override {
    return store_.watermark(scope_, key);
  }
  Result<std::map<std::string, std::string>> watermarks() override {
    return store_.watermarks(scope_);
  }
  store::Record makeRecord(store::Kind kind, std::string_view format, std::string payload,
                           const std::string& identity) const override {
    store::Record r;
    r.source = scope_;
    r.vendor = "test";
    r.kind = kind;
    r.format = std::string(format);
    r.payload = Sensitive<std::string>(std::move(payload));
    r.dedupe_identity = Sensitive<std::string>(scope_ + "|" + identity);
    return r;
  }
  void addCount(const std::string& counter, uint64_t n) override { counts[counter] += n; }
  void countCollection(const std::string& collection) override { ++counts["c:" + collection]; }

  /// The payloads carried (new records), in order.
  std::vector<std::string> payloads() const {
    std::vector<std::string> out;
    for (const auto& r : carried) {
      out.push_back(r.payload.reveal());
    }
    return out;
  }

  std::vector<store::Record> carried;
  std::map<std::string, uint64_t> counts;

 private:
  store::SqliteStore& store_;
  std::string scope_;
};

/// One rest-poll adapter's strategy over a FakeVendor and a real store. `cfg` is the adapter
/// config (name, base_url, auth, collections, ...), `profile` a profile of rest_profiles.cpp.
class StrategyHarness {
 public:
  StrategyHarness(const std::string& profile, const std::string& cfg_json)
      : dir_("psa-restsync"), store_(dir_.path()), vendor_(std::make_shared<FakeVendor>()) {
    const json::Value cfg = *json::parse(cfg_json);
    const json::Value* p = api::restProfile(profile);
    EXPECT_NE(p, nullptr) << profile;
    api::RetryPolicy fast;
    fast.base = std::chrono::milliseconds(1);
    fast.cap = std::chrono::milliseconds(5);
    fast.throttle_default = std::chrono::milliseconds(1);
    const log::Logger logger("rest-poll", cfg.getString("name"));
    clients_.transport = vendor_;
    clients_.token =
        std::make_shared<api::ApiClient>(vendor_, nullptr, fast, clock_, stop_, logger);
    clients_.api = std::make_shared<api::ApiClient>(vendor_, nullptr, fast, clock_, stop_, logger);
    api::AuthDeps deps;
    deps.token_client = clients_.token;
    deps.clock = clock_;
    deps.state_dir = dir_.path();
    const json::Value* auth = cfg.find("auth");
    static const json::Value kNone = *json::parse(R"({"type":"none"})");
    auto strategy =
        api::makeAuthStrategy(auth != nullptr ? *auth : kNone, deps, "", cfg.getString("base_url"));
    EXPECT_TRUE(strategy) << (strategy ? "" : strategy.error().message);
    if (strategy) {
      clients_.auth = *strategy;
      clients_.api->setAuth(clients_.auth);
    }
    host_ = std::make_unique<StoreHost>(store_.store(), cfg.getString("name"));
    sync_ = std::make_unique<api::RestSync>(api::RestSettings::parse(cfg, *p), *host_, clients_,
                                            *stop_, clock_, logger);
    const api::StrategyInfo* info = api::findStrategy(sync_->settings().strategy);
    EXPECT_NE(info, nullptr);
    strategy_ = info->make(*sync_);
  }

  /// One pass, as the adapter runs it.
  Status run() {
    sync_->beginRun();
    return strategy_->runOnce();
  }

  FakeVendor& vendor() { return *vendor_; }
  StoreHost& host() { return *host_; }
  api::RestSync& sync() { return *sync_; }
  api::SyncStrategy& strategy() { return *strategy_; }
  api::ClientSet& clients() { return clients_; }
  std::optional<std::string> watermark(const std::string& key) {
    auto w = host_->watermark(key);
    EXPECT_TRUE(w);
    return w ? *w : std::nullopt;
  }
  /// The server time minus `s` seconds in the profile's watermark format (UTC).
  std::string serverMinus(int64_t s, const std::string& format) const {
    return api::formatLocalTime(vendor_->server_ms - s * 1000, 0, format);
  }

 private:
  TempDir dir_;
  TestStore store_;
  std::shared_ptr<FakeVendor> vendor_;
  ClockPtr clock_ = Clock::system();
  std::shared_ptr<api::StopSignal> stop_ = std::make_shared<api::StopSignal>();
  api::ClientSet clients_;
  std::unique_ptr<StoreHost> host_;
  std::unique_ptr<api::RestSync> sync_;
  api::SyncStrategyPtr strategy_;
};

}  // namespace psa::test
