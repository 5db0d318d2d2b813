// fhir-poll: incremental, exactly-once sync from a FHIR R4 server (pms-interfaces.md §0.2, §0.3;
// tests/sim/README.md §5). Three strategies:
//   bulk    - Group/Patient/system $export with _since = last transactionTime (Epic, Cerner,
//             athenahealth, eClinicalWorks); deletions from the manifest's `deleted` files.
//   search  - T?_lastUpdated=ge<wm> per resource type, wm = the previous run's first page
//             Bundle.meta.lastUpdated (Meditech, Practice Fusion, Tebra); deletions by a
//             periodic reconcile (complete id listings, reconcile.h).
//   history - T/_history?_since=<wm>: every version including deletions.
//   patient-search - per-patient fan-out for servers that refuse population searches (Epic,
//             Cerner, athenahealth without bulk): fhir_fanout.cpp.
// Exactly once: every record carries a de-duplication identity (adapter + Type/id/versionId),
// and every cursor (next link, bulk job progress, the next run's watermark) is committed in the
// same store transaction as the records it covers, so a SIGKILL at any point neither loses nor
// duplicates a version; the overlap window re-reads a little and the store drops the repeats.
#include "fhir_poll.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "api_common.h"
#include "fhir_deletions.h"
#include "fhir_fanout.h"
#include "poller.h"
#include "psa/adapters/api/fhir.h"
#include "psa/adapters/api/http_time.h"
#include "psa/store/clock.h"
#include "reconcile.h"
#include "url.h"

namespace psa::adapters::api {
namespace {

constexpr size_t kBatchBytes = 8u << 20;

struct BulkJob {
  std::string status_url;
  std::string since;
  int64_t file = 0;  // index into output + deleted
  int64_t line = 0;  // lines of that file already committed
  bool valid() const { return !status_url.empty(); }
  std::string encode() const {
    json::Value v = json::Value::object();
    v.set("status_url", json::Value::string(status_url));
    v.set("since", json::Value::string(since));
    v.set("file", json::Value::integer(file));
    v.set("line", json::Value::integer(line));
    return json::serialize(v);
  }
  static BulkJob decode(const std::string& text) {
    BulkJob j;
    auto doc = json::parse(text);
    if (doc && doc->isObject()) {
      j.status_url = doc->getString("status_url");
      j.since = doc->getString("since");
      j.file = doc->getInt("file", 0);
      j.line = doc->getInt("line", 0);
    }
    return j;
  }
};

struct SearchCursor {
  std::string next;
  std::string run_wm;
  std::string encode() const {
    json::Value v = json::Value::object();
    v.set("next", json::Value::string(next));
    v.set("run_wm", json::Value::string(run_wm));
    return json::serialize(v);
  }
  static SearchCursor decode(const std::string& text) {
    SearchCursor c;
    auto doc = json::parse(text);
    if (doc && doc->isObject()) {
      c.next = doc->getString("next");
      c.run_wm = doc->getString("run_wm");
    }
    return c;
  }
};

class FhirPollSource final : public Poller {
 public:
  FhirPollSource(const json::Value& cfg, SourceContext& ctx)
      : Poller(cfg.getString("name"), "fhir-poll", cfg.getString("vendor"), ctx,
               std::chrono::milliseconds(
                   static_cast<int64_t>(cfg.find("interval_s") && cfg.find("interval_s")->isNumber()
                                            ? cfg.find("interval_s")->asNumber() * 1000
                                            : 60000))),
        config_(cfg) {
    base_ = trimSlash(cfg.getString("base_url"));
    if (const json::Value* list = cfg.find("resources"); list != nullptr && list->isArray()) {
      for (const auto& r : list->items()) {
        resources_.push_back(r.asString());
      }
    }
    mode_ = cfg.getString("sync", "search");
    group_id_ = cfg.getString("group_id");
    export_level_ = cfg.getString("export", group_id_.empty() ? "system" : "group");
    page_size_ = cfg.getInt("page_size", 200);
    overlap_s_ = cfg.getInt("overlap_s", 2);
    bulk_timeout_s_ = cfg.getInt("bulk_timeout_s", 3600);
    reconcile_ms_ = cfg.getInt("reconcile_s", 86400) * 1000;
    batch_records_ = static_cast<size_t>(std::max<int64_t>(1, cfg.getInt("batch_records", 1000)));
    if (const json::Value* p = cfg.find("search_params"); p != nullptr && p->isObject()) {
      for (const auto& [k, v] : p->members()) {
        search_params_.emplace_back(k, v.isString() ? v.asString() : json::serialize(v));
      }
    }
    if (const json::Value* m = cfg.find("kind_map"); m != nullptr && m->isObject()) {
      for (const auto& [k, v] : m->members()) {
        if (auto kind = store::parseKind(v.asString())) {
          kind_map_[k] = *kind;
        }
      }
    }
  }

