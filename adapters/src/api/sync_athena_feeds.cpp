// athena-feeds (athenahealth): subscribe to every changed feed first, list each collection
// completely once ("athena:initial"), then drain the consume-on-read feeds every pass; a
// consuming read whose answer is lost is replayed from the last good server time.
#include <algorithm>
#include <set>

#include "sync_strategy.h"

namespace psa::adapters::api {
namespace {

class AthenaFeedsStrategy final : public SyncStrategy {
 public:
  explicit AthenaFeedsStrategy(RestSync& sync) : sync_(sync), s_(sync.settings()) {}

  Status runOnce() override {
    auto initial = sync_.watermark("athena:initial");
    if (!initial) {
      return initial.error();
    }
    if (!initial->has_value()) {
      PSA_TRY(initialLoad());
    } else {
      for (const auto& c : s_.collections) {
        if (c.feed.empty()) {
          continue;
        }
        auto st = drain(c);
        if (!st) {
          return Error(st.error().code,
                       st.error().message + "; the feed keeps what was not applied");
        }
      }
    }
    // Departments have no feed: re-list them every run.
    for (const auto& c : s_.collections) {
      if (c.feed.empty() && c.per.empty() && initial->has_value()) {
        PSA_TRY(syncPlain(c, "list:" + c.name));
      }
    }
    return {};
  }

 private:
  Status subscribe(const Collection& c) {
    const std::string key = "athena:subscribed:" + c.feed;
    auto done = sync_.watermark(key);
    if (!done) {
      return done.error();
    }
    if (done->has_value()) {
      return {};
    }
    ApiClient::Call call;
    call.what = "subscribe " + c.feed;
    const std::string url = s_.base + "/" + c.feed + "/changed/subscription";
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
      return r;
    };
    auto resp = sync_.api().call(call);
    if (!resp) {
      return resp.error();
    }
    return sync_.commitWatermarks({{sync_.scope(), key, "1"}});
  }

  // A complete list of a collection with a resumable cursor; `done_key` marks it complete.
  Status syncPlain(const Collection& c, const std::string& done_key) {
    const std::string cursor_key = "cursor:" + c.name;
    auto saved = sync_.savedCursor(cursor_key);
    if (!saved) {
      return saved.error();
    }
    Cursor cursor = std::move(saved).value();
    const std::string& scope = sync_.scope();
    auto n = sync_.listAll(c, c.path, c.params, cursor_key, cursor,
                           [&](store::AppendBatch& b, const Cursor*) {
                             b.watermarks.push_back({scope, cursor_key, std::nullopt});
                             if (!done_key.empty()) {
                               b.watermarks.push_back({scope, done_key, "1"});
                             }
                           });
    if (!n) {
      return n.error();
    }
    sync_.logger().write(*n > 0 ? log::Level::info : log::Level::debug, "sync_done",
                         {{"collection", c.name}, {"records", *n}});
    return {};
  }

  Status initialLoad() {
    // Subscribe first: changes made while we list are queued in the feeds.
    for (const auto& c : s_.collections) {
      if (!c.feed.empty()) {
        PSA_TRY(subscribe(c));
      }
    }
    for (const auto& c : s_.collections) {
      if (!c.per.empty()) {
        continue;
      }
      const std::string done_key = "athena:listed:" + c.name;
      auto done = sync_.watermark(done_key);
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
      auto cursor = sync_.watermark("cursor:" + c.name);
      if (!cursor) {
        return cursor.error();
      }
      if (cursor->has_value()) {
        // Resumed after a restart: deletions while we were down shifted the rest of the list
        // and the feed peek cannot tell when they happened. Finish, then list once more whole.
        PSA_TRY(syncPlain(c, ""));
      }
      PSA_TRY(stableListing(c, [&] { return syncPlain(c, ""); }));
      PSA_TRY(sync_.commitWatermarks({{sync_.scope(), done_key, "1"}}));
    }
    for (const auto& c : s_.collections) {
      if (c.per.empty()) {
        continue;
      }
      PSA_TRY(initialFanout(c));
    }
    std::vector<store::WatermarkUpdate> w = {{sync_.scope(), "athena:initial", "1"}};
    for (const auto& c : s_.collections) {
      w.push_back({sync_.scope(), "athena:listed:" + c.name, std::nullopt});
    }
    return sync_.commitWatermarks(std::move(w));
  }

