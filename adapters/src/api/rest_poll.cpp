// rest-poll: incremental, exactly-once sync from a vendor-specific API driven by a vendor
// profile (rest_profiles.cpp, or `profile_file`). Strategies:
//   since-list    - every collection listed with the vendor's "changed since" parameter
//                   (DrChrono `since`, NextGen OData `$filter ... ge datetime'...'`), paged by
//                   next link or offset, optionally fanned out per parent record (NextGen charts).
//   athena-feeds  - subscribe, full lists once, then consume-on-read changed feeds; a lost
//                   consuming read is replayed from the last good server time.
//   kareo-soap    - SOAP Get* operations with FromLastModifiedDate, GetAllPatients StartKey/Key
//                   batches for the initial load; in-band errors and throttling.
//   unity-changed - GetServerInfo, GetChangedPatients(since), per-patient complete lists.
// Watermarks are the SERVER's time at the start of a listing (local time, minus one second and
// the overlap window), never our clock and never max(last-modified seen). Each record carries a
// de-duplication identity (adapter, collection/id and a SHA-256 of the exact bytes), so repeats
// from overlaps, replays and restarts are dropped by the store; cursors and watermarks commit
// in the same transaction as the records they cover.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "api_common.h"
#include "fhir_poll.h"
#include "poller.h"
#include "psa/adapters/api/fhir.h"
#include "psa/adapters/api/vendor.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"
#include "reconcile.h"
#include "state_file.h"
#include "url.h"

namespace psa::adapters::api {

const json::Value* restProfile(const std::string& name);
std::vector<std::string> restProfileNames();

namespace {

std::string replaceAll(std::string s, std::string_view what, std::string_view with) {
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size())) {
    s.replace(pos, what.size(), with);
  }
  return s;
}

struct Collection {
  std::string name;
  std::string path;
  std::string kind_name;
  store::Kind kind = store::Kind::other;
  std::string id_field;
  std::string ts_field;
  std::string items_key;       // athena: the array member of lists
  std::string feed;            // athena: changed feed path
  std::string feed_items;      // athena: array member of the feed (default items_key)
  std::string per;             // fan-out parent collection
  std::string initial_since;   // first run `since` value (DrChrono appointments)
  std::string op;              // kareo operation
  std::string all_op;          // kareo batch operation for the initial load
  std::string item;            // kareo item element
  std::string action;          // unity action
  bool global = false;         // unity: not per patient
  Params params;
};

struct Cursor {
  std::string url;
  int64_t offset = 0;
  std::string run_wm;
  std::string encode() const {
    json::Value v = json::Value::object();
    v.set("url", json::Value::string(url));
    v.set("offset", json::Value::integer(offset));
    v.set("run_wm", json::Value::string(run_wm));
    return json::serialize(v);
  }
  static Cursor decode(const std::string& s) {
    Cursor c;
    if (auto d = json::parse(s); d && d->isObject()) {
      c.url = d->getString("url");
      c.offset = d->getInt("offset");
      c.run_wm = d->getString("run_wm");
    }
    return c;
  }
};

Params paramsOf(const json::Value* obj) {
  Params out;
  if (obj != nullptr && obj->isObject()) {
    for (const auto& [k, v] : obj->members()) {
      out.emplace_back(k, v.isString() ? v.asString() : json::serialize(v));
    }
  }
  return out;
}

class RestPollSource final : public Poller {
 public:
  RestPollSource(const json::Value& cfg, json::Value profile, SourceContext& ctx)
      : Poller(cfg.getString("name"), "rest-poll", cfg.getString("vendor"), ctx,
               std::chrono::milliseconds(static_cast<int64_t>(
                   (cfg.find("interval_s") && cfg.find("interval_s")->isNumber()
                        ? cfg.find("interval_s")->asNumber()
                        : profile.getInt("interval_s", 300)) *
                   1000))),
        config_(cfg),
        profile_(std::move(profile)) {
    base_ = trimSlash(cfg.getString("base_url"));
    strategy_ = profile_.getString("strategy");
    format_ = profile_.getString("format", "vendor+json");
    time_format_ = profile_.getString("time_format", "%Y-%m-%dT%H:%M:%S");
    offset_min_ = parseUtcOffset(cfg.getString("utc_offset", profile_.getString("utc_offset", "+00:00")))
                      .value_or(0);
    overlap_s_ = cfg.getInt("overlap_s", 2);
    reconcile_ = profile_.getString("deletions") == "reconcile";
    reconcile_ms_ = cfg.getInt("reconcile_s", 86400) * 1000;
    const json::Value* paging = profile_.find("paging");
    static const json::Value kEmpty = json::Value::object();
    paging_ = paging != nullptr ? *paging : kEmpty;
    page_size_ = cfg.getInt("page_size", paging_.getInt("page_size", 100));
    if (const json::Value* s = profile_.find("since"); s != nullptr) {
      since_param_ = s->getString("param");
      since_template_ = s->getString("template", "{}");
      since_initial_ = s->getString("initial");
    }
    if (const json::Value* h = profile_.find("headers"); h != nullptr && h->isObject()) {
      for (const auto& [k, v] : h->members()) {
        headers_.emplace_back(k, v.asString());
      }
    }
    if (const json::Value* t = profile_.find("tombstones"); t != nullptr && t->isArray()) {
      for (const auto& f : t->items()) {
        tombstones_.push_back(f.asString());
      }
    }
    std::set<std::string> wanted;
    if (const json::Value* list = cfg.find("collections"); list != nullptr && list->isArray()) {
      for (const auto& c : list->items()) {
        wanted.insert(c.asString());
      }
    }
    std::map<std::string, store::Kind> overrides;
    if (const json::Value* m = cfg.find("kind_map"); m != nullptr && m->isObject()) {
      for (const auto& [k, v] : m->members()) {
        if (auto kind = store::parseKind(v.asString())) {
          overrides[k] = *kind;
        }
      }
    }
    if (const json::Value* list = profile_.find("collections"); list != nullptr && list->isArray()) {
      for (const auto& c : list->items()) {
        Collection col;
        col.name = c.getString("name");
        if (!wanted.empty() && wanted.count(col.name) == 0) {
          continue;
        }
        col.path = c.getString("path");
        col.kind_name = c.getString("kind", "other");
        col.kind = store::parseKind(col.kind_name).value_or(store::Kind::other);
        if (auto it = overrides.find(col.name); it != overrides.end()) {
          col.kind = it->second;
        }
        col.id_field = c.getString("id", "id");
        col.ts_field = c.getString("ts");
        col.items_key = c.getString("items");
        col.feed = c.getString("feed");
        col.feed_items = c.getString("feed_items", col.items_key);
        col.per = c.getString("per");
        col.initial_since = c.getString("initial_since");
        col.op = c.getString("op");
        col.all_op = c.getString("all_op");
        col.item = c.getString("item");
        col.action = c.getString("action");
        col.global = c.getBool("global", false);
        col.params = paramsOf(c.find("params"));
        collections_.push_back(std::move(col));
      }
    }
  }

