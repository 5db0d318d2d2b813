// QueueReader: how the cloud link takes records out of the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::store {

/// A record handed out for delivery. `seq` identifies the row for ack/nack/deadLetter.
struct Leased {
  int64_t seq = 0;
  Record record;          ///< payload decrypted
  uint32_t attempts = 0;  ///< previous delivery attempts that ended in nack
};

using LeaseCallback = std::function<void(Result<std::vector<Leased>>)>;
using StatusCallback = std::function<void(Status)>;

/// Delivery side of the queue. States: pending -> leased (in flight) -> delivered (deleted, or
/// kept for retain_delivered_s); nack -> pending again after a delay; deadLetter -> dead-letter
/// table. Leases live in memory: on open, and on releaseAll(), every leased record is pending.
/// Callbacks run on a store thread (the writer thread; lease() completions on the store's lease
/// thread, which serves committed rows while the writer is busy with an fsync); post to your
/// strand and do not block.
class QueueReader {
 public:
  virtual ~QueueReader() = default;

  /// Leases up to `max` deliverable records: those whose retry time has come first, then
  /// pending ones in FIFO (msg_id) order. Only committed records are ever leased. A row that
  /// fails to decrypt or authenticate is dead-lettered with the reason, not returned.
  /// Cost does not depend on queue depth.
  virtual void lease(size_t max, LeaseCallback done) = 0;

  /// Marks records delivered (PUBACK/receipt). Batched into the next group commit.
  virtual void ack(std::vector<int64_t> seqs, StatusCallback done) = 0;

  /// Returns a leased record to pending, deliverable again after `retry_after`; counts an
  /// attempt. `reason` is PHI-free (e.g. "puback 0x97 quota exceeded").
  virtual void nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
                    StatusCallback done) = 0;

  /// Moves a leased record to the dead-letter table with `reason`.
  virtual void deadLetter(int64_t seq, std::string reason, StatusCallback done) = 0;

  /// Returns every leased record to pending (e.g. the link disconnected). Their msg_ids are
  /// unchanged, so resends are recognisable.
  virtual void releaseAll(StatusCallback done) = 0;

  /// `notify` runs on the writer thread after every commit that made records deliverable
  /// (new appends, retries), so a reader can lease without polling. Pass {} to clear.
  virtual void setDeliverableListener(std::function<void()> notify) = 0;
};

}  // namespace psa::store
