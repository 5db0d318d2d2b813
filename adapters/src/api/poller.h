// Poller: the Source shell shared by fhir-poll and rest-poll. One worker thread per adapter
// runs sync passes every interval_s (the passes block on HTTP and on durable store commits,
// so they never run on the io_context threads). Status is kept under a mutex for status().
#pragma once

#include <atomic>
#include <condition_variable>
#include <optional>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api_client.h"
#include "api_common.h"
#include "auth.h"
#include "psa/adapters/source.h"
#include "psa/store/log.h"
#include "psa/store/record_sink.h"

namespace psa::adapters::api {

class Poller : public Source {
 public:
  Poller(std::string name, std::string type, std::string vendor, SourceContext& ctx,
         std::chrono::milliseconds interval);
  ~Poller() override;

  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }
  Status start() override;
  void stop(std::function<void()> done) override;
  SourceStatus status() const override;

 protected:
  /// Builds clients and reads credentials (on start(), caller's thread). A failure leaves
  /// nothing running.
  virtual Status prepare() = 0;
  /// One sync pass on the worker thread. Returning an error leaves every watermark as the last
  /// committed batch set it; the next pass resumes from there.
  virtual Status runOnce() = 0;
  /// Called by stop() after the stop signal is set (cancel in-flight HTTP).
  virtual void interrupt() {}
  /// Called once on the worker thread after the last pass when stopping (the transport is
  /// cancelled by then): give back server-side sessions. Must not block for long.
  virtual void shutdown() {}
  /// Extra status detail (called under no lock).
  virtual void fillStatus(SourceStatus&) const {}

  /// Commits one batch durably (records + watermarks in one transaction). When the store is
  /// full it pauses (back-pressure) and retries the same batch until it fits or we stop.
  /// Returns how many records were new (not duplicates). Errors: Errc::closed, Errc::io, ...
  Result<size_t> commit(store::AppendBatch batch);
  /// Queues a batch of records WITHOUT watermarks and returns without waiting (at most a few
  /// batches in flight), so fetching and parsing overlap the store's commits. Safe because
  /// records carry de-duplication identities: a batch committed without its cursor is simply
  /// re-fetched and dropped as a duplicate after a crash. Cursors go through commit() after
  /// drainCommits() has confirmed everything before them.
  Status commitRecordsAsync(store::AppendBatch batch);
  /// Waits until every queued batch is durable; returns the first failure (then the caller
  /// must not advance its cursor).
  Status drainCommits();

  /// The committed watermark `key` of this adapter (scope = adapter name).
  Result<std::optional<std::string>> watermark(const std::string& key);
  /// A store-backed vault for rotating secrets (scope = adapter name, key "auth:...").
  SecretVault vault();
  /// What every poller's clients share: this adapter's name, vendor, state dir, clock, stop
  /// signal and vault, and `api_base`; the subclass adds limits and fallbacks.
  ClientParams clientParams(std::string api_base);

  /// Makes a record of this adapter.
  store::Record makeRecord(store::Kind kind, std::string_view format, std::string payload,
                           const std::string& identity) const;

  void addCount(const std::string& counter, uint64_t n = 1);
  void setState(const std::string& state);

  /// Logs "configured" at the end of prepare(): the base URL, the poller's mode (`mode_key`:
  /// `mode`, e.g. "sync": "bulk"), how many things it syncs (`items_key`: `items`) and the auth.
  void logConfigured(const std::string& base_url, const std::string& mode_key,
                     const std::string& mode, const std::string& items_key, size_t items,
                     const ClientSet& clients) const;
  /// The status detail every API poller adds (from fillStatus(), any thread): `mode_key`:
  /// `mode`, `items_key`: the records carried per collection or resource type (`counts`, read
  /// under `counts_mu`), and the HTTP clients' counters.
  static void addApiStatus(SourceStatus& s, const std::string& mode_key, const std::string& mode,
                           const std::string& items_key,
                           const std::map<std::string, uint64_t>& counts, std::mutex& counts_mu,
                           const ClientSet& clients);

  std::string name_;
  std::string type_;
  std::string vendor_;
  store::RecordSink& sink_;
  ClockPtr clock_;
  std::filesystem::path state_dir_;
  std::chrono::milliseconds interval_;
  std::shared_ptr<StopSignal> stop_ = std::make_shared<StopSignal>();
  log::Logger logger_;

 private:
  void workerMain();
  void finish();

  std::mutex async_mu_;
  std::condition_variable async_cv_;
  size_t async_in_flight_ = 0;
  std::optional<Error> async_error_;

  mutable std::mutex mu_;
  SourceStatus status_;
  std::vector<std::function<void()>> done_;
  bool started_ = false;
  bool finished_ = false;
  std::thread worker_;
};

}  // namespace psa::adapters::api
