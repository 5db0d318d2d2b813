// RecordSink: where adapters put records. Completion means "durable on disk".
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::store {

/// Set (value) or erase (nullopt) one watermark, committed atomically with the batch's records.
/// `scope` is the adapter name; `key` names the cursor (e.g. "Patient", "file:/path").
/// Values are sealed at rest (a cursor may embed identifiers).
struct WatermarkUpdate {
  std::string scope;
  std::string key;
  std::optional<std::string> value;
};

/// A record rejected at ingest (invalid HL7, bad CSV row): stored straight in the dead-letter
/// table with its reason, so a technician can inspect and retry it.
struct DeadLetterInput {
  Record record;
  std::string reason;  ///< PHI-free: error code and location only
};

/// One atomic unit of work from a producer: all of it commits in one transaction, or none.
struct AppendBatch {
  std::vector<Record> records;
  std::vector<DeadLetterInput> dead;
  std::vector<WatermarkUpdate> watermarks;
};

/// Per appended record, in input order.
struct Appended {
  std::string msg_id;      ///< the new id, or the original one for a duplicate
  bool duplicate = false;  ///< identity seen within the dedupe window; nothing new stored
};

struct AppendResult {
  std::vector<Appended> records;     ///< same order as AppendBatch::records
  std::vector<std::string> dead_ids;  ///< msg_ids given to AppendBatch::dead, same order
};

using AppendCallback = std::function<void(Result<AppendResult>)>;

/// Where adapters hand records to the store.
class RecordSink {
 public:
  virtual ~RecordSink() = default;

  /// Queues `batch` for the next group commit. `done` runs exactly once, on the store's writer
  /// thread, after the transaction holding the batch is durable (fsync) or has failed: post to
  /// your own strand from it and do not block in it.
  /// Errors: Errc::full (disk budget reached or disk full; nothing of the batch stored, retry
  /// later), Errc::io, Errc::closed (store shut down), Errc::invalid_argument.
  virtual void append(AppendBatch batch, AppendCallback done) = 0;

  /// Blocking form of append() for threads that may block (file readers, tools, tests).
  /// Never call it from an I/O thread or from inside a completion.
  Result<AppendResult> appendSync(AppendBatch batch);

  /// The committed value of one watermark (nullopt if never set). Blocking; not from I/O threads.
  virtual Result<std::optional<std::string>> watermark(const std::string& scope,
                                                       const std::string& key) = 0;

  /// Every committed watermark of `scope` (key -> value), e.g. for a source to prune its old
  /// cursors. Blocking; not from I/O threads. The default implementation returns
  /// Errc::invalid_argument ("not supported by this sink").
  virtual Result<std::map<std::string, std::string>> watermarks(const std::string& scope);
};

}  // namespace psa::store