 protected:
  Status prepare() override {
    ClientParams p = clientParams(base_);
    p.api_limits = parseLimitRules(config_.find("rate_limits"));
    p.token_limits = parseLimitRules(config_.find("token_rate_limits"));
    auto set = buildClients(config_, p);
    if (!set) {
      return std::move(set).error();
    }
    clients_ = std::move(set).value();
    logConfigured(base_, "sync", mode_, "resources", resources_.size(), clients_);
    return {};
  }

  void interrupt() override { clients_.cancelAll(); }

  void fillStatus(SourceStatus& s) const override {
    addApiStatus(s, "sync", mode_, "resources", per_type_, type_mu_, clients_);
  }

  Status runOnce() override {
    if (mode_ == "bulk") {
      return runBulk();
    }
    if (mode_ == "patient-search") {
      return runFanout();
    }
    for (const auto& type : resources_) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      Status st = mode_ == "history" ? runPaged(type, true) : runPaged(type, false);
      if (!st) {
        return st;
      }
    }
    return mode_ == "search" ? maybeReconcile() : Status();
  }

 private:
  store::Kind kindOf(const std::string& type) const {
    auto it = kind_map_.find(type);
    return it != kind_map_.end() ? it->second : kindForFhirType(type);
  }

  void countType(const std::string& type, uint64_t n) {
    std::lock_guard lock(type_mu_);
    per_type_[type] += n;
  }

  store::Record recordFor(std::string_view text, const FhirItem& item) {
    countType(item.ref.type, 1);
    return makeRecord(kindOf(item.ref.type), store::format::kFhirJson,
                      std::string(text.substr(item.offset, item.length)),
                      fhirIdentity(item.ref, item.deleted));
  }

  Result<HttpResponse> getPage(const std::string& url, const std::string& what,
                               std::shared_ptr<FhirPage> out) {
    ApiClient::Call call;
    call.what = what;
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.url = url;
      r.headers = {{"Accept", "application/fhir+json"}};
      return r;
    };
    call.validate = [out](const HttpResponse& r) -> Status {
      auto page = parseBundlePage(r.body);
      if (!page) {
        return page.error();
      }
      *out = std::move(page).value();
      return {};
    };
    return clients_.api->call(call);
  }

