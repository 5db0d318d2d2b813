#include "rest_sync.h"

#include <algorithm>
#include <utility>

#include "psa/store/digest.h"
#include "reconcile.h"

namespace psa::adapters::api {

std::string replaceAll(std::string s, std::string_view what, std::string_view with) {
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size())) {
    s.replace(pos, what.size(), with);
  }
  return s;
}

Params paramsOf(const json::Value* obj) {
  Params out;
  if (obj != nullptr && obj->isObject()) {
    for (const auto& [k, v] : obj->members()) {
      out.emplace_back(k, v.isString() ? v.asString() : json::serialize(v));
    }
  }
  return out;
}

std::string Cursor::encode() const {
  json::Value v = json::Value::object();
  v.set("url", json::Value::string(url));
  v.set("offset", json::Value::integer(offset));
  v.set("run_wm", json::Value::string(run_wm));
  return json::serialize(v);
}

Cursor Cursor::decode(const std::string& s) {
  Cursor c;
  if (auto d = json::parse(s); d && d->isObject()) {
    c.url = d->getString("url");
    c.offset = d->getInt("offset");
    c.run_wm = d->getString("run_wm");
  }
  return c;
}

RestSettings RestSettings::parse(const json::Value& cfg, const json::Value& profile) {
  RestSettings s;
  s.name = cfg.getString("name");
  s.base = trimSlash(cfg.getString("base_url"));
  s.strategy = profile.getString("strategy");
  s.format = profile.getString("format", "vendor+json");
  s.time_format = profile.getString("time_format", "%Y-%m-%dT%H:%M:%S");
  s.offset_min =
      parseUtcOffset(cfg.getString("utc_offset", profile.getString("utc_offset", "+00:00")))
          .value_or(0);
  s.overlap_s = cfg.getInt("overlap_s", 2);
  s.reconcile = profile.getString("deletions") == "reconcile";
  s.reconcile_ms = cfg.getInt("reconcile_s", 86400) * 1000;
  if (const json::Value* paging = profile.find("paging"); paging != nullptr) {
    s.paging = *paging;
  }
  s.page_size = cfg.getInt("page_size", s.paging.getInt("page_size", 100));
  if (const json::Value* since = profile.find("since"); since != nullptr) {
    s.since_param = since->getString("param");
    s.since_template = since->getString("template", "{}");
    s.since_initial = since->getString("initial");
  }
  if (const json::Value* h = profile.find("headers"); h != nullptr && h->isObject()) {
    for (const auto& [k, v] : h->members()) {
      s.headers.emplace_back(k, v.asString());
    }
  }
  if (const json::Value* t = profile.find("tombstones"); t != nullptr && t->isArray()) {
    for (const auto& f : t->items()) {
      s.tombstones.push_back(f.asString());
    }
  }
  if (const json::Value* auth = cfg.find("auth"); auth != nullptr) {
    s.app_user = auth->getString("app_user");
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
  if (const json::Value* list = profile.find("collections"); list != nullptr && list->isArray()) {
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
      s.collections.push_back(std::move(col));
    }
  }
  s.profile = profile;
  return s;
}

RestSync::RestSync(RestSettings settings, SyncHost& host, const ClientSet& clients,
                   StopSignal& stop, ClockPtr clock, log::Logger logger)
    : s_(std::move(settings)),
      host_(host),
      clients_(clients),
      stop_(stop),
      clock_(std::move(clock)),
      logger_(std::move(logger)) {}

void RestSync::beginRun() {
  fanout_cache_.clear();
  fanout_wm_.clear();
}

Status RestSync::commitWatermarks(std::vector<store::WatermarkUpdate> w) {
  store::AppendBatch b;
  b.watermarks = std::move(w);
  auto r = commit(std::move(b));
  if (!r) {
    return std::move(r).error();
  }
  return {};
}

Result<Cursor> RestSync::savedCursor(const std::string& key) {
  auto saved = watermark(key);
  if (!saved) {
    return std::move(saved).error();
  }
  return saved->has_value() ? Cursor::decode(**saved) : Cursor{};
}

