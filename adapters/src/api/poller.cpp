#include "poller.h"

#include "psa/store/fatal.h"

namespace psa::adapters::api {

Poller::Poller(std::string name, std::string type, std::string vendor, SourceContext& ctx,
               std::chrono::milliseconds interval)
    : name_(std::move(name)),
      type_(std::move(type)),
      vendor_(std::move(vendor)),
      sink_(ctx.sink),
      clock_(ctx.clock ? ctx.clock : Clock::system()),
      state_dir_(ctx.state_dir),
      interval_(interval),
      logger_(type_, name_) {
  status_.state = "stopped";
}

Poller::~Poller() {
  stop_->stop();
  interrupt();
  if (worker_.joinable()) {
    if (worker_.get_id() == std::this_thread::get_id()) {
      worker_.detach();
    } else {
      worker_.join();
    }
  }
  // Completions of queued batches reference this object.
  std::unique_lock lock(async_mu_);
  async_cv_.wait(lock, [&] { return async_in_flight_ == 0; });
}

Status Poller::start() {
  {
    std::lock_guard lock(mu_);
    if (started_) {
      return {};
    }
  }
  if (auto st = prepare(); !st) {
    std::lock_guard lock(mu_);
    status_.state = "failed";
    status_.healthy = false;
    status_.last_error = st.error().message;
    status_.last_error_ms = clock_->nowMs();
    return st;
  }
  std::lock_guard lock(mu_);
  started_ = true;
  status_.state = "starting";
  worker_ = std::thread([this] { workerMain(); });
  return {};
}

void Poller::stop(std::function<void()> done) {
  bool call_now = false;
  {
    std::lock_guard lock(mu_);
    if (!started_ || finished_) {
      call_now = true;
    } else if (done) {
      done_.push_back(std::move(done));
    }
  }
  stop_->stop();
  interrupt();
  if (call_now && done) {
    done();
  }
}

void Poller::finish() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    status_.state = "stopped";
    callbacks.swap(done_);
  }
  for (auto& cb : callbacks) {
    cb();
  }
}

void Poller::workerMain() {
  try {
    uint64_t run = 0;
    while (!stop_->stopped()) {
      ++run;
      setState("polling");
      const auto started = clock_->steady();
      Status st = runOnce();
      if (auto drained = drainCommits(); !drained && st) {
        st = drained;  // a strategy that forgot to drain: its cursor never moved past this
      }
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_->steady() - started).count();
      if (stop_->stopped()) {
        break;
      }
      {
        std::lock_guard lock(mu_);
        if (st) {
          status_.state = "idle";
          status_.healthy = true;
          ++status_.counters["runs"];
        } else {
          status_.state = "failed";
          status_.healthy = false;
          status_.last_error = st.error().message;
          status_.last_error_ms = clock_->nowMs();
          ++status_.counters["failed_runs"];
        }
        status_.detail.set("last_run_ms", json::Value::integer(ms));
        status_.detail.set("next_poll_in_ms", json::Value::integer(interval_.count()));
      }
      if (st) {
        logger_.info("run_complete", {{"run", run}, {"duration_ms", ms}});
      } else {
        logger_.error("run_failed", {{"run", run},
                                     {"error", st.error().message},
                                     {"hint", "watermark unchanged; the next run resumes from it"}});
      }
      if (!stop_->sleepFor(interval_)) {
        break;
      }
    }
  } catch (...) {
    fatalInvariant("api_poller.worker");
  }
  shutdown();
  finish();
}

SourceStatus Poller::status() const {
  SourceStatus s;
  {
    std::lock_guard lock(mu_);
    s = status_;
  }
  fillStatus(s);
  return s;
}

void Poller::addCount(const std::string& counter, uint64_t n) {
  std::lock_guard lock(mu_);
  status_.counters[counter] += n;
  if (counter == "records") {
    status_.last_message_ms = clock_->nowMs();
  }
}

void Poller::setState(const std::string& state) {
  std::lock_guard lock(mu_);
  status_.state = state;
}

void Poller::logConfigured(const std::string& base_url, const std::string& mode_key,
                           const std::string& mode, const std::string& items_key, size_t items,
                           const ClientSet& clients) const {
  logger_.info("configured", {{"base_url", base_url},
                              {mode_key, mode},
                              {items_key, static_cast<uint64_t>(items)},
                              {"auth", clients.auth->describe()}});
}