  // search (history = false) or history (true) for one resource type.
  Status runPaged(const std::string& type, bool history) {
    const std::string wm_key = (history ? "history:" : "search:") + type;
    const std::string cursor_key = wm_key + ":run";
    auto wm = watermark(wm_key);
    if (!wm) {
      return std::move(wm).error();
    }
    auto cur = watermark(cursor_key);
    if (!cur) {
      return std::move(cur).error();
    }
    SearchCursor cursor;
    bool resumed = false;
    if (cur->has_value()) {
      cursor = SearchCursor::decode(**cur);
      resumed = !cursor.next.empty();
    }
    auto firstUrl = [&] {
      Params params;
      if (history) {
        if (wm->has_value()) {
          params.emplace_back("_since", minusOverlap(**wm, overlap_s_));
        }
      } else if (wm->has_value()) {
        params.emplace_back("_lastUpdated", "ge" + minusOverlap(**wm, overlap_s_));
      }
      params.emplace_back("_count", std::to_string(page_size_));
      for (const auto& p : search_params_) {
        params.push_back(p);
      }
      return withQuery(base_ + "/" + type + (history ? "/_history" : ""), params);
    };
    std::string url = resumed ? cursor.next : firstUrl();
    std::string run_wm = resumed ? cursor.run_wm : std::string();
    const std::string what = (history ? "history " : "search ") + type;
    uint64_t pages = 0;
    uint64_t records = 0;
    while (!url.empty()) {
      auto page = std::make_shared<FhirPage>();
      auto resp = getPage(url, what, page);
      if (!resp) {
        if (resumed && pages == 0 &&
            (resp.error().is(Errc::invalid_input) || resp.error().is(Errc::not_found))) {
          // The saved next link expired: start this type's run over from the last watermark
          // (the repeats are dropped by de-duplication).
          logger_.warn("cursor_expired", {{"resource", type}, {"error", resp.error().message}});
          store::AppendBatch b;
          b.watermarks.push_back({name_, cursor_key, std::nullopt});
          PSA_TRY(commit(std::move(b)));
          resumed = false;
          url = firstUrl();
          run_wm.clear();
          continue;
        }
        return Error(resp.error().code,
                     resp.error().message + "; " + type + " watermark unchanged");
      }
      ++pages;
      if (run_wm.empty()) {
        run_wm = page->last_updated;
        if (run_wm.empty()) {
          // No Bundle.meta.lastUpdated: fall back to the server's Date header (second
          // precision, so one second earlier), never to our own clock.
          const int64_t date = clients_.api->lastServerDateMs();
          if (date > 0) {
            run_wm = formatRfc3339(date - 1000);
          }
        }
      }
      store::AppendBatch batch;
      batch.records.reserve(page->items.size());
      for (const auto& item : page->items) {
        batch.records.push_back(recordFor(resp->body, item));
        if (!history && !item.deleted) {
          // Remembered with the record: the reconcile carries its deletion once it vanishes.
          batch.watermarks.push_back({name_, knownKey(item.ref.type, item.ref.id), "1"});
        }
      }
      records += batch.records.size();
      const size_t entries = batch.records.size();
      // Pages are committed asynchronously while the next one is fetched; the cursor (and at
      // the end the watermark) moves only once everything before it is durable.
      if (!batch.records.empty()) {
        PSA_TRY(commitRecordsAsync(std::move(batch)));
      }
      if (page->next_url.empty() || pages % 4 == 0) {
        PSA_TRY(drainCommits());
        store::AppendBatch marks;
        if (!page->next_url.empty()) {
          SearchCursor next{page->next_url, run_wm};
          marks.watermarks.push_back({name_, cursor_key, next.encode()});
        } else {
          if (!run_wm.empty()) {
            marks.watermarks.push_back({name_, wm_key, run_wm});
          }
          marks.watermarks.push_back({name_, cursor_key, std::nullopt});
        }
        auto committed = commit(std::move(marks));
        if (!committed) {
          return std::move(committed).error();
        }
      }
      logger_.debug("page_committed", {{"resource", type}, {"page", pages},
                                       {"entries", static_cast<uint64_t>(entries)}});
      url = page->next_url;
      if (!url.empty() && stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
    }
    // Quiet when nothing changed: a poller runs every minute for years.
    logger_.write(records > 0 ? log::Level::info : log::Level::debug, "sync_done",
                  {{"resource", type}, {"mode", history ? "history" : "search"},
                   {"pages", pages}, {"records", records}});
    return {};
  }

  Status runFanout() {
    FanoutOptions opt;
    opt.adapter = name_;
    opt.base = base_;
    opt.resources = resources_;
    opt.group_id = group_id_;
    opt.page_size = page_size_;
    opt.overlap_s = overlap_s_;
    opt.search_params = search_params_;
    opt.api = clients_.api;
    FanoutHooks hooks;
    hooks.get_page = [this](const std::string& url, const std::string& what,
                            std::shared_ptr<FhirPage> out) { return getPage(url, what, out); };
    hooks.record_for = [this](std::string_view text, const FhirItem& item) {
      return recordFor(text, item);
    };
    hooks.commit = [this](store::AppendBatch b) { return commit(std::move(b)); };
    hooks.watermark = [this](const std::string& key) { return watermark(key); };
    hooks.stopped = [this] { return stop_->stopped(); };
    return runPatientFanout(opt, hooks, logger_);
  }

  // Search shows no deletions: every reconcile_s a complete id listing per type finds them.
  Status maybeReconcile() {
    ReconcileHooks hooks;
    hooks.watermark = [this](const std::string& key) { return watermark(key); };
    hooks.all_watermarks = [this] { return sink_.watermarks(name_); };
    hooks.commit = [this](store::AppendBatch b) { return commit(std::move(b)); };
    hooks.list_ids = [this](const std::string& type, std::set<std::string>& ids) {
      return listFhirIds([this](const std::string& url, const std::string& what,
                                std::shared_ptr<FhirPage> out) { return getPage(url, what, out); },
                         base_, type, page_size_, search_params_,
                         [this] { return stop_->stopped(); }, ids);
    };
    hooks.deletion_record = [this](const std::string& type, const std::string& id, int64_t) {
      countType(type, 1);
      addCount("deletions");
      return makeRecord(kindOf(type), store::format::kFhirJson, fhirDeletionEntry(type, id),
                        fhirIdentity(FhirRef{type, id, "", ""}, true));
    };
    return reconcileIfDue(name_, resources_, reconcile_ms_, clock_->nowMs(), hooks, logger_);
  }

  // ---- Bulk $export -------------------------------------------------------------------------

  std::string kickoffUrl(const std::string& since) const {
    std::string path;
    if (export_level_ == "group") {
      path = "/Group/" + percentEncode(group_id_) + "/$export";
    } else if (export_level_ == "patient") {
      path = "/Patient/$export";
    } else {
      path = "/$export";
    }
    Params params;
    std::string types;
    for (const auto& t : resources_) {
      types += (types.empty() ? "" : ",") + t;
    }
    if (!types.empty()) {
      params.emplace_back("_type", types);
    }
    params.emplace_back("_outputFormat", "application/fhir+ndjson");
    if (!since.empty()) {
      params.emplace_back("_since", minusOverlap(since, overlap_s_));
    }
    return withQuery(base_ + path, params);
  }

  Status commitJob(const BulkJob& job) {
    store::AppendBatch b;
    b.watermarks.push_back({name_, "bulk:job", job.encode()});
    auto r = commit(std::move(b));
    if (!r) {
      return std::move(r).error();
    }
    return {};
  }

  Status dropJob() {
    store::AppendBatch b;
    b.watermarks.push_back({name_, "bulk:job", std::nullopt});
    auto r = commit(std::move(b));
    if (!r) {
      return std::move(r).error();
    }
    return {};
  }

  Result<BulkJob> kickoff(const std::string& since) {
    const std::string url = kickoffUrl(since);
    ApiClient::Call call;
    call.what = "bulk kick-off";
    call.accept = {202};
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.url = url;
      r.headers = {{"Accept", "application/fhir+json"}, {"Prefer", "respond-async"}};
      return r;
    };
    auto resp = clients_.api->call(call);
    if (!resp) {
      return std::move(resp).error();
    }
    if (resp->status != 202) {
      return Error(Errc::invalid_input, "bulk kick-off: expected 202, got " + describeStatus(*resp));
    }
    auto loc = resp->header("content-location");
    if (!loc || loc->empty()) {
      return Error(Errc::invalid_input, "bulk kick-off: 202 without Content-Location");
    }
    BulkJob job;
    job.status_url = resolveUrl(url, *loc);
    job.since = since;
    if (auto ra = resp->header("retry-after")) {
      if (auto d = parseRetryAfter(*ra, clients_.api->lastServerDateMs() > 0
                                            ? clients_.api->lastServerDateMs()
                                            : clock_->nowMs())) {
        first_wait_ = *d + std::chrono::milliseconds(100);
      }
    }
    logger_.info("bulk_started", {{"since", since.empty() ? std::string("(full)") : since}});
    return job;
  }

