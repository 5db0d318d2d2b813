// since-list (DrChrono, NextGen, generic): every collection listed with the vendor's "changed
// since" parameter from its watermark, resumable page by page ("cursor:<collection>"), or fanned
// out per parent record (NextGen charts); vendors without deletions are reconciled.
#include <set>

#include "sync_strategy.h"

namespace psa::adapters::api {
namespace {

class SinceListStrategy final : public SyncStrategy {
 public:
  explicit SinceListStrategy(RestSync& sync) : sync_(sync) {}

  Status runOnce() override {
    for (const auto& c : sync_.settings().collections) {
      if (sync_.stop().stopped()) {
        return Error(Errc::closed, "stopped");
      }
      auto st = c.per.empty() ? syncCollection(c) : syncFanout(c);
      if (!st) {
        return Error(st.error().code, st.error().message + "; " + c.name + " watermark unchanged");
      }
    }
    return sync_.maybeReconcile(
        [this](const Collection& c, std::set<std::string>& out) { return completeIds(c, out); });
  }

 private:
  Params sinceParams(const Collection& c, const std::optional<std::string>& wm) const {
    const RestSettings& s = sync_.settings();
    Params p = c.params;
    if (s.since_param.empty()) {
      return p;
    }
    std::string value;
    if (wm.has_value() && !wm->empty()) {
      value = *wm;
    } else if (!c.initial_since.empty()) {
      value = c.initial_since;
    } else {
      value = s.since_initial;
    }
    if (!value.empty()) {
      p.emplace_back(s.since_param, replaceAll(s.since_template, "{}", value));
    }
    return p;
  }

  Status syncCollection(const Collection& c) {
    const std::string wm_key = "since:" + c.name;
    const std::string cursor_key = "cursor:" + c.name;
    auto wm = sync_.watermark(wm_key);
    if (!wm) {
      return wm.error();
    }
    auto saved = sync_.savedCursor(cursor_key);
    if (!saved) {
      return saved.error();
    }
    Cursor cursor = std::move(saved).value();
    const std::string& scope = sync_.scope();
    auto n = sync_.listAll(c, c.path, sinceParams(c, *wm), cursor_key, cursor,
                           [&](store::AppendBatch& b, const Cursor* done) {
                             if (!done->run_wm.empty()) {
                               b.watermarks.push_back({scope, wm_key, done->run_wm});
                             }
                             b.watermarks.push_back({scope, cursor_key, std::nullopt});
                           });
    if (!n) {
      return n.error();
    }
    sync_.logger().write(*n > 0 ? log::Level::info : log::Level::debug, "sync_done",
                         {{"collection", c.name}, {"records", *n}});
    return {};
  }

  Status syncFanout(const Collection& c) {
    const std::string wm_key = "since:" + c.name;
    auto wm = sync_.watermark(wm_key);
    if (!wm) {
      return wm.error();
    }
    auto ids = sync_.fanoutIds(c.per);
    if (!ids) {
      return ids.error();
    }
    std::string run_wm;
    uint64_t records = 0;
    for (const auto& id : *ids) {
      if (sync_.stop().stopped()) {
        return Error(Errc::closed, "stopped");
      }
      auto n = sync_.listAll(c, replaceAll(c.path, "{id}", percentEncode(id)), sinceParams(c, *wm),
                             "", Cursor{}, [&](store::AppendBatch&, const Cursor* done) {
                               if (run_wm.empty()) {
                                 run_wm = done->run_wm;
                               }
                             });
      if (!n && n.error().is(Errc::not_found)) {
        sync_.addCount("parents_gone");  // deleted since the parent list: nothing left to read
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
    if (const std::string listed_at = sync_.fanoutWatermark(c.per); !listed_at.empty()) {
      run_wm = listed_at;
    }
    if (run_wm.empty()) {
      run_wm = sync_.serverWatermark();
    }
    if (!run_wm.empty()) {
      PSA_TRY(sync_.commitWatermarks({{sync_.scope(), wm_key, run_wm}}));
    }
    sync_.logger().info("sync_done", {{"collection", c.name},
                                      {"parents", static_cast<uint64_t>(ids->size())},
                                      {"records", records}});
    return {};
  }

  // Every id a complete listing of `c` holds now (no records are emitted).
  Status completeIds(const Collection& c, std::set<std::string>& out) {
    std::vector<std::string> ids;
    const auto noop = [](store::AppendBatch&, const Cursor*) {};
    if (c.per.empty()) {
      auto n = sync_.listAll(c, c.path, sinceParams(c, std::nullopt), "", Cursor{}, noop, &ids);
      if (!n) {
        return n.error();
      }
    } else {
      auto parents = sync_.fanoutIds(c.per);
      if (!parents) {
        return parents.error();
      }
      for (const auto& id : *parents) {
        auto n = sync_.listAll(c, replaceAll(c.path, "{id}", percentEncode(id)),
                               sinceParams(c, std::nullopt), "", Cursor{}, noop, &ids);
        if (!n && !n.error().is(Errc::not_found)) {
          return n.error();
        }
      }
    }
    out.insert(ids.begin(), ids.end());
    return {};
  }

  RestSync& sync_;
};

}  // namespace

SyncStrategyPtr makeSinceListStrategy(RestSync& sync) {
  return std::make_unique<SinceListStrategy>(sync);
}

}  // namespace psa::adapters::api