 protected:
  Status prepare() override {
    if (collections_.empty()) {
      return Error(Errc::invalid_argument, "no collections to sync (check `collections`)");
    }
    ClientParams p;
    p.adapter = name_;
    p.vendor = vendor_;
    p.api_base = base_;
    p.token_url_fallback = strategy_ == "unity-changed" ? base_ + "/GetToken" : std::string();
    const json::Value* limits = config_.find("rate_limits");
    p.api_limits = parseLimitRules(limits != nullptr ? limits : profile_.find("rate_limits"));
    const json::Value* tlimits = config_.find("token_rate_limits");
    p.token_limits = parseLimitRules(tlimits != nullptr ? tlimits : profile_.find("token_rate_limits"));
    p.state_dir = state_dir_;
    p.clock = clock_;
    p.stop = stop_;
    p.vault = vault();
    auto set = buildClients(config_, p);
    if (!set) {
      return std::move(set).error();
    }
    clients_ = std::move(set).value();
    if (strategy_ == "kareo-soap" && kareoCredentials(*clients_.auth) == nullptr) {
      return Error(Errc::invalid_argument, "the Kareo profile needs auth.type \"kareo\"");
    }
    if (strategy_ == "unity-changed" && unityAppname(*clients_.auth).empty()) {
      return Error(Errc::invalid_argument, "the Unity profile needs auth.type \"unity\"");
    }
    logger_.info("configured", {{"base_url", base_},
                                {"strategy", strategy_},
                                {"collections", static_cast<uint64_t>(collections_.size())},
                                {"auth", clients_.auth->describe()}});
    return {};
  }

  void interrupt() override { clients_.cancelAll(); }

  void fillStatus(SourceStatus& s) const override {
    s.detail.set("strategy", json::Value::string(strategy_));
    json::Value per = json::Value::object();
    {
      std::lock_guard lock(count_mu_);
      for (const auto& [c, n] : per_collection_) {
        per.set(c, json::Value::integer(static_cast<int64_t>(n)));
      }
    }
    s.detail.set("collections", std::move(per));
    clients_.addCounters(s.counters);
  }

  Status runOnce() override {
    fanout_cache_.clear();
    fanout_wm_.clear();
    if (strategy_ == "since-list") {
      return runSinceList();
    }
    if (strategy_ == "athena-feeds") {
      return runAthena();
    }
    if (strategy_ == "kareo-soap") {
      return runKareo();
    }
    if (strategy_ == "unity-changed") {
      return runUnity();
    }
    return Error(Errc::invalid_argument, "unknown profile strategy \"" + strategy_ + "\"");
  }

 private:
  // ---- shared helpers ---------------------------------------------------------------------

  store::Record recordFor(const Collection& c, std::string_view text, const VendorItem& item) {
    {
      std::lock_guard lock(count_mu_);
      ++per_collection_[c.name];
    }
    if (item.tombstone) {
      addCount("deletions");
    }
    std::string payload(text.substr(item.offset, item.length));
    std::string identity = c.name + "/" + item.id + "#" + sha256Hex(payload);
    return makeRecord(c.kind, format_, std::move(payload), identity);
  }

  // Reconciling profiles remember every record id they carried ("known:<collection>/<id>", in
  // the same transaction as the record), so a complete re-list can tell what vanished.
  void noteKnown(store::AppendBatch& batch, const Collection& c, const VendorItem& item) const {
    if (reconcile_ && !item.tombstone) {
      batch.watermarks.push_back({name_, "known:" + c.name + "/" + item.id, "1"});
    }
  }

  VendorPageSpec specFor(const Collection& c, bool feed = false) const {
    VendorPageSpec spec;
    const std::string key = feed ? c.feed_items : c.items_key;
    if (!key.empty()) {
      spec.items_keys = {key};
    } else if (const json::Value* items = paging_.find("items"); items != nullptr && items->isArray()) {
      for (const auto& i : items->items()) {
        spec.items_keys.push_back(i.asString());
      }
    }
    spec.id_field = c.id_field;
    spec.ts_field = c.ts_field;
    spec.next_field = paging_.getString("next", "next");
    spec.total_field = paging_.getString("total");
    spec.tombstone_fields = tombstones_;
    return spec;
  }

  Result<HttpResponse> getList(const std::string& url, const std::string& what,
                               const VendorPageSpec& spec, std::shared_ptr<VendorPage> out) {
    ApiClient::Call call;
    call.what = what;
    Headers headers = headers_;
    call.build = [url, headers]() -> Result<HttpRequest> {
      HttpRequest r;
      r.url = url;
      r.headers = headers;
      return r;
    };
    call.validate = [out, spec](const HttpResponse& r) -> Status {
      auto page = parseVendorPage(r.body, spec);
      if (!page) {
        return page.error();
      }
      *out = std::move(page).value();
      return {};
    };
    return clients_.api->call(call);
  }

  // The server's clock at the last response, as the vendor's local-time watermark: minus one
  // second (second precision) and the overlap window.
  std::string serverWatermark() const {
    const int64_t date = clients_.api->lastServerDateMs();
    if (date <= 0) {
      return {};
    }
    return formatLocalTime(date - 1000 - overlap_s_ * 1000, offset_min_, time_format_);
  }

  Status commitWatermarks(std::vector<store::WatermarkUpdate> w) {
    store::AppendBatch b;
    b.watermarks = std::move(w);
    auto r = commit(std::move(b));
    if (!r) {
      return std::move(r).error();
    }
    return {};
  }

  std::string pageUrl(const std::string& path, const Params& extra, int64_t offset,
                      const Collection* keyset = nullptr, const VendorItem* after = nullptr) const {
    Params q = extra;
    const std::string style = paging_.getString("style", "next-url");
    if (style == "keyset" && keyset != nullptr) {
      // OData keyset paging: ordered by the id, each page starts after the last id of the
      // previous one. Unlike $skip, a deletion behind the cursor cannot shift a record past it.
      // A record created or updated behind the cursor while we page has a stamp >= this run's
      // watermark, so the next run reads it. (Not by timestamp: the server compares $filter
      // date-times to the second, so a page boundary inside a second would skip records.)
      const std::string fparam = paging_.getString("filter_param", "$filter");
      if (after != nullptr) {
        std::string id = replaceAll(after->id, "'", "''");
        std::string clause = paging_.getString("after");
        clause = replaceAll(clause, "{ts_field}", keyset->ts_field);
        clause = replaceAll(clause, "{id_field}", keyset->id_field);
        clause = replaceAll(clause, "{ts}", replaceAll(after->ts, "'", "''"));
        clause = replaceAll(clause, "{id}", id);
        bool merged = false;
        for (auto& [k, v] : q) {
          if (k == fparam) {
            v = "(" + v + ") and (" + clause + ")";
            merged = true;
          }
        }
        if (!merged) {
          q.emplace_back(fparam, clause);
        }
      }
      std::string order = paging_.getString("order");
      order = replaceAll(order, "{ts_field}", keyset->ts_field);
      order = replaceAll(order, "{id_field}", keyset->id_field);
      q.emplace_back(paging_.getString("order_param", "$orderby"), order);
      q.emplace_back(paging_.getString("limit_param", "limit"), std::to_string(page_size_));
    } else if (style == "offset" || style == "keyset") {
      q.emplace_back(paging_.getString("limit_param", "limit"), std::to_string(page_size_));
      q.emplace_back(paging_.getString("offset_param", "offset"), std::to_string(offset));
    } else if (const std::string p = paging_.getString("page_size_param"); !p.empty()) {
      q.emplace_back(p, std::to_string(page_size_));
    }
    return withQuery(base_ + path, q);
  }