  // Polls until the manifest is ready. Errc::not_found: the job is gone (start a new one).
  Result<BulkManifest> waitForManifest(const BulkJob& job) {
    const auto deadline = clock_->steady() + std::chrono::seconds(bulk_timeout_s_);
    std::chrono::milliseconds wait = first_wait_;
    first_wait_ = std::chrono::milliseconds(0);
    std::chrono::milliseconds poll{500};
    for (;;) {
      if (wait.count() > 0 && !stop_->sleepFor(wait)) {
        return Error(Errc::closed, "stopped");
      }
      if (clock_->steady() > deadline) {
        return Error(Errc::timeout, "bulk export not ready after " +
                                        std::to_string(bulk_timeout_s_) + " s");
      }
      auto manifest = std::make_shared<BulkManifest>();
      ApiClient::Call call;
      call.what = "bulk status";
      call.accept = {202, 404, 410, 500};
      const std::string url = job.status_url;
      call.build = [url]() -> Result<HttpRequest> {
        HttpRequest r;
        r.url = url;
        r.headers = {{"Accept", "application/json"}};
        return r;
      };
      call.validate = [manifest](const HttpResponse& r) -> Status {
        auto m = parseBulkManifest(r.body);
        if (!m) {
          return m.error();
        }
        *manifest = std::move(m).value();
        return {};
      };
      auto resp = clients_.api->call(call);
      if (!resp) {
        return std::move(resp).error();
      }
      if (resp->status == 200) {
        // An accepted status skips validate(): only 200 reaches here validated.
        return *manifest;
      }
      if (resp->status == 404 || resp->status == 410) {
        return Error(Errc::not_found, "bulk job gone (" + describeStatus(*resp) + ")");
      }
      if (resp->status == 500) {
        return Error(Errc::corrupt, "bulk export failed on the server: " + describeStatus(*resp));
      }
      // 202: in progress.
      wait = poll;
      if (auto ra = resp->header("retry-after")) {
        int64_t ref = clients_.api->lastServerDateMs();
        if (auto d = parseRetryAfter(*ra, ref > 0 ? ref : clock_->nowMs())) {
          wait = *d + std::chrono::milliseconds(100);
        }
      } else {
        poll = std::min<std::chrono::milliseconds>(poll * 2, std::chrono::seconds(30));
      }
      const std::string progress = resp->header("x-progress").value_or("");
      logger_.debug("bulk_progress", {{"progress", progress}, {"wait_ms", wait.count()}});
    }
  }