store::Record RestSync::recordFor(const Collection& c, std::string_view text,
                                  const VendorItem& item) {
  host_.countCollection(c.name);
  if (item.tombstone) {
    addCount("deletions");
  }
  std::string payload(text.substr(item.offset, item.length));
  std::string identity = c.name + "/" + item.id + "#" + sha256Hex(payload);
  return host_.makeRecord(c.kind, s_.format, std::move(payload), identity);
}

void RestSync::noteKnown(store::AppendBatch& batch, const Collection& c,
                         const VendorItem& item) const {
  if (s_.reconcile && !item.tombstone) {
    batch.watermarks.push_back({scope(), knownKey(c.name, item.id), "1"});
  }
}

store::Record RestSync::deletionRecord(const Collection& c, const std::string& id,
                                       const std::string& patient, const std::string& server_time) {
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
  return host_.makeRecord(c.kind, "vendor+json", json::serialize(doc),
                          c.name + "/" + id + "#deleted@" + server_time);
}

VendorPageSpec RestSync::specFor(const Collection& c, bool feed) const {
  VendorPageSpec spec;
  const std::string key = feed ? c.feed_items : c.items_key;
  if (!key.empty()) {
    spec.items_keys = {key};
  } else if (const json::Value* items = s_.paging.find("items");
             items != nullptr && items->isArray()) {
    for (const auto& i : items->items()) {
      spec.items_keys.push_back(i.asString());
    }
  }
  spec.id_field = c.id_field;
  spec.ts_field = c.ts_field;
  spec.next_field = s_.paging.getString("next", "next");
  spec.total_field = s_.paging.getString("total");
  spec.tombstone_fields = s_.tombstones;
  return spec;
}

ApiClient::Call RestSync::pageCall(const std::string& url, const std::string& what,
                                   const VendorPageSpec& spec,
                                   const std::shared_ptr<VendorPage>& out, const Headers& headers) {
  ApiClient::Call call;
  call.what = what;
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
  return call;
}

Result<HttpResponse> RestSync::getList(const std::string& url, const std::string& what,
                                       const VendorPageSpec& spec,
                                       const std::shared_ptr<VendorPage>& out) {
  return api().call(pageCall(url, what, spec, out, s_.headers));
}

std::string RestSync::serverWatermark() const {
  const int64_t date = api().lastServerDateMs();
  if (date <= 0) {
    return {};
  }
  return formatLocalTime(date - 1000 - s_.overlap_s * 1000, s_.offset_min, s_.time_format);
}