  // Lists one path to the end, committing each page; `on_page` adds cursor watermarks.
  // Returns the number of records.
  Result<uint64_t> listAll(const Collection& c, const std::string& path, const Params& params,
                           const std::string& cursor_key, Cursor cursor,
                           const std::function<void(store::AppendBatch&, const Cursor*)>& finish,
                           std::vector<std::string>* ids_out = nullptr) {
    const std::string style = paging_.getString("style", "next-url");
    const VendorPageSpec spec = specFor(c);
    if (style == "keyset" && c.ts_field.empty() &&
        paging_.getString("after").find("{ts}") != std::string::npos) {
      return Error(Errc::invalid_argument, "keyset paging needs a \"ts\" field for " + c.name);
    }
    std::string url = !cursor.url.empty() ? cursor.url : pageUrl(path, params, cursor.offset, &c);
    int64_t offset = cursor.offset;
    uint64_t records = 0;
    for (uint64_t pages = 0;; ++pages) {
      auto page = std::make_shared<VendorPage>();
      auto resp = getList(url, "list " + c.name, spec, page);
      if (!resp) {
        return std::move(resp).error();
      }
      if (cursor.run_wm.empty()) {
        cursor.run_wm = serverWatermark();
      }
      store::AppendBatch batch;
      if (ids_out == nullptr) {
        batch.records.reserve(page->items.size());
        for (const auto& item : page->items) {
          batch.records.push_back(recordFor(c, resp->body, item));
          noteKnown(batch, c, item);
        }
      } else {
        for (const auto& item : page->items) {
          ids_out->push_back(item.id);
        }
      }
      records += page->items.size();
      std::string next;
      if (style == "keyset") {
        if (static_cast<int64_t>(page->items.size()) >= page_size_) {
          const VendorItem& last = page->items.back();
          if (last.ts.empty() && paging_.getString("after").find("{ts}") != std::string::npos) {
            return Error(Errc::invalid_input, "list " + c.name + ": record " + last.id + " has no " +
                                                  c.ts_field + " to page after");
          }
          next = pageUrl(path, params, 0, &c, &last);
        }
      } else if (style == "offset") {
        if (static_cast<int64_t>(page->items.size()) >= page_size_) {
          offset += page_size_;
          next = pageUrl(path, params, offset);
        }
      } else if (!page->next.empty()) {
        next = resolveUrl(url, page->next);
      }
      if (!next.empty()) {
        Cursor nc{next, offset, cursor.run_wm};
        if (!cursor_key.empty()) {
          batch.watermarks.push_back({name_, cursor_key, nc.encode()});
        }
      } else {
        finish(batch, &cursor);
      }
      if (!batch.records.empty() || !batch.watermarks.empty()) {
        auto committed = commit(std::move(batch));
        if (!committed) {
          return std::move(committed).error();
        }
      }
      logger_.debug("page_committed", {{"collection", c.name}, {"page", pages + 1},
                                       {"entries", static_cast<uint64_t>(page->items.size())}});
      if (next.empty()) {
        return records;
      }
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      url = next;
    }
  }

  Params sinceParams(const Collection& c, const std::optional<std::string>& wm) const {
    Params p = c.params;
    if (since_param_.empty()) {
      return p;
    }
    std::string value;
    if (wm.has_value() && !wm->empty()) {
      value = *wm;
    } else if (!c.initial_since.empty()) {
      value = c.initial_since;
    } else {
      value = since_initial_;
    }
    if (!value.empty()) {
      p.emplace_back(since_param_, replaceAll(since_template_, "{}", value));
    }
    return p;
  }

  // The ids of every record of `parent` (a complete listing, no records emitted), once per run.
  Result<std::vector<std::string>> fanoutIds(const std::string& parent) {
    if (auto it = fanout_cache_.find(parent); it != fanout_cache_.end()) {
      return it->second;
    }
    const Collection* pc = nullptr;
    for (const auto& c : collections_) {
      if (c.name == parent) {
        pc = &c;
      }
    }
    Collection tmp;
    if (pc == nullptr) {
      // The parent is not synced itself: describe it from the profile.
      if (const json::Value* list = profile_.find("collections"); list != nullptr) {
        for (const auto& c : list->items()) {
          if (c.getString("name") == parent) {
            tmp.name = parent;
            tmp.path = c.getString("path");
            tmp.id_field = c.getString("id", "id");
            tmp.ts_field = c.getString("ts");
            tmp.items_key = c.getString("items");
            tmp.params = paramsOf(c.find("params"));
          }
        }
      }
      if (tmp.name.empty()) {
        return Error(Errc::invalid_argument, "fan-out parent " + parent + " is not in the profile");
      }
      pc = &tmp;
    }
    std::vector<std::string> ids;
    std::string listed_at;
    auto r = listAll(*pc, pc->path, pc->params, "", Cursor{},
                     [&](store::AppendBatch&, const Cursor* done) { listed_at = done->run_wm; }, &ids);
    if (!r) {
      return std::move(r).error();
    }
    fanout_cache_[parent] = ids;
    fanout_wm_[parent] = listed_at;
    return ids;
  }

  // ---- since-list (DrChrono, NextGen) ------------------------------------------------------