  // One NDJSON file, resumed after `skip` committed lines. Commits every kBatchRecords lines
  // with the job cursor; the last commit moves the cursor to the next file.
  Status downloadFile(const BulkManifest& m, BulkJob& job, const BulkFile& file, bool deleted,
                      size_t file_index, size_t file_count) {
    struct Reader {
      std::string partial;
      int64_t line = 0;       // lines seen in this attempt
      int64_t nonempty = 0;
      store::AppendBatch batch;
      size_t batch_bytes = 0;
      int64_t batch_last_line = 0;
      Error error;
      bool fatal = false;
    };
    auto rd = std::make_shared<Reader>();
    const int64_t file_idx = static_cast<int64_t>(file_index);
    uint64_t records = 0;

    // Records go to the store asynchronously (fetching and parsing overlap the commits); the
    // job cursor moves only after everything before it is durable: every 4th batch and at the
    // end of the file.
    size_t flushes = 0;
    auto flush = [&](int64_t next_file, int64_t next_line) -> Status {
      const size_t n = rd->batch.records.size();
      const bool cursor = next_line == 0 || ++flushes % 4 == 0;
      if (n > 0) {
        PSA_TRY(commitRecordsAsync(std::move(rd->batch)));
      }
      rd->batch = store::AppendBatch();
      rd->batch_bytes = 0;
      records += n;
      if (cursor) {
        PSA_TRY(drainCommits());
        BulkJob j = job;
        j.file = next_file;
        j.line = next_line;
        store::AppendBatch b;
        b.watermarks.push_back({name_, "bulk:job", j.encode()});
        auto c = commit(std::move(b));
        if (!c) {
          return std::move(c).error();
        }
        job = j;
      }
      return {};
    };
    auto handleLine = [&](std::string_view line) -> Status {
      ++rd->line;
      if (line.empty() || line == "\r") {
        return {};
      }
      ++rd->nonempty;
      if (rd->line <= job.line) {
        return {};  // committed before a crash or a broken transfer
      }
      if (deleted) {
        auto items = parseNdjsonDeleted(line);
        if (!items) {
          return Error(items.error().code,
                       "line " + std::to_string(rd->line) + ": " + items.error().message);
        }
        for (const auto& it : *items) {
          rd->batch.records.push_back(recordFor(line, it));
        }
      } else {
        auto item = parseNdjsonResource(line, file.type);
        if (!item) {
          return Error(item.error().code,
                       "line " + std::to_string(rd->line) + ": " + item.error().message);
        }
        rd->batch.records.push_back(recordFor(line, *item));
      }
      rd->batch_bytes += line.size();
      rd->batch_last_line = rd->line;
      if (rd->batch.records.size() >= batch_records_ || rd->batch_bytes >= kBatchBytes) {
        PSA_TRY(flush(file_idx, rd->line));
        logger_.debug("batch_committed", {{"file", file_idx + 1}, {"line", rd->line}});
      }
      return {};
    };
    BodySink sink = [&](std::string_view chunk) -> bool {
      size_t start = 0;
      if (!rd->partial.empty()) {
        const size_t nl = chunk.find('\n');
        if (nl == std::string_view::npos) {
          rd->partial.append(chunk);
          return rd->partial.size() <= (64u << 20);
        }
        rd->partial.append(chunk.substr(0, nl));
        std::string line = std::move(rd->partial);
        rd->partial.clear();
        if (auto st = handleLine(line); !st) {
          rd->error = st.error();
          rd->fatal = !st.error().is(Errc::invalid_input) && !st.error().is(Errc::limit);
          return false;
        }
        start = nl + 1;
      }
      for (;;) {
        const size_t nl = chunk.find('\n', start);
        if (nl == std::string_view::npos) {
          break;
        }
        if (auto st = handleLine(chunk.substr(start, nl - start)); !st) {
          rd->error = st.error();
          rd->fatal = !st.error().is(Errc::invalid_input) && !st.error().is(Errc::limit);
          return false;
        }
        start = nl + 1;
      }
      rd->partial.append(chunk.substr(start));
      return rd->partial.size() <= (64u << 20);
    };
    ApiClient::Call call;
    call.what = std::string(deleted ? "bulk deleted file " : "bulk file ") +
                std::to_string(file_index + 1) + "/" + std::to_string(file_count) + " (" +
                file.type + ")";
    call.authenticate = m.requires_access_token;
    call.stream = &sink;
    const std::string url = file.url;
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.url = url;
      r.headers = {{"Accept", "application/fhir+ndjson"}};
      return r;
    };
    call.before_attempt = [rd] {
      rd->partial.clear();
      rd->line = 0;
      rd->nonempty = 0;
      rd->batch = store::AppendBatch();
      rd->batch_bytes = 0;
      rd->error = Error();
      rd->fatal = false;
    };
    call.validate = [&](const HttpResponse&) -> Status {
      if (!rd->partial.empty()) {
        std::string line = std::move(rd->partial);
        rd->partial.clear();
        PSA_TRY(handleLine(line));
      }
      if (!deleted && file.count >= 0 && rd->nonempty != file.count) {
        return Error(Errc::invalid_input, "file has " + std::to_string(rd->nonempty) +
                                              " resources, the manifest says " +
                                              std::to_string(file.count));
      }
      return flush(file_idx + 1, 0);
    };
    auto resp = clients_.api->call(call);
    if (!resp) {
      if (rd->fatal) {
        return rd->error;
      }
      if (!rd->error.message.empty()) {
        return Error(rd->error.code, call.what + ": " + rd->error.message + " (after retries)");
      }
      return std::move(resp).error();
    }
    logger_.debug("bulk_file_done", {{"file", static_cast<uint64_t>(file_index + 1)},
                                     {"type", file.type}, {"records", records}});
    return {};
  }

  Status runBulk() {
    auto since = watermark("bulk:since");
    if (!since) {
      return std::move(since).error();
    }
    auto saved = watermark("bulk:job");
    if (!saved) {
      return std::move(saved).error();
    }
    BulkJob job;
    if (saved->has_value()) {
      job = BulkJob::decode(**saved);
    }
    Result<BulkManifest> manifest = Error(Errc::not_found, "no job");
    if (job.valid()) {
      logger_.info("bulk_resume", {{"file", job.file}, {"line", job.line}});
      manifest = waitForManifest(job);
      if (!manifest) {
        if (manifest.error().is(Errc::not_found) || manifest.error().is(Errc::corrupt)) {
          logger_.warn("bulk_job_dropped", {{"error", manifest.error().message}});
          PSA_TRY(dropJob());
          job = BulkJob();
          if (manifest.error().is(Errc::corrupt)) {
            return manifest.error();
          }
        } else {
          return manifest.error();
        }
      }
    }
    if (!job.valid()) {
      auto started = kickoff(since->value_or(""));
      if (!started) {
        return Error(started.error().code, started.error().message + "; watermark unchanged");
      }
      job = std::move(started).value();
      PSA_TRY(commitJob(job));
      manifest = waitForManifest(job);
      if (!manifest) {
        if (manifest.error().is(Errc::not_found) || manifest.error().is(Errc::corrupt)) {
          PSA_TRY(dropJob());
        }
        return Error(manifest.error().code, manifest.error().message + "; watermark unchanged");
      }
    }
    const BulkManifest& m = *manifest;
    std::vector<std::pair<const BulkFile*, bool>> files;
    for (const auto& f : m.output) {
      files.emplace_back(&f, false);
    }
    for (const auto& f : m.deleted) {
      files.emplace_back(&f, true);
    }
    logger_.info("bulk_ready", {{"files", static_cast<uint64_t>(files.size())},
                                {"resume_file", job.file}});
    for (size_t i = static_cast<size_t>(std::max<int64_t>(0, job.file)); i < files.size(); ++i) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      if (job.file != static_cast<int64_t>(i)) {
        job.file = static_cast<int64_t>(i);
        job.line = 0;
      }
      auto st = downloadFile(m, job, *files[i].first, files[i].second, i, files.size());
      if (!st) {
        return Error(st.error().code, st.error().message + "; watermark unchanged");
      }
    }
    // All files committed: the next export starts at this one's transactionTime.
    store::AppendBatch done;
    done.watermarks.push_back({name_, "bulk:since", m.transaction_time});
    done.watermarks.push_back({name_, "bulk:job", std::nullopt});
    auto c = commit(std::move(done));
    if (!c) {
      return std::move(c).error();
    }
    // Clean-up is best effort: a server that lost the job already is fine.
    ApiClient::Call del;
    del.what = "bulk delete";
    del.accept = {202, 204, 404, 410};
    const std::string url = job.status_url;
    del.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.method = "DELETE";
      r.url = url;
      return r;
    };
    if (auto r = clients_.api->call(del); !r && r.error().is(Errc::closed)) {
      return r.error();
    }
    logger_.info("sync_done", {{"mode", "bulk"}, {"transaction_time", m.transaction_time},
                               {"files", static_cast<uint64_t>(files.size())}});
    return {};
  }

  json::Value config_;
  std::string base_;
  std::vector<std::string> resources_;
  std::string mode_;
  std::string group_id_;
  std::string export_level_;
  int64_t page_size_ = 200;
  int64_t overlap_s_ = 2;
  int64_t bulk_timeout_s_ = 3600;
  size_t batch_records_ = 1000;
  int64_t reconcile_ms_ = 86400000;
  Params search_params_;
  std::map<std::string, store::Kind> kind_map_;
  ClientSet clients_;
  std::chrono::milliseconds first_wait_{0};
  mutable std::mutex type_mu_;
  std::map<std::string, uint64_t> per_type_;
};

}  // namespace

Result<SourcePtr> makeFhirPollSource(const json::Value& config, SourceContext& ctx) {
  return SourcePtr(std::make_shared<FhirPollSource>(config, ctx));
}

}  // namespace psa::adapters::api