void Poller::addApiStatus(SourceStatus& s, const std::string& mode_key, const std::string& mode,
                          const std::string& items_key,
                          const std::map<std::string, uint64_t>& counts, std::mutex& counts_mu,
                          const ClientSet& clients) {
  s.detail.set(mode_key, json::Value::string(mode));
  json::Value per = json::Value::object();
  {
    std::lock_guard lock(counts_mu);
    for (const auto& [name, n] : counts) {
      per.set(name, json::Value::integer(static_cast<int64_t>(n)));
    }
  }
  s.detail.set(items_key, std::move(per));
  clients.addCounters(s.counters);
}

Result<size_t> Poller::commit(store::AppendBatch batch) {
  const size_t n = batch.records.size();
  bool paused = false;
  for (;;) {
    const auto t0 = clock_->steady();
    auto r = sink_.appendSync(batch);
    addCount("commit_us", static_cast<uint64_t>(
                              std::chrono::duration_cast<std::chrono::microseconds>(clock_->steady() - t0)
                                  .count()));
    if (r) {
      size_t fresh = 0;
      for (const auto& a : r->records) {
        fresh += a.duplicate ? 0 : 1;
      }
      addCount("records", fresh);
      addCount("duplicates", n - fresh);
      if (paused) {
        logger_.info("store_resumed");
        setState("polling");
      }
      return fresh;
    }
    if (!r.error().is(Errc::full)) {
      return std::move(r).error();
    }
    if (!paused) {
      paused = true;
      setState("paused");
      logger_.warn("store_full", {{"hint", "polling paused until the queue drains"}});
    }
    if (!stop_->sleepFor(std::chrono::seconds(5))) {
      return Error(Errc::closed, "stopped while the store was full");
    }
  }
}

Status Poller::commitRecordsAsync(store::AppendBatch batch) {
  constexpr size_t kMaxInFlight = 4;
  {
    std::unique_lock lock(async_mu_);
    async_cv_.wait(lock, [&] { return async_in_flight_ < kMaxInFlight; });
    if (async_error_) {
      return *async_error_;
    }
    ++async_in_flight_;
  }
  const size_t n = batch.records.size();
  const auto t0 = clock_->steady();
  sink_.append(std::move(batch), [this, n, t0](Result<store::AppendResult> r) {
    // Store writer thread: count, record the outcome, wake the worker. No blocking here.
    if (r) {
      size_t fresh = 0;
      for (const auto& a : r->records) {
        fresh += a.duplicate ? 0 : 1;
      }
      addCount("records", fresh);
      addCount("duplicates", n - fresh);
    }
    addCount("commit_us", static_cast<uint64_t>(
                              std::chrono::duration_cast<std::chrono::microseconds>(clock_->steady() - t0)
                                  .count()));
    std::lock_guard lock(async_mu_);
    if (!r && !async_error_) {
      async_error_ = r.error();
    }
    --async_in_flight_;
    async_cv_.notify_all();
  });
  return {};
}

Status Poller::drainCommits() {
  std::unique_lock lock(async_mu_);
  async_cv_.wait(lock, [&] { return async_in_flight_ == 0; });
  if (async_error_) {
    Error e = *async_error_;
    async_error_.reset();
    if (e.is(Errc::full)) {
      logger_.warn("store_full", {{"hint", "polling paused until the queue drains"}});
    }
    return e;
  }
  return {};
}

Result<std::optional<std::string>> Poller::watermark(const std::string& key) {
  return sink_.watermark(name_, key);
}

ClientParams Poller::clientParams(std::string api_base) {
  ClientParams p;
  p.adapter = name_;
  p.vendor = vendor_;
  p.api_base = std::move(api_base);
  p.state_dir = state_dir_;
  p.clock = clock_;
  p.stop = stop_;
  p.vault = vault();
  return p;
}

SecretVault Poller::vault() {
  SecretVault v;
  v.load = [this](const std::string& key) { return sink_.watermark(name_, key); };
  v.save = [this](const std::string& key, const std::string& value) -> Status {
    store::AppendBatch b;
    b.watermarks.push_back({name_, key, value});
    auto r = sink_.appendSync(std::move(b));
    if (!r) {
      return std::move(r).error();
    }
    return {};
  };
  return v;
}

store::Record Poller::makeRecord(store::Kind kind, std::string_view format, std::string payload,
                                 const std::string& identity) const {
  store::Record r;
  r.source = name_;
  r.vendor = vendor_;
  r.kind = kind;
  r.format = std::string(format);
  r.payload = Sensitive<std::string>(std::move(payload));
  if (!identity.empty()) {
    r.dedupe_identity = Sensitive<std::string>(name_ + "|" + identity);
  }
  return r;
}

}  // namespace psa::adapters::api