  Status runSinceList() {
    for (const auto& c : collections_) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      auto st = c.per.empty() ? syncCollection(c) : syncFanout(c);
      if (!st) {
        return Error(st.error().code, st.error().message + "; " + c.name + " watermark unchanged");
      }
    }
    return maybeReconcile();
  }

  // ---- reconciliation (vendors that never signal deletions) --------------------------------

  // Every id a complete listing of `c` holds now (no records are emitted).
  Status completeIds(const Collection& c, std::set<std::string>& out) {
    std::vector<std::string> ids;
    if (strategy_ == "kareo-soap") {
      if (!c.all_op.empty()) {
        std::string start;
        for (;;) {
          std::vector<std::pair<std::string, std::string>> filter = {
              {"BatchSize", std::to_string(std::min<int64_t>(page_size_, 1000))}};
          if (!start.empty()) {
            filter.emplace_back("StartKey", start);
          }
          std::string body;
          auto a = kareoCall(c, c.all_op, filter, body);
          if (!a) {
            return a.error();
          }
          for (const auto& item : (*a)->items) {
            out.insert(item.id);
          }
          if (!(*a)->next_key.has_value() || stop_->stopped()) {
            break;
          }
          start = *(*a)->next_key;
        }
      } else {
        std::string body;
        auto a = kareoCall(c, c.op, {}, body);
        if (!a) {
          return a.error();
        }
        for (const auto& item : (*a)->items) {
          out.insert(item.id);
        }
      }
      return {};
    }
    const auto noop = [](store::AppendBatch&, const Cursor*) {};
    if (c.per.empty()) {
      auto n = listAll(c, c.path, sinceParams(c, std::nullopt), "", Cursor{}, noop, &ids);
      if (!n) {
        return n.error();
      }
    } else {
      auto parents = fanoutIds(c.per);
      if (!parents) {
        return parents.error();
      }
      for (const auto& id : *parents) {
        auto n = listAll(c, replaceAll(c.path, "{id}", percentEncode(id)), sinceParams(c, std::nullopt),
                         "", Cursor{}, noop, &ids);
        if (!n && !n.error().is(Errc::not_found)) {
          return n.error();
        }
      }
    }
    out.insert(ids.begin(), ids.end());
    return {};
  }

  // Every reconcile_s (after a complete pass): list each collection completely and carry a
  // deletion for every id carried before ("known:") that is no longer there. The deletion
  // records and the removal of their "known:" keys commit in one transaction: exactly once.
  // Listings are keyset/complete (never $skip), so a live record is never mistaken for gone.
  Status maybeReconcile() {
    if (!reconcile_) {
      return {};
    }
    std::vector<std::string> names;
    for (const auto& c : collections_) {
      names.push_back(c.name);
    }
    auto byName = [this](const std::string& name) -> const Collection& {
      return *std::find_if(collections_.begin(), collections_.end(),
                           [&](const Collection& c) { return c.name == name; });
    };
    ReconcileHooks hooks;
    hooks.watermark = [this](const std::string& key) { return watermark(key); };
    hooks.all_watermarks = [this] { return sink_.watermarks(name_); };
    hooks.commit = [this](store::AppendBatch b) { return commit(std::move(b)); };
    hooks.list_ids = [&](const std::string& name, std::set<std::string>& ids) {
      return completeIds(byName(name), ids);
    };
    hooks.deletion_record = [&](const std::string& name, const std::string& id, int64_t now) {
      return deletionRecord(byName(name), id, "", formatLocalTime(now, 0, "%Y-%m-%dT%H:%M:%SZ"));
    };
    return reconcileIfDue(name_, names, reconcile_ms_, clock_->nowMs(), hooks, logger_);
  }

  Status syncCollection(const Collection& c) {
    const std::string wm_key = "since:" + c.name;
    const std::string cursor_key = "cursor:" + c.name;
    auto wm = watermark(wm_key);
    if (!wm) {
      return wm.error();
    }
    auto cur = watermark(cursor_key);
    if (!cur) {
      return cur.error();
    }
    Cursor cursor;
    if (cur->has_value()) {
      cursor = Cursor::decode(**cur);
    }
    auto n = listAll(c, c.path, sinceParams(c, *wm), cursor_key, cursor,
                     [&](store::AppendBatch& b, const Cursor* done) {
                       if (!done->run_wm.empty()) {
                         b.watermarks.push_back({name_, wm_key, done->run_wm});
                       }
                       b.watermarks.push_back({name_, cursor_key, std::nullopt});
                     });
    if (!n) {
      return n.error();
    }
    logger_.write(*n > 0 ? log::Level::info : log::Level::debug, "sync_done",
                  {{"collection", c.name}, {"records", *n}});
    return {};
  }

  Status syncFanout(const Collection& c) {
    const std::string wm_key = "since:" + c.name;
    auto wm = watermark(wm_key);
    if (!wm) {
      return wm.error();
    }
    auto ids = fanoutIds(c.per);
    if (!ids) {
      return ids.error();
    }
    std::string run_wm;
    uint64_t records = 0;
    for (const auto& id : *ids) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      Cursor first;
      auto n = listAll(c, replaceAll(c.path, "{id}", percentEncode(id)), sinceParams(c, *wm), "",
                       first, [&](store::AppendBatch&, const Cursor* done) {
                         if (run_wm.empty()) {
                           run_wm = done->run_wm;
                         }
                       });
      if (!n && n.error().is(Errc::not_found)) {
        addCount("parents_gone");  // deleted since the parent list: nothing left to read
        continue;
      }
      if (!n) {
        return n.error();
      }
      records += *n;
    }
    // The next run starts where the PARENT list started: a parent created after that list but
    // before our first chart call has chart records older than that call, and its chart is
    // read (from this watermark) only next run.
    if (const std::string& listed_at = fanout_wm_[c.per]; !listed_at.empty()) {
      run_wm = listed_at;
    }
    if (run_wm.empty()) {
      run_wm = serverWatermark();
    }
    if (!run_wm.empty()) {
      PSA_TRY(commitWatermarks({{name_, wm_key, run_wm}}));
    }
    logger_.info("sync_done", {{"collection", c.name}, {"parents", static_cast<uint64_t>(ids->size())},
                               {"records", records}});
    return {};
  }

  // ---- athenahealth changed feeds ---------------------------------------------------------

  Status runAthena() {
    auto initial = watermark("athena:initial");
    if (!initial) {
      return initial.error();
    }
    if (!initial->has_value()) {
      PSA_TRY(athenaInitial());
    } else {
      for (const auto& c : collections_) {
        if (c.feed.empty()) {
          continue;
        }
        auto st = athenaDrain(c);
        if (!st) {
          return Error(st.error().code, st.error().message + "; the feed keeps what was not applied");
        }
      }
    }
    // Departments have no feed: re-list them every run.
    for (const auto& c : collections_) {
      if (c.feed.empty() && c.per.empty() && initial->has_value()) {
        PSA_TRY(syncPlain(c, "list:" + c.name));
      }
    }
    return {};
  }

  Status athenaSubscribe(const Collection& c) {
    const std::string key = "athena:subscribed:" + c.feed;
    auto done = watermark(key);
    if (!done) {
      return done.error();
    }
    if (done->has_value()) {
      return {};
    }
    ApiClient::Call call;
    call.what = "subscribe " + c.feed;
    const std::string url = base_ + "/" + c.feed + "/changed/subscription";
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
      return r;
    };
    auto resp = clients_.api->call(call);
    if (!resp) {
      return resp.error();
    }
    return commitWatermarks({{name_, key, "1"}});
  }

  // A complete list of a collection with a resumable cursor; `done_key` marks it complete.
  Status syncPlain(const Collection& c, const std::string& done_key) {
    const std::string cursor_key = "cursor:" + c.name;
    auto cur = watermark(cursor_key);
    if (!cur) {
      return cur.error();
    }
    Cursor cursor;
    if (cur->has_value()) {
      cursor = Cursor::decode(**cur);
    }
    auto n = listAll(c, c.path, c.params, cursor_key, cursor,
                     [&](store::AppendBatch& b, const Cursor*) {
                       b.watermarks.push_back({name_, cursor_key, std::nullopt});
                       if (!done_key.empty()) {
                         b.watermarks.push_back({name_, done_key, "1"});
                       }
                     });
    if (!n) {
      return n.error();
    }
    logger_.write(*n > 0 ? log::Level::info : log::Level::debug, "sync_done",
                  {{"collection", c.name}, {"records", *n}});
    return {};
  }

  Status athenaInitial() {
    // Subscribe first: changes made while we list are queued in the feeds.
    for (const auto& c : collections_) {
      if (!c.feed.empty()) {
        PSA_TRY(athenaSubscribe(c));
      }
    }
    for (const auto& c : collections_) {
      if (!c.per.empty()) {
        continue;
      }
      const std::string done_key = "athena:listed:" + c.name;
      auto done = watermark(done_key);
      if (!done) {
        return done.error();
      }
      if (done->has_value()) {
        continue;
      }
      if (c.feed.empty()) {
        PSA_TRY(syncPlain(c, done_key));
        continue;
      }
      auto cursor = watermark("cursor:" + c.name);
      if (!cursor) {
        return cursor.error();
      }
      if (cursor->has_value()) {
        // Resumed after a restart: deletions while we were down shifted the rest of the list
        // and the feed peek cannot tell when they happened. Finish, then list once more whole.
        PSA_TRY(syncPlain(c, ""));
      }
      PSA_TRY(athenaStableListing(c, [&] { return syncPlain(c, ""); }));
      PSA_TRY(commitWatermarks({{name_, done_key, "1"}}));
    }
    for (const auto& c : collections_) {
      if (c.per.empty()) {
        continue;
      }
      const std::string done_key = "athena:listed:" + c.name;
      auto done = watermark(done_key);
      if (!done) {
        return done.error();
      }
      if (done->has_value()) {
        continue;
      }
      std::set<std::string> parents;
      const Collection* parent = nullptr;
      for (const auto& pc : collections_) {
        parent = pc.name == c.per ? &pc : parent;
      }
      auto list_parents = [&]() -> Status {
        fanout_cache_.erase(c.per);
        auto ids = fanoutIds(c.per);
        if (!ids) {
          return ids.error();
        }
        parents.insert(ids->begin(), ids->end());
        return {};
      };
      if (parent != nullptr && !parent->feed.empty()) {
        PSA_TRY(athenaStableListing(*parent, list_parents));
      } else {
        PSA_TRY(list_parents());
      }
      const std::vector<std::string> ids(parents.begin(), parents.end());
      for (const auto& id : ids) {
        auto n = listAll(c, replaceAll(c.path, "{id}", percentEncode(id)), c.params, "", Cursor{},
                         [](store::AppendBatch&, const Cursor*) {});
        if (!n && n.error().is(Errc::not_found)) {
          addCount("parents_gone");
          continue;
        }
        if (!n) {
          return n.error();
        }
      }
      PSA_TRY(commitWatermarks({{name_, done_key, "1"}}));
      logger_.info("sync_done", {{"collection", c.name}, {"parents", static_cast<uint64_t>(ids.size())}});
    }
    std::vector<store::WatermarkUpdate> w = {{name_, "athena:initial", "1"}};
    for (const auto& c : collections_) {
      w.push_back({name_, "athena:listed:" + c.name, std::nullopt});
    }
    return commitWatermarks(std::move(w));
  }

  // athena lists page by offset over live data: a record deleted behind the cursor shifts the
  // next one past it, and an unchanged record never reaches the changed feed, so a skip during
  // the initial list would be permanent. Deletions made during a listing show up as tombstones
  // in the (already subscribed) feed: peek at it (leaveunprocessed) before and after, and list
  // again while new ones appeared. A repeat adds nothing (identities de-duplicate).
  Status athenaStableListing(const Collection& c, const std::function<Status()>& list) {
    auto before = athenaPeekTombstones(c);
    if (!before) {
      return before.error();
    }
    for (int attempt = 1;; ++attempt) {
      PSA_TRY(list());
      auto after = athenaPeekTombstones(c);
      if (!after) {
        return after.error();
      }
      const bool stable = std::includes(before->begin(), before->end(), after->begin(), after->end());
      if (stable) {
        return {};
      }
      if (attempt >= 5) {
        logger_.warn("listing_unstable", {{"collection", c.name}, {"attempts", static_cast<int64_t>(attempt)}});
        return {};
      }
      logger_.info("relist_after_deletions", {{"collection", c.name},
                                               {"deletions", static_cast<uint64_t>(after->size() - before->size())}});
      before = std::move(after);
    }
  }

  Result<std::set<std::string>> athenaPeekTombstones(const Collection& c) {
    VendorPageSpec spec = specFor(c, true);
    std::set<std::string> out;
    // Our own offsets (never the server's `next`): every request must carry leaveunprocessed,
    // or it would consume the queue.
    for (size_t offset = 0;;) {
      const std::string url = withQuery(base_ + "/" + c.feed + "/changed",
                                        {{"leaveunprocessed", "true"},
                                         {"limit", std::to_string(page_size_)},
                                         {"offset", std::to_string(offset)}});
      auto page = std::make_shared<VendorPage>();
      auto resp = getList(url, "peek " + c.feed, spec, page);
      if (!resp) {
        return std::move(resp).error();
      }
      for (const auto& item : page->items) {
        if (item.tombstone) {
          out.insert(item.id);
        }
      }
      if (page->next.empty() || page->items.empty() || stop_->stopped()) {
        return out;
      }
      offset += page->items.size();
    }
  }

  // Drains one consume-on-read feed. Before every consuming read the last good server time is
  // committed as "inflight"; a read whose answer is lost (or a crash before its page is
  // committed) leaves it set, and the records it consumed are replayed from that time.
  Status athenaDrain(const Collection& c) {
    PSA_TRY(athenaSubscribe(c));
    const std::string inflight_key = "athena:inflight:" + c.feed;
    auto pending = watermark(inflight_key);
    if (!pending) {
      return pending.error();
    }
    if (pending->has_value()) {
      PSA_TRY(athenaReplay(c, **pending));
      PSA_TRY(commitWatermarks({{name_, inflight_key, std::nullopt}}));
    }
    const VendorPageSpec spec = specFor(c, true);
    const std::string url = withQuery(base_ + "/" + c.feed + "/changed",
                                      {{"limit", std::to_string(page_size_)}});
    uint64_t records = 0;
    for (;;) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      int64_t last_good = clients_.api->lastServerDateMs();
      if (last_good <= 0) {
        last_good = clock_->nowMs();  // no answer seen yet this process: replay covers it
      }
      const std::string replay_from =
          formatLocalTime(last_good - 2000 - overlap_s_ * 1000, offset_min_, "%m/%d/%Y %H:%M:%S");
      PSA_TRY(commitWatermarks({{name_, inflight_key, replay_from}}));
      int attempts = 0;
      auto page = std::make_shared<VendorPage>();
      ApiClient::Call call;
      call.what = "changed " + c.feed;
      call.before_attempt = [&attempts] { ++attempts; };
      call.build = [url]() -> Result<HttpRequest> {
        HttpRequest r;
        r.url = url;
        return r;
      };
      call.validate = [page, spec](const HttpResponse& r) -> Status {
        auto p = parseVendorPage(r.body, spec);
        if (!p) {
          return p.error();
        }
        *page = std::move(p).value();
        return {};
      };
      auto resp = clients_.api->call(call);
      if (!resp) {
        return resp.error();  // inflight stays: the next run replays
      }
      store::AppendBatch batch;
      for (const auto& item : page->items) {
        batch.records.push_back(recordFor(c, resp->body, item));
      }
      records += page->items.size();
      const bool lost = attempts > 1;  // an earlier attempt may have consumed records
      if (!lost) {
        batch.watermarks.push_back({name_, inflight_key, std::nullopt});
      }
      auto committed = commit(std::move(batch));
      if (!committed) {
        return std::move(committed).error();
      }
      if (lost) {
        logger_.warn("lost_consuming_read", {{"feed", c.feed}, {"replay_from", replay_from}});
        PSA_TRY(athenaReplay(c, replay_from));
        PSA_TRY(commitWatermarks({{name_, inflight_key, std::nullopt}}));
      }
      if (static_cast<int64_t>(page->items.size()) < page_size_) {
        break;
      }
    }
    logger_.write(records > 0 ? log::Level::info : log::Level::debug, "sync_done",
                  {{"collection", c.name}, {"feed", c.feed}, {"records", records}});
    return {};
  }

  Status athenaReplay(const Collection& c, const std::string& start_local) {
    Collection feed = c;
    feed.items_key = c.feed_items;
    Params p = {{"showprocessedstartdatetime", start_local}};
    auto n = listAll(feed, "/" + c.feed + "/changed", p, "", Cursor{},
                     [](store::AppendBatch&, const Cursor*) {});
    if (!n) {
      return n.error();
    }
    logger_.info("replayed", {{"feed", c.feed}, {"records", *n}});
    return {};
  }

  // ---- Kareo SOAP -------------------------------------------------------------------------

  Result<std::shared_ptr<KareoAnswer>> kareoCall(const Collection& c, const std::string& op,
                                                 const std::vector<std::pair<std::string, std::string>>& filter,
                                                 std::string& body_out) {
    const KareoCredentials* creds = kareoCredentials(*clients_.auth);
    auto answer = std::make_shared<KareoAnswer>();
    const std::string list = c.name;
    const std::string item = c.item;
    ApiClient::Call call;
    call.what = op;
    const std::string url = base_;
    const std::string envelope = kareoEnvelope(op, creds->customer_key, creds->user,
                                               creds->password, creds->client_version, filter);
    call.build = [url, envelope, op]() -> Result<HttpRequest> {
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "text/xml; charset=utf-8"},
                   {"SOAPAction", "\"" + std::string(kKareoNs) + "KareoServices/" + op + "\""}};
      r.body = envelope;
      return r;
    };
    call.validate = [answer, op, list, item](const HttpResponse& r) -> Status {
      auto a = parseKareoAnswer(r.body, op, list, item);
      if (!a) {
        return a.error();
      }
      *answer = std::move(a).value();
      return {};
    };
    call.inband = [op, list, item](const HttpResponse& r) -> std::optional<Verdict> {
      auto a = parseKareoAnswer(r.body, op, list, item);
      if (!a) {
        return std::nullopt;  // validate() reports it
      }
      if (a->is_error) {
        std::string low = a->error_message;
        std::transform(low.begin(), low.end(), low.begin(), ::tolower);
        if (low.find("throttl") != std::string::npos) {
          return Verdict{Verdict::Kind::throttled, "throttled: " + a->error_message};
        }
        return Verdict{Verdict::Kind::fail, "ErrorResponse: " + a->error_message};
      }
      if (!a->security_ok) {
        return Verdict{Verdict::Kind::fail, "SecurityResponse: " + a->security_result +
                                                " - check auth.customer_key, username and password"};
      }
      return std::nullopt;
    };
    auto resp = clients_.api->call(call);
    if (!resp) {
      if (resp.error().is(Errc::invalid_input) &&
          resp.error().message.find("SecurityResponse") != std::string::npos) {
        return Error(Errc::unauthorized, resp.error().message);
      }
      return std::move(resp).error();
    }
    body_out = std::move(resp->body);
    return answer;
  }

  Status runKareo() {
    for (const auto& c : collections_) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      const std::string wm_key = "since:" + c.name;
      auto wm = watermark(wm_key);
      if (!wm) {
        return wm.error();
      }
      auto st = (!wm->has_value() && !c.all_op.empty()) ? kareoBatches(c) : kareoList(c, *wm);
      if (!st) {
        return Error(st.error().code, st.error().message + "; " + c.name + " watermark unchanged");
      }
    }
    return maybeReconcile();
  }

  // The initial load of patients: GetAllPatients batches, StartKey -> Key.
  Status kareoBatches(const Collection& c) {
    const std::string wm_key = "since:" + c.name;
    const std::string cursor_key = "cursor:" + c.name;
    auto cur = watermark(cursor_key);
    if (!cur) {
      return cur.error();
    }
    Cursor cursor;
    if (cur->has_value()) {
      cursor = Cursor::decode(**cur);
    }
    uint64_t records = 0;
    for (;;) {
      std::vector<std::pair<std::string, std::string>> filter = {
          {"BatchSize", std::to_string(std::min<int64_t>(page_size_, 1000))}};
      if (!cursor.url.empty()) {
        filter.emplace_back("StartKey", cursor.url);
      }
      std::string body;
      auto a = kareoCall(c, c.all_op, filter, body);
      if (!a) {
        return a.error();
      }
      if (cursor.run_wm.empty()) {
        cursor.run_wm = serverWatermark();
      }
      store::AppendBatch batch;
      for (const auto& item : (*a)->items) {
        batch.records.push_back(recordFor(c, body, item));
        noteKnown(batch, c, item);
      }
      records += (*a)->items.size();
      if ((*a)->next_key.has_value()) {
        cursor.url = *(*a)->next_key;
        batch.watermarks.push_back({name_, cursor_key, cursor.encode()});
      } else {
        batch.watermarks.push_back({name_, cursor_key, std::nullopt});
        if (!cursor.run_wm.empty()) {
          batch.watermarks.push_back({name_, wm_key, cursor.run_wm});
        }
      }
      auto committed = commit(std::move(batch));
      if (!committed) {
        return std::move(committed).error();
      }
      logger_.debug("page_committed", {{"collection", c.name}, {"entries", static_cast<uint64_t>((*a)->items.size())}});
      if (!(*a)->next_key.has_value()) {
        break;
      }
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
    }
    logger_.info("sync_done", {{"collection", c.name}, {"records", records}});
    return {};
  }

  Status kareoList(const Collection& c, const std::optional<std::string>& wm) {
    std::vector<std::pair<std::string, std::string>> filter;
    if (wm.has_value()) {
      filter.emplace_back("FromLastModifiedDate", *wm);
    }
    std::string body;
    auto a = kareoCall(c, c.op, filter, body);
    if (!a) {
      return a.error();
    }
    const std::string run_wm = serverWatermark();
    store::AppendBatch batch;
    for (const auto& item : (*a)->items) {
      batch.records.push_back(recordFor(c, body, item));
      noteKnown(batch, c, item);
    }
    if (!run_wm.empty()) {
      batch.watermarks.push_back({name_, "since:" + c.name, run_wm});
    }
    const size_t n = batch.records.size();
    auto committed = commit(std::move(batch));
    if (!committed) {
      return std::move(committed).error();
    }
    logger_.write(n > 0 ? log::Level::info : log::Level::debug, "sync_done",
                  {{"collection", c.name}, {"records", static_cast<uint64_t>(n)}});
    return {};
  }

  // ---- Allscripts Unity -------------------------------------------------------------------

  Result<std::pair<std::string, UnityAnswer>> magic(const std::string& action,
                                                    const std::string& patient,
                                                    const Params& params,
                                                    const VendorPageSpec& spec) {
    const std::string url = base_ + "/MagicJson";
    const std::string app_user = config_.find("auth") ? config_.find("auth")->getString("app_user") : "";
    AuthStrategy* auth = clients_.auth.get();
    ApiClient::Call call;
    call.what = action;
    call.build = [=]() -> Result<HttpRequest> {
      auto token = unityToken(*auth);
      if (!token) {
        return std::move(token).error();
      }
      json::Value body = json::Value::object();
      static const char* kKeys[] = {"Action", "AppUserID", "Appname", "PatientID", "Token",
                                    "Parameter1", "Parameter2", "Parameter3", "Parameter4",
                                    "Parameter5", "Parameter6", "Data"};
      for (const char* k : kKeys) {
        body.set(k, json::Value::string(""));
      }
      body.set("Action", json::Value::string(action));
      body.set("AppUserID", json::Value::string(app_user));
      body.set("Appname", json::Value::string(unityAppname(*auth)));
      body.set("PatientID", json::Value::string(patient));
      body.set("Token", json::Value::string(*token));
      for (const auto& [k, v] : params) {
        body.set(k, json::Value::string(v));
      }
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
      r.body = json::serialize(body);
      return r;
    };
    auto answer = std::make_shared<UnityAnswer>();
    call.validate = [answer, action, spec](const HttpResponse& r) -> Status {
      auto a = parseUnityAnswer(r.body, action, spec);
      if (!a) {
        return a.error();
      }
      *answer = std::move(a).value();
      return {};
    };
    call.inband = [action, spec](const HttpResponse& r) -> std::optional<Verdict> {
      auto a = parseUnityAnswer(r.body, action, spec);
      if (!a || !a->error) {
        return std::nullopt;
      }
      std::string low = a->message;
      std::transform(low.begin(), low.end(), low.begin(), ::tolower);
      if (low.find("token") != std::string::npos || low.find("inactivity") != std::string::npos) {
        return Verdict{Verdict::Kind::auth_expired, a->message};
      }
      if (low.find("too many requests") != std::string::npos) {
        return Verdict{Verdict::Kind::throttled, a->message};
      }
      return Verdict{Verdict::Kind::fail, a->message};
    };
    auto resp = clients_.api->call(call);
    if (!resp) {
      return std::move(resp).error();
    }
    return std::make_pair(std::move(resp->body), std::move(*answer));
  }

  // Unity never signals deletions: a patient's lists are complete, so what is no longer in them
  // is gone. The ids last held per patient ("unity:held:<id>", and "unity:held:" for the global
  // lists) are committed in the same transaction as that patient's records, so each vanished
  // record gets exactly one deletion record (a crash before the commit re-derives the same).
  using HeldIds = std::map<std::string, std::set<std::string>>;

  static HeldIds decodeHeld(const std::optional<std::string>& text) {
    HeldIds out;
    if (!text.has_value()) {
      return out;
    }
    auto doc = json::parse(*text);
    if (!doc || !doc->isObject()) {
      return out;
    }
    for (const auto& [coll, ids] : doc->members()) {
      if (ids.isArray()) {
        for (const auto& id : ids.items()) {
          out[coll].insert(id.asString());
        }
      }
    }
    return out;
  }

  static std::optional<std::string> encodeHeld(const HeldIds& held) {
    json::Value doc = json::Value::object();
    bool any = false;
    for (const auto& [coll, ids] : held) {
      json::Value list = json::Value::array();
      for (const auto& id : ids) {
        list.push(json::Value::string(id));
        any = true;
      }
      if (!ids.empty()) {
        doc.set(coll, std::move(list));
      }
    }
    return any ? std::optional<std::string>(json::serialize(doc)) : std::nullopt;
  }

  // An agent-made deletion record (the vendor sends none): always `vendor+json` (also for
  // SOAP vendors) {"psa_deleted": {"collection", "id", "patient"?, "absent_since"}}, with the
  // collection's kind.
  store::Record deletionRecord(const Collection& c, const std::string& id, const std::string& patient,
                               const std::string& server_time) {
    json::Value d = json::Value::object();
    d.set("collection", json::Value::string(c.name));
    d.set("id", json::Value::string(id));
    if (!patient.empty()) {
      d.set("patient", json::Value::string(patient));
    }
    d.set("absent_since", json::Value::string(server_time));
    json::Value doc = json::Value::object();
    doc.set("psa_deleted", std::move(d));
    addCount("deletions");
    return makeRecord(c.kind, "vendor+json", json::serialize(doc),
                      c.name + "/" + id + "#deleted@" + server_time);
  }

  void addDeletions(store::AppendBatch& batch, const HeldIds& before, const HeldIds& now,
                    const std::string& patient, const std::string& server_time) {
    for (const auto& c : collections_) {
      auto b = before.find(c.name);
      if (b == before.end()) {
        continue;
      }
      auto n = now.find(c.name);
      for (const auto& id : b->second) {
        if (n == now.end() || n->second.count(id) == 0) {
          batch.records.push_back(deletionRecord(c, id, patient, server_time));
        }
      }
    }
  }

  Status runUnity() {
    VendorPageSpec info_spec;
    info_spec.id_field = "ServerTime";
    auto info = magic("GetServerInfo", "", {}, info_spec);
    if (!info) {
      return info.error();
    }
    if (info->second.rows.items.empty()) {
      return Error(Errc::invalid_input, "GetServerInfo returned no row");
    }
    const std::string server_time = info->second.rows.items[0].id;
    auto since = watermark("since:patients");
    if (!since) {
      return since.error();
    }
    VendorPageSpec changed_spec;
    changed_spec.id_field = "patientid";
    auto changed = magic("GetChangedPatients", "",
                         {{"Parameter1", since->value_or("1/1/1900")}}, changed_spec);
    if (!changed) {
      return changed.error();
    }
    uint64_t records = 0;
    for (const auto& p : changed->second.rows.items) {
      if (stop_->stopped()) {
        return Error(Errc::closed, "stopped");
      }
      const std::string held_key = "unity:held:" + p.id;
      auto held = watermark(held_key);
      if (!held) {
        return held.error();
      }
      HeldIds now;
      store::AppendBatch batch;
      for (const auto& c : collections_) {
        if (c.global) {
          continue;
        }
        auto rows = magic(c.action, p.id, c.params, specFor(c));
        if (!rows) {
          return Error(rows.error().code, rows.error().message + "; since unchanged");
        }
        for (const auto& item : rows->second.rows.items) {
          batch.records.push_back(recordFor(c, rows->first, item));
          now[c.name].insert(item.id);
        }
        if (c.name == "patients" && rows->second.rows.items.empty()) {
          now.clear();  // deleted patient: its whole chart is gone
          break;
        }
      }
      addDeletions(batch, decodeHeld(*held), now, p.id, server_time);
      records += batch.records.size();
      batch.watermarks.push_back({name_, held_key, encodeHeld(now)});
      auto committed = commit(std::move(batch));
      if (!committed) {
        return std::move(committed).error();
      }
    }
    auto held = watermark("unity:held:");
    if (!held) {
      return held.error();
    }
    HeldIds now;
    store::AppendBatch global;
    for (const auto& c : collections_) {
      if (!c.global) {
        continue;
      }
      auto rows = magic(c.action, "", c.params, specFor(c));
      if (!rows) {
        return rows.error();
      }
      for (const auto& item : rows->second.rows.items) {
        global.records.push_back(recordFor(c, rows->first, item));
        now[c.name].insert(item.id);
      }
    }
    addDeletions(global, decodeHeld(*held), now, "", server_time);
    records += global.records.size();
    global.watermarks.push_back({name_, "unity:held:", encodeHeld(now)});
    global.watermarks.push_back({name_, "since:patients", server_time});
    auto committed = commit(std::move(global));
    if (!committed) {
      return std::move(committed).error();
    }
    logger_.info("sync_done", {{"changed_patients", static_cast<uint64_t>(changed->second.rows.items.size())},
                               {"records", records}});
    return {};
  }

  // Unity: retire the session token when the adapter stops (pms-interfaces.md §3). The data
  // transport is cancelled by now, so this uses a fresh one with a short timeout, one attempt,
  // and the token limiter (never blocking past a few seconds).
  void shutdown() override {
    if (strategy_ != "unity-changed" || !clients_.auth) {
      return;
    }
    const std::string token = unityCachedToken(*clients_.auth);
    if (token.empty()) {
      return;
    }
    TransportOptions opts = clients_.transport_options;
    opts.timeout = std::chrono::seconds(5);
    auto transport = makeHttpTransport(opts);
    if (!transport) {
      return;
    }
    auto stop = std::make_shared<StopSignal>();
    RetryPolicy once;
    once.max_attempts = 1;
    once.max_throttled = 0;
    ApiClient client(*transport, clients_.token_limiter, once, clock_, stop, logger_);
    std::thread guard([stop] {
      guardInvariant("rest_poll.retire_guard", [&] {
        if (stop->sleepFor(std::chrono::seconds(8))) {
          stop->stop();
        }
      });
    });
    ApiClient::Call call;
    call.what = "RetireSecurityToken";
    call.authenticate = false;
    const std::string url = base_ + "/RetireSecurityToken";
    const std::string app = unityAppname(*clients_.auth);
    call.build = [url, token, app]() -> Result<HttpRequest> {
      json::Value body = json::Value::object();
      body.set("Token", json::Value::string(token));
      body.set("Appname", json::Value::string(app));
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "application/json"}};
      r.body = json::serialize(body);
      return r;
    };
    auto resp = client.call(call);
    stop->stop();
    guard.join();
    const bool retired = resp && resp->body.find("error:") == std::string::npos;
    logger_.write(retired ? log::Level::info : log::Level::warn, "token_retired",
                  {{"ok", retired ? "yes" : "no"}});
  }

  json::Value config_;
  json::Value profile_;
  json::Value paging_;
  std::string base_;
  std::string strategy_;
  std::string format_;
  std::string time_format_;
  int offset_min_ = 0;
  int64_t overlap_s_ = 2;
  bool reconcile_ = false;     // the vendor never signals deletions: complete re-lists find them
  int64_t reconcile_ms_ = 86400000;
  int64_t page_size_ = 100;
  std::string since_param_;
  std::string since_template_;
  std::string since_initial_;
  Headers headers_;
  std::vector<std::string> tombstones_;
  std::vector<Collection> collections_;
  std::map<std::string, std::vector<std::string>> fanout_cache_;
  std::map<std::string, std::string> fanout_wm_;  // server watermark at the start of the parent list
  ClientSet clients_;
  mutable std::mutex count_mu_;
  std::map<std::string, uint64_t> per_collection_;
};

