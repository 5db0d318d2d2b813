// The base every rest-poll strategy (sync_strategy.h) stands on: the profile settings parsed
// once, and the shared listing, paging, watermark, fan-out and reconciliation helpers.
// Watermarks are the SERVER's time at the start of a listing (local time, minus one second and
// the overlap window), never our clock and never max(last-modified seen). Each record carries a
// de-duplication identity (adapter, collection/id and a SHA-256 of the exact bytes), so repeats
// from overlaps, replays and restarts are dropped by the store; cursors and watermarks commit
// in the same transaction as the records they cover.
// Threads: everything here runs on the adapter's worker thread (the one that runs the pass);
// the host keeps the counters (SyncHost::addCount, countCollection) safe for status() readers.
// Errors are Result/Status values, as the ApiClient and the store report them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api_client.h"
#include "api_common.h"
#include "psa/adapters/api/vendor.h"
#include "psa/store/json.h"
#include "psa/store/log.h"
#include "psa/store/record.h"
#include "psa/store/record_sink.h"
#include "url.h"

namespace psa::adapters::api {

/// `s` with every `what` replaced by `with`.
std::string replaceAll(std::string s, std::string_view what, std::string_view with);

/// A profile's `params` object as query pairs (non-strings serialized as JSON).
Params paramsOf(const json::Value* obj);

/// One collection of a profile, as the strategies read it.
struct Collection {
  std::string name;
  std::string path;
  std::string kind_name;
  store::Kind kind = store::Kind::other;
  std::string id_field;
  std::string ts_field;
  std::string items_key;      // athena: the array member of lists
  std::string feed;           // athena: changed feed path
  std::string feed_items;     // athena: array member of the feed (default items_key)
  std::string per;            // fan-out parent collection
  std::string initial_since;  // first run `since` value (DrChrono appointments)
  std::string op;             // kareo operation
  std::string all_op;         // kareo batch operation for the initial load
  std::string item;           // kareo item element
  std::string action;         // unity action
  bool global = false;        // unity: not per patient
  Params params;
};

/// A resumable listing position, committed as a watermark ("cursor:<collection>").
struct Cursor {
  std::string url;  ///< next page (Kareo: the StartKey)
  int64_t offset = 0;
  std::string run_wm;  ///< the server watermark taken at the listing's first page
  std::string encode() const;
  /// Decodes encode()'s text; anything unreadable gives an empty cursor (start over).
  static Cursor decode(const std::string& s);
};

/// The settings of one rest-poll adapter: its profile (rest_profiles.cpp or `profile_file`)
/// with the adapter config's overrides applied. Parsed once, at construction.
struct RestSettings {
  std::string name;  ///< the adapter (the scope of its watermarks)
  std::string base;  ///< base_url without a trailing slash
  std::string strategy;
  std::string format;
  std::string time_format;
  int offset_min = 0;
  int64_t overlap_s = 2;
  bool reconcile = false;  ///< the vendor never signals deletions: complete re-lists find them
  int64_t reconcile_ms = 86400000;
  int64_t page_size = 100;
  json::Value paging = json::Value::object();
  std::string since_param;
  std::string since_template;
  std::string since_initial;
  Headers headers;
  std::vector<std::string> tombstones;
  std::vector<Collection> collections;  ///< the ones this adapter syncs, in profile order
  json::Value profile;                  ///< the whole profile (fan-out parents not synced)
  std::string app_user;                 ///< Unity: auth.app_user

  static RestSettings parse(const json::Value& cfg, const json::Value& profile);
};

/// What a strategy needs from its adapter (rest_poll.cpp implements it on the Poller; tests on
/// a bare store). Worker thread, except addCount (any thread).
class SyncHost {
 public:
  virtual ~SyncHost() = default;
  /// Commits one batch durably (records + watermarks in one transaction), waiting while the
  /// store is full. Returns how many records were new. Errors: Errc::closed, Errc::io, ...
  virtual Result<size_t> commit(store::AppendBatch batch) = 0;
  /// The committed watermark `key` of this adapter.
  virtual Result<std::optional<std::string>> watermark(const std::string& key) = 0;
  /// Every committed watermark of this adapter (key -> value).
  virtual Result<std::map<std::string, std::string>> watermarks() = 0;
  /// A record of this adapter with its de-duplication identity.
  virtual store::Record makeRecord(store::Kind kind, std::string_view format, std::string payload,
                                   const std::string& identity) const = 0;
  /// Counters for status: "deletions", "parents_gone", and per collection (countCollection).
  virtual void addCount(const std::string& counter, uint64_t n = 1) = 0;
  virtual void countCollection(const std::string& collection) = 0;
};

/// The shared helpers, over one adapter's settings, host and HTTP clients. Not thread-safe: the
/// worker thread owns it. `clients` is filled by the adapter's prepare() before the first pass.
class RestSync {
 public:
  RestSync(RestSettings settings, SyncHost& host, const ClientSet& clients, StopSignal& stop,
           ClockPtr clock, log::Logger logger);

