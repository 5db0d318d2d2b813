// Deletion reconcile shared by the pollers whose vendors never signal deletions (rest-poll's
// NextGen and Kareo profiles, fhir-poll's search mode: Meditech, Practice Fusion, ...). Every
// record the adapter carries is remembered as a watermark "known:<collection>/<id>" committed
// with the record; every `period` a complete re-list of each collection finds the ids that
// vanished, and a deletion record for each commits together with the removal of its "known:"
// key, so each vanished record is carried exactly once, also across a SIGKILL.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "psa/store/log.h"
#include "psa/store/record_sink.h"

namespace psa::adapters::api {

/// The watermark key remembering that `id` of `collection` was carried.
std::string knownKey(const std::string& collection, const std::string& id);

struct ReconcileHooks {
  /// The adapter's committed watermark `key`.
  std::function<Result<std::optional<std::string>>(const std::string& key)> watermark;
  /// All the adapter's watermarks (the "known:" set).
  std::function<Result<std::map<std::string, std::string>>()> all_watermarks;
  /// Commits records and watermarks in one durable transaction.
  std::function<Result<size_t>(store::AppendBatch)> commit;
  /// Every id the server lists now in `collection`, complete (a listing that can skip a live
  /// record under concurrent change must not be used: it would invent a deletion).
  std::function<Status(const std::string& collection, std::set<std::string>& ids)> list_ids;
  /// The deletion record of `id` (`now_ms`: the reconcile time, Unix ms).
  std::function<store::Record(const std::string& collection, const std::string& id, int64_t now_ms)>
      deletion_record;
};

/// Runs a reconcile of `collections` when `period_ms` has passed since the last one ("now" is
/// `now_ms`); the first call only starts the clock. Errors: a listing's or the store's (the
/// reconcile is then retried on the next call; what committed stays committed).
Status reconcileIfDue(const std::string& adapter, const std::vector<std::string>& collections,
                      int64_t period_ms, int64_t now_ms, const ReconcileHooks& hooks,
                      const log::Logger& logger);

}  // namespace psa::adapters::api