Result<json::Value> loadProfile(const json::Value& cfg, const std::filesystem::path& state_dir) {
  if (const std::string file = cfg.getString("profile_file"); !file.empty()) {
    auto text = readStateFile(resolvePath(state_dir, file));
    if (!text) {
      return Error(text.error().code, "profile_file: " + text.error().message);
    }
    if (!text->has_value()) {
      return Error(Errc::not_found, "profile_file " + file + " does not exist");
    }
    auto doc = json::parse(**text);
    if (!doc || !doc->isObject()) {
      return Error(Errc::invalid_input, "profile_file " + file + ": not a JSON object" +
                                            (doc ? "" : " (" + doc.error().message + ")"));
    }
    return std::move(doc).value();
  }
  const std::string name = cfg.getString("profile", cfg.getString("vendor"));
  const json::Value* p = restProfile(name);
  if (p == nullptr) {
    std::string known;
    for (const auto& n : restProfileNames()) {
      known += (known.empty() ? "" : ", ") + n;
    }
    return Error(Errc::invalid_argument, "no rest-poll profile \"" + name + "\" (known: " + known + ")");
  }
  return *p;
}

}  // namespace

Result<SourcePtr> makeRestPollSource(const json::Value& config, SourceContext& ctx) {
  auto profile = loadProfile(config, ctx.state_dir);
  if (!profile) {
    return std::move(profile).error();
  }
  return SourcePtr(std::make_shared<RestPollSource>(config, std::move(profile).value(), ctx));
}

