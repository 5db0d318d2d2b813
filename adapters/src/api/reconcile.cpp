#include "reconcile.h"

#include <charconv>

namespace psa::adapters::api {

namespace {
constexpr const char* kLastKey = "reconcile:last";
}  // namespace

std::string knownKey(const std::string& collection, const std::string& id) {
  return "known:" + collection + "/" + id;
}

Status reconcileIfDue(const std::string& adapter, const std::vector<std::string>& collections,
                      int64_t period_ms, int64_t now_ms, const ReconcileHooks& hooks,
                      const log::Logger& logger) {
  auto commitLast = [&]() -> Status {
    store::AppendBatch b;
    b.watermarks.push_back({adapter, kLastKey, std::to_string(now_ms)});
    auto r = hooks.commit(std::move(b));
    if (!r) {
      return std::move(r).error();
    }
    return {};
  };
  auto last = hooks.watermark(kLastKey);
  if (!last) {
    return last.error();
  }
  if (!last->has_value()) {
    return commitLast();  // just loaded: everything known is current
  }
  int64_t last_ms = 0;  // unreadable: reconcile now
  const std::string& text = **last;
  std::from_chars(text.data(), text.data() + text.size(), last_ms);
  if (now_ms - last_ms < period_ms) {
    return {};
  }
  auto known = hooks.all_watermarks();
  if (!known) {
    return known.error();
  }
  uint64_t deletions = 0;
  for (const auto& c : collections) {
    std::set<std::string> listed;
    auto st = hooks.list_ids(c, listed);
    if (!st) {
      return Error(st.error().code, st.error().message + "; reconcile of " + c + " postponed");
    }
    const std::string prefix = knownKey(c, "");
    store::AppendBatch batch;
    for (auto it = known->lower_bound(prefix);
         it != known->end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      const std::string id = it->first.substr(prefix.size());
      if (listed.count(id) == 0) {
        batch.records.push_back(hooks.deletion_record(c, id, now_ms));
        batch.watermarks.push_back({adapter, it->first, std::nullopt});
      }
    }
    if (!batch.records.empty()) {
      deletions += batch.records.size();
      auto committed = hooks.commit(std::move(batch));
      if (!committed) {
        return std::move(committed).error();
      }
    }
  }
  PSA_TRY(commitLast());
  logger.info("reconciled", {{"deletions", deletions}});
  return {};
}

}  // namespace psa::adapters::api