  // The initial list of a per-patient collection: every parent's list once.
  Status initialFanout(const Collection& c) {
    const std::string done_key = "athena:listed:" + c.name;
    auto done = sync_.watermark(done_key);
    if (!done) {
      return done.error();
    }
    if (done->has_value()) {
      return {};
    }
    std::set<std::string> parents;
    const Collection* parent = nullptr;
    for (const auto& pc : s_.collections) {
      parent = pc.name == c.per ? &pc : parent;
    }
    auto list_parents = [&]() -> Status {
      sync_.forgetFanout(c.per);
      auto ids = sync_.fanoutIds(c.per);
      if (!ids) {
        return ids.error();
      }
      parents.insert(ids->begin(), ids->end());
      return {};
    };
    if (parent != nullptr && !parent->feed.empty()) {
      PSA_TRY(stableListing(*parent, list_parents));
    } else {
      PSA_TRY(list_parents());
    }
    const std::vector<std::string> ids(parents.begin(), parents.end());
    for (const auto& id : ids) {
      auto n = sync_.listAll(c, replaceAll(c.path, "{id}", percentEncode(id)), c.params, "",
                             Cursor{}, [](store::AppendBatch&, const Cursor*) {});
      if (!n && n.error().is(Errc::not_found)) {
        sync_.addCount("parents_gone");
        continue;
      }
      if (!n) {
        return n.error();
      }
    }
    PSA_TRY(sync_.commitWatermarks({{sync_.scope(), done_key, "1"}}));
    sync_.logger().info("sync_done",
                        {{"collection", c.name}, {"parents", static_cast<uint64_t>(ids.size())}});
    return {};
  }

  // athena lists page by offset over live data: a record deleted behind the cursor shifts the
  // next one past it, and an unchanged record never reaches the changed feed, so a skip during
  // the initial list would be permanent. Deletions made during a listing show up as tombstones
  // in the (already subscribed) feed: peek at it (leaveunprocessed) before and after, and list
  // again while new ones appeared. A repeat adds nothing (identities de-duplicate).
  Status stableListing(const Collection& c, const std::function<Status()>& list) {
    auto before = peekTombstones(c);
    if (!before) {
      return before.error();
    }
    for (int attempt = 1;; ++attempt) {
      PSA_TRY(list());
      auto after = peekTombstones(c);
      if (!after) {
        return after.error();
      }
      const bool stable =
          std::includes(before->begin(), before->end(), after->begin(), after->end());
      if (stable) {
        return {};
      }
      if (attempt >= 5) {
        sync_.logger().warn("listing_unstable",
                            {{"collection", c.name}, {"attempts", static_cast<int64_t>(attempt)}});
        return {};
      }
      sync_.logger().info("relist_after_deletions",
                          {{"collection", c.name},
                           {"deletions", static_cast<uint64_t>(after->size() - before->size())}});
      before = std::move(after);
    }
  }

  Result<std::set<std::string>> peekTombstones(const Collection& c) {
    VendorPageSpec spec = sync_.specFor(c, true);
    std::set<std::string> out;
    // Our own offsets (never the server's `next`): every request must carry leaveunprocessed,
    // or it would consume the queue.
    for (size_t offset = 0;;) {
      const std::string url =
          withQuery(s_.base + "/" + c.feed + "/changed", {{"leaveunprocessed", "true"},
                                                          {"limit", std::to_string(s_.page_size)},
                                                          {"offset", std::to_string(offset)}});
      auto page = std::make_shared<VendorPage>();
      auto resp = sync_.getList(url, "peek " + c.feed, spec, page);
      if (!resp) {
        return std::move(resp).error();
      }
      for (const auto& item : page->items) {
        if (item.tombstone) {
          out.insert(item.id);
        }
      }
      if (page->next.empty() || page->items.empty() || sync_.stop().stopped()) {
        return out;
      }
      offset += page->items.size();
    }
  }