std::vector<CheckResult> checkRestPoll(const json::Value& config,
                                       const std::filesystem::path& state_dir) {
  const std::string label = "adapter " + config.getString("name");
  std::vector<CheckResult> out;
  auto profile = loadProfile(config, state_dir);
  if (!profile) {
    out.push_back({CheckResult::Level::fail, label + " profile", profile.error().message});
    return out;
  }
  const std::string strategy = profile->getString("strategy");
  ClientParams p;
  p.adapter = config.getString("name");
  p.vendor = config.getString("vendor");
  p.api_base = trimSlash(config.getString("base_url"));
  p.token_url_fallback = strategy == "unity-changed" ? p.api_base + "/GetToken" : std::string();
  p.state_dir = state_dir;
  p.clock = Clock::system();
  p.stop = std::make_shared<StopSignal>();
  p.retry.max_attempts = 2;
  p.retry.max_throttled = 2;
  json::Value cfg = config;
  if (!cfg.find("timeout_s")) {
    cfg.set("timeout_s", json::Value::integer(10));
  }
  auto set = buildClients(cfg, p);
  if (!set) {
    out.push_back({CheckResult::Level::fail, label + " config", set.error().message});
    return out;
  }
  out.push_back({CheckResult::Level::ok, label + " profile",
                 "profile " + config.getString("profile", config.getString("vendor")) + " (" +
                     strategy + ")"});
  const json::Value* auth = config.find("auth");
  const std::string type = auth != nullptr ? auth->getString("type", "none") : "none";
  if (type == "oauth2-refresh") {
    out.push_back({CheckResult::Level::warn, label + " auth",
                   "refresh token not exercised (it rotates on use; the running agent uses it)"});
  } else if (type == "kareo" || type == "none") {
    out.push_back({CheckResult::Level::ok, label + " auth", set->auth->describe()});
  } else {
    HttpRequest probe;
    if (auto st = set->auth->apply(probe); !st) {
      out.push_back({CheckResult::Level::fail, label + " auth", st.error().message});
    } else {
      out.push_back({CheckResult::Level::ok, label + " auth", "token issued (" + set->auth->describe() + ")"});
    }
  }
  return out;
}

}  // namespace psa::adapters::api