std::string RestSync::pageUrl(const std::string& path, const Params& extra, int64_t offset,
                              const Collection* keyset, const VendorItem* after) const {
  const json::Value& paging = s_.paging;
  Params q = extra;
  const std::string style = paging.getString("style", "next-url");
  if (style == "keyset" && keyset != nullptr) {
    // OData keyset paging: ordered by the id, each page starts after the last id of the
    // previous one. Unlike $skip, a deletion behind the cursor cannot shift a record past it.
    // A record created or updated behind the cursor while we page has a stamp >= this run's
    // watermark, so the next run reads it. (Not by timestamp: the server compares $filter
    // date-times to the second, so a page boundary inside a second would skip records.)
    const std::string fparam = paging.getString("filter_param", "$filter");
    if (after != nullptr) {
      std::string id = replaceAll(after->id, "'", "''");
      std::string clause = paging.getString("after");
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
    std::string order = paging.getString("order");
    order = replaceAll(order, "{ts_field}", keyset->ts_field);
    order = replaceAll(order, "{id_field}", keyset->id_field);
    q.emplace_back(paging.getString("order_param", "$orderby"), order);
    q.emplace_back(paging.getString("limit_param", "limit"), std::to_string(s_.page_size));
  } else if (style == "offset" || style == "keyset") {
    q.emplace_back(paging.getString("limit_param", "limit"), std::to_string(s_.page_size));
    q.emplace_back(paging.getString("offset_param", "offset"), std::to_string(offset));
  } else if (const std::string p = paging.getString("page_size_param"); !p.empty()) {
    q.emplace_back(p, std::to_string(s_.page_size));
  }
  return withQuery(s_.base + path, q);
}

Result<uint64_t> RestSync::listAll(const Collection& c, const std::string& path,
                                   const Params& params, const std::string& cursor_key,
                                   Cursor cursor, const Finish& finish,
                                   std::vector<std::string>* ids_out) {
  const std::string style = s_.paging.getString("style", "next-url");
  const bool after_ts = s_.paging.getString("after").find("{ts}") != std::string::npos;
  const VendorPageSpec spec = specFor(c);
  if (style == "keyset" && c.ts_field.empty() && after_ts) {
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
      if (static_cast<int64_t>(page->items.size()) >= s_.page_size) {
        const VendorItem& last = page->items.back();
        if (last.ts.empty() && after_ts) {
          return Error(Errc::invalid_input, "list " + c.name + ": record " + last.id + " has no " +
                                                c.ts_field + " to page after");
        }
        next = pageUrl(path, params, 0, &c, &last);
      }
    } else if (style == "offset") {
      if (static_cast<int64_t>(page->items.size()) >= s_.page_size) {
        offset += s_.page_size;
        next = pageUrl(path, params, offset);
      }
    } else if (!page->next.empty()) {
      next = resolveUrl(url, page->next);
    }
    if (!next.empty()) {
      Cursor nc{next, offset, cursor.run_wm};
      if (!cursor_key.empty()) {
        batch.watermarks.push_back({scope(), cursor_key, nc.encode()});
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
    logger_.debug("page_committed", {{"collection", c.name},
                                     {"page", pages + 1},
                                     {"entries", static_cast<uint64_t>(page->items.size())}});
    if (next.empty()) {
      return records;
    }
    if (stop_.stopped()) {
      return Error(Errc::closed, "stopped");
    }
    url = next;
  }
}

Result<std::vector<std::string>> RestSync::fanoutIds(const std::string& parent) {
  if (auto it = fanout_cache_.find(parent); it != fanout_cache_.end()) {
    return it->second;
  }
  const Collection* pc = nullptr;
  for (const auto& c : s_.collections) {
    if (c.name == parent) {
      pc = &c;
    }
  }
  Collection tmp;
  if (pc == nullptr) {
    // The parent is not synced itself: describe it from the profile.
    if (const json::Value* list = s_.profile.find("collections"); list != nullptr) {
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
  auto r = listAll(
      *pc, pc->path, pc->params, "", Cursor{},
      [&](store::AppendBatch&, const Cursor* done) { listed_at = done->run_wm; }, &ids);
  if (!r) {
    return std::move(r).error();
  }
  fanout_cache_[parent] = ids;
  fanout_wm_[parent] = listed_at;
  return ids;
}

std::string RestSync::fanoutWatermark(const std::string& parent) const {
  auto it = fanout_wm_.find(parent);
  return it != fanout_wm_.end() ? it->second : std::string();
}

// Listings are keyset/complete (never $skip), so a live record is never mistaken for gone.
Status RestSync::maybeReconcile(const IdLister& list_ids) {
  if (!s_.reconcile) {
    return {};
  }
  std::vector<std::string> names;
  for (const auto& c : s_.collections) {
    names.push_back(c.name);
  }
  auto byName = [this](const std::string& name) -> const Collection& {
    return *std::find_if(s_.collections.begin(), s_.collections.end(),
                         [&](const Collection& c) { return c.name == name; });
  };
  ReconcileHooks hooks;
  hooks.watermark = [this](const std::string& key) { return watermark(key); };
  hooks.all_watermarks = [this] { return host_.watermarks(); };
  hooks.commit = [this](store::AppendBatch b) { return commit(std::move(b)); };
  hooks.list_ids = [&](const std::string& name, std::set<std::string>& ids) {
    return list_ids(byName(name), ids);
  };
  hooks.deletion_record = [&](const std::string& name, const std::string& id, int64_t now) {
    return deletionRecord(byName(name), id, "", formatLocalTime(now, 0, "%Y-%m-%dT%H:%M:%SZ"));
  };
  return reconcileIfDue(scope(), names, s_.reconcile_ms, clock_->nowMs(), hooks, logger_);
}

}  // namespace psa::adapters::api
