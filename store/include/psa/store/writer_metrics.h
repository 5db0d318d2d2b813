// What the store's writer thread measures about its group commits, for the agent's /metrics.
#pragma once

#include "psa/store/bucket_histogram.h"

namespace psa::store {

/// A snapshot of the writer's histograms (SqliteStore::writerMetrics()). Only committed rounds
/// count; a round that rolled back is in neither.
struct WriterMetrics {
  /// Microseconds from the writer beginning a round's transaction to its COMMIT returning
  /// (the fsync included): what a producer waits for beyond the queueing.
  HistogramSnapshot commit_us;
  /// Records per commit: appended (duplicates and dead-on-arrival included) plus acknowledged,
  /// retried and dead-lettered ones. Zero for a round of audit entries or maintenance only.
  HistogramSnapshot group_records;
};

}  // namespace psa::store