  // Drains one consume-on-read feed. Before every consuming read the last good server time is
  // committed as "inflight"; a read whose answer is lost (or a crash before its page is
  // committed) leaves it set, and the records it consumed are replayed from that time.
  Status drain(const Collection& c) {
    PSA_TRY(subscribe(c));
    const std::string& scope = sync_.scope();
    const std::string inflight_key = "athena:inflight:" + c.feed;
    auto pending = sync_.watermark(inflight_key);
    if (!pending) {
      return pending.error();
    }
    if (pending->has_value()) {
      PSA_TRY(replay(c, **pending));
      PSA_TRY(sync_.commitWatermarks({{scope, inflight_key, std::nullopt}}));
    }
    const VendorPageSpec spec = sync_.specFor(c, true);
    const std::string url =
        withQuery(s_.base + "/" + c.feed + "/changed", {{"limit", std::to_string(s_.page_size)}});
    uint64_t records = 0;
    for (;;) {
      if (sync_.stop().stopped()) {
        return Error(Errc::closed, "stopped");
      }
      int64_t last_good = sync_.api().lastServerDateMs();
      if (last_good <= 0) {
        last_good = sync_.clock()->nowMs();  // no answer seen yet this process: replay covers it
      }
      const std::string replay_from = formatLocalTime(last_good - 2000 - s_.overlap_s * 1000,
                                                      s_.offset_min, "%m/%d/%Y %H:%M:%S");
      PSA_TRY(sync_.commitWatermarks({{scope, inflight_key, replay_from}}));
      int attempts = 0;
      auto page = std::make_shared<VendorPage>();
      // The consuming read carries no profile headers.
      ApiClient::Call call = RestSync::pageCall(url, "changed " + c.feed, spec, page, {});
      call.before_attempt = [&attempts] { ++attempts; };
      auto resp = sync_.api().call(call);
      if (!resp) {
        return resp.error();  // inflight stays: the next run replays
      }
      store::AppendBatch batch;
      for (const auto& item : page->items) {
        batch.records.push_back(sync_.recordFor(c, resp->body, item));
      }
      records += page->items.size();
      const bool lost = attempts > 1;  // an earlier attempt may have consumed records
      if (!lost) {
        batch.watermarks.push_back({scope, inflight_key, std::nullopt});
      }
      auto committed = sync_.commit(std::move(batch));
      if (!committed) {
        return std::move(committed).error();
      }
      if (lost) {
        sync_.logger().warn("lost_consuming_read",
                            {{"feed", c.feed}, {"replay_from", replay_from}});
        PSA_TRY(replay(c, replay_from));
        PSA_TRY(sync_.commitWatermarks({{scope, inflight_key, std::nullopt}}));
      }
      if (static_cast<int64_t>(page->items.size()) < s_.page_size) {
        break;
      }
    }
    sync_.logger().write(records > 0 ? log::Level::info : log::Level::debug, "sync_done",
                         {{"collection", c.name}, {"feed", c.feed}, {"records", records}});
    return {};
  }

  Status replay(const Collection& c, const std::string& start_local) {
    Collection feed = c;
    feed.items_key = c.feed_items;
    Params p = {{"showprocessedstartdatetime", start_local}};
    auto n = sync_.listAll(feed, "/" + c.feed + "/changed", p, "", Cursor{},
                           [](store::AppendBatch&, const Cursor*) {});
    if (!n) {
      return n.error();
    }
    sync_.logger().info("replayed", {{"feed", c.feed}, {"records", *n}});
    return {};
  }

  RestSync& sync_;
  const RestSettings& s_;
};

}  // namespace

SyncStrategyPtr makeAthenaFeedsStrategy(RestSync& sync) {
  return std::make_unique<AthenaFeedsStrategy>(sync);
}

}  // namespace psa::adapters::api