  const RestSettings& settings() const { return s_; }
  const ClientSet& clients() const { return clients_; }
  ApiClient& api() const { return *clients_.api; }
  StopSignal& stop() const { return stop_; }
  const ClockPtr& clock() const { return clock_; }
  const log::Logger& logger() const { return logger_; }
  /// The scope of this adapter's watermarks (its name).
  const std::string& scope() const { return s_.name; }

  /// Forgets what the last pass cached (fan-out parent lists); call at the start of a pass.
  void beginRun();

  Result<size_t> commit(store::AppendBatch batch) { return host_.commit(std::move(batch)); }
  Result<std::optional<std::string>> watermark(const std::string& key) {
    return host_.watermark(key);
  }
  Status commitWatermarks(std::vector<store::WatermarkUpdate> w);
  /// The listing position committed under `key` (an empty cursor when none: start over).
  Result<Cursor> savedCursor(const std::string& key);
  void addCount(const std::string& counter, uint64_t n = 1) { host_.addCount(counter, n); }

  /// The record of `item` (its bytes in `text`), counted for its collection.
  store::Record recordFor(const Collection& c, std::string_view text, const VendorItem& item);
  /// Reconciling profiles remember every record id they carried ("known:<collection>/<id>", in
  /// the same transaction as the record), so a complete re-list can tell what vanished.
  void noteKnown(store::AppendBatch& batch, const Collection& c, const VendorItem& item) const;
  /// An agent-made deletion record (the vendor sends none): always `vendor+json` (also for
  /// SOAP vendors) {"psa_deleted": {"collection", "id", "patient"?, "absent_since"}}, with the
  /// collection's kind.
  store::Record deletionRecord(const Collection& c, const std::string& id,
                               const std::string& patient, const std::string& server_time);

  /// Where a list page (or, with `feed`, a changed feed page) of `c` keeps its records.
  VendorPageSpec specFor(const Collection& c, bool feed = false) const;
  /// A GET of one list page with `headers`; `out` gets the parsed page (a page that does not
  /// parse is retried as the ApiClient's bad body).
  static ApiClient::Call pageCall(const std::string& url, const std::string& what,
                                  const VendorPageSpec& spec,
                                  const std::shared_ptr<VendorPage>& out, const Headers& headers);
  /// GETs one list page with the profile's headers; `out` gets the parsed page (a page that
  /// does not parse is retried as the ApiClient's bad body).
  Result<HttpResponse> getList(const std::string& url, const std::string& what,
                               const VendorPageSpec& spec, const std::shared_ptr<VendorPage>& out);
  /// The server's clock at the last response, as the vendor's local-time watermark: minus one
  /// second (second precision) and the overlap window. "" before any answer.
  std::string serverWatermark() const;

  /// The URL of a list page of `path` per the profile's paging style (next-url, offset or
  /// keyset; keyset pages start after `after` of collection `keyset`).
  std::string pageUrl(const std::string& path, const Params& extra, int64_t offset,
                      const Collection* keyset = nullptr, const VendorItem* after = nullptr) const;

  /// Called with the last page's batch when a listing completes (`done` holds its run_wm).
  using Finish = std::function<void(store::AppendBatch&, const Cursor* done)>;
  /// Lists one path to the end, committing each page (records, and the next page's cursor under
  /// `cursor_key` when that is not empty); `finish` adds the last page's watermarks. With
  /// `ids_out` no records are emitted: the ids are collected instead. Returns the number of
  /// records. Errors: the call's (Errc::not_found for a vanished path), Errc::closed.
  Result<uint64_t> listAll(const Collection& c, const std::string& path, const Params& params,
                           const std::string& cursor_key, Cursor cursor, const Finish& finish,
                           std::vector<std::string>* ids_out = nullptr);

  /// The ids of every record of `parent` (a complete listing, no records emitted), once per
  /// pass; fanoutWatermark() is the server watermark at the start of that listing.
  Result<std::vector<std::string>> fanoutIds(const std::string& parent);
  void forgetFanout(const std::string& parent) { fanout_cache_.erase(parent); }
  std::string fanoutWatermark(const std::string& parent) const;

  /// Every id a complete listing of a collection holds now (the strategy's own way).
  using IdLister = std::function<Status(const Collection&, std::set<std::string>&)>;
  /// Every reconcile_s (after a complete pass): list each collection completely and carry a
  /// deletion for every id carried before ("known:") that is no longer there. The deletion
  /// records and the removal of their "known:" keys commit in one transaction: exactly once.
  /// A no-op unless the profile reconciles.
  Status maybeReconcile(const IdLister& list_ids);

 private:
  RestSettings s_;
  SyncHost& host_;
  const ClientSet& clients_;
  StopSignal& stop_;
  ClockPtr clock_;
  log::Logger logger_;
  std::map<std::string, std::vector<std::string>> fanout_cache_;
  std::map<std::string, std::string> fanout_wm_;  // server watermark at the parent list's start
};

}  // namespace psa::adapters::api
