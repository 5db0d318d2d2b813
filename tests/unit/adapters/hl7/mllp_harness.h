// In-process harness for the hl7-mllp source: a real io_context with two threads, the source
// built through the public SourceRegistry, and either the real SqliteStore on temp files or a
// ManualSink whose commits the test completes by hand (to prove "no ACK before commit" and the
// ACK order when commits complete out of order); plus the helpers every MLLP test uses
// (ackOf, detailInt).
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "hl7_samples.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "psa/adapters/source.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::test {

/// A RecordSink that holds every append until the test completes it.
class ManualSink final : public store::RecordSink {
 public:
  struct Held {
    store::AppendBatch batch;
    store::AppendCallback done;
  };

  void append(store::AppendBatch batch, store::AppendCallback done) override {
    std::lock_guard lock(mu_);
    held_.push_back({std::move(batch), std::move(done)});
    cv_.notify_all();
  }
  Result<std::optional<std::string>> watermark(const std::string&, const std::string&) override {
    return std::optional<std::string>();
  }

  /// Waits until at least `n` appends are held.
  bool waitHeld(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_.size() >= n; });
  }
  size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  /// Records in held append `k`.
  size_t records(size_t k) {
    std::lock_guard lock(mu_);
    return held_.at(k).batch.records.size();
  }
  size_t dead(size_t k) {
    std::lock_guard lock(mu_);
    return held_.at(k).batch.dead.size();
  }
  store::AppendBatch& batch(size_t k) {
    std::lock_guard lock(mu_);
    return held_.at(k).batch;
  }
  /// Completes held append `k` as committed (each record new, or `duplicate`).
  void commit(size_t k, bool duplicate = false) {
    store::AppendCallback cb;
    store::AppendResult r;
    {
      std::lock_guard lock(mu_);
      auto& h = held_.at(k);
      for (size_t i = 0; i < h.batch.records.size(); ++i) {
        r.records.push_back(
            {"01TESTMSGID" + std::to_string(k) + "_" + std::to_string(i), duplicate});
      }
      for (size_t i = 0; i < h.batch.dead.size(); ++i) {
        r.dead_ids.push_back("01TESTDEAD" + std::to_string(k) + "_" + std::to_string(i));
      }
      cb = std::move(h.done);
    }
    cb(std::move(r));
  }
  /// Completes held append `k` with an error.
  void fail(size_t k, Errc code, std::string message) {
    store::AppendCallback cb;
    {
      std::lock_guard lock(mu_);
      cb = std::move(held_.at(k).done);
    }
    cb(Error(code, std::move(message)));
  }
  /// Completes everything still open as committed.
  void commitAll() {
    for (size_t k = 0; k < held(); ++k) {
      bool open = false;
      {
        std::lock_guard lock(mu_);
        open = static_cast<bool>(held_[k].done);
      }
      if (open) {
        commit(k);
      }
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Held> held_;
};

/// A RecordSink that completes every append at once (as committed), on the caller's thread.
class InstantSink final : public store::RecordSink {
 public:
  void append(store::AppendBatch batch, store::AppendCallback done) override {
    store::AppendResult r;
    r.records.resize(batch.records.size());
    r.dead_ids.resize(batch.dead.size());
    done(std::move(r));
  }
  Result<std::optional<std::string>> watermark(const std::string&, const std::string&) override {
    return std::optional<std::string>();
  }
};

/// Runs one hl7-mllp source in this process.
class MllpHarness {
 public:
  /// With the real store in a temp dir.
  MllpHarness() : MllpHarness(store::StoreOptions{}) {}
  /// With a store opened by the caller's options (db_path/key_file are set here).
  explicit MllpHarness(store::StoreOptions o) : tmp_("psa-mllp") {
    o.db_path = tmp_ / "queue.db";
    o.key_file = tmp_ / "queue.key";
    auto s = store::SqliteStore::open(std::move(o));
    if (!s) {
      throw std::runtime_error(s.error().describe());
    }
    store_ = std::move(s).value();
    sink_ = store_.get();
    init();
  }
  /// With another sink (ManualSink, InstantSink).
  explicit MllpHarness(store::RecordSink& sink) : tmp_("psa-mllp"), sink_(&sink) { init(); }

  ~MllpHarness() {
    stop();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) {
      t.join();
    }
    if (store_) {
      store_->close();
    }
  }

  /// The adapter object: name/type/vendor and listen 127.0.0.1:0, plus `extra` members.
  static json::Value config(const std::string& extra_json = "{}") {
    auto v = json::parse(
        R"({"name":"test-mllp","type":"hl7-mllp","vendor":"cerner","listen":"127.0.0.1:0"})");
    json::Value out = v.value();
    auto extra = json::parse(extra_json);
    if (!extra) {
      throw std::runtime_error("bad extra json: " + extra_json);
    }
    for (auto& [k, val] : extra.value().members()) {
      out.set(k, val);
    }
    return out;
  }

  const adapters::SourceFactory& factory() const { return *registry_.find("hl7-mllp"); }

  /// Validates, creates and starts the source; returns the error text on failure ("" ok).
  std::string start(const json::Value& cfg) {
    std::vector<schema::Issue> issues;
    schema::validate(cfg, *factory().schema, "", issues);
    if (!issues.empty()) {
      return "config: " + issues.front().format();
    }
    adapters::SourceContext ctx{io_, *sink_, Clock::system(), tmp_.path()};
    auto created = factory().create(cfg, ctx);
    if (!created) {
      return created.error().message;
    }
    source_ = created.value();
    if (auto st = source_->start(); !st) {
      return st.error().message;
    }
    const auto status = source_->status();
    const std::string ep = status.detail.find("endpoints")->items().at(0).asString();
    port_ = static_cast<uint16_t>(std::stoi(ep.substr(ep.rfind(':') + 1)));
    return {};
  }
  void startOrDie(const json::Value& cfg) {
    const std::string err = start(cfg);
    if (!err.empty()) {
      throw std::runtime_error(err);
    }
  }

  /// Stops the source and waits for its done callback.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    if (!source_) {
      return true;
    }
    auto p = std::make_shared<std::promise<void>>();
    auto f = p->get_future();
    source_->stop([p] { p->set_value(); });
    const bool ok = f.wait_for(timeout) == std::future_status::ready;
    source_.reset();
    return ok;
  }

  adapters::hl7::MllpClientOptions clientOptions() const {
    adapters::hl7::MllpClientOptions o;
    o.host = "127.0.0.1";
    o.port = port_;
    o.timeout = std::chrono::seconds(10);
    return o;
  }
  /// A client of the source (receives time out after `timeout`).
  adapters::hl7::MllpClientPtr connect(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto o = clientOptions();
    o.timeout = timeout;
    auto c = adapters::hl7::MllpClient::connect(o);
    if (!c) {
      throw std::runtime_error(c.error().describe());
    }
    return std::move(c).value();
  }

  adapters::Source& source() { return *source_; }
  adapters::SourcePtr sourcePtr() { return source_; }
  uint16_t port() const { return port_; }
  store::SqliteStore& store() { return *store_; }
  const TempDir& tmp() const { return tmp_; }
  uint64_t counter(const std::string& name) { return source_->status().counters[name]; }

  /// Closes the store and reads it back (the source must be stopped).
  StoreContents contents() {
    stop();
    store_->close();
    auto c = readStore(tmp_ / "queue.db", tmp_ / "queue.key");
    return c;
  }

 private:
  void init() {
    adapters::registerBuiltinSources(registry_);
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
  }

  TempDir tmp_;
  boost::asio::io_context io_{2};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::vector<std::thread> threads_;
  store::SqliteStorePtr store_;
  store::RecordSink* sink_ = nullptr;
  adapters::SourceRegistry registry_;
  adapters::SourcePtr source_;
  uint16_t port_ = 0;
};

/// The summary of an ACK a client received, failing the test when there is none or it does
/// not parse.
inline adapters::hl7::AckSummary ackOf(const Result<std::string>& raw) {
  EXPECT_TRUE(raw.ok()) << (raw ? "" : raw.error().describe());
  if (!raw) {
    return {};
  }
  auto s = adapters::hl7::summarizeAck(raw.value());
  EXPECT_TRUE(s.ok()) << raw.value();
  return s ? s.value() : adapters::hl7::AckSummary{};
}

/// An integer member of a status' detail; -1 when absent or not an integer.
inline int64_t detailInt(const adapters::SourceStatus& st, const std::string& key) {
  const json::Value* v = st.detail.find(key);
  return v != nullptr && v->isInteger() ? v->asInt() : -1;
}
/// The same of the source's status now (kept alive while it is read).
inline int64_t detailInt(adapters::Source& s, const std::string& key) {
  const adapters::SourceStatus st = s.status();
  return detailInt(st, key);
}

}  // namespace psa::test
