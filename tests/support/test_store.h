// The real SqliteStore on real files in a temp dir, seen through the QueueReader interface the
// cloud link uses, with the counters the delivery tests assert on (how many ack() calls, how
// many records delivered, dead letters and their reasons, attempts per msg-id). Every call is
// forwarded unchanged to the store.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "psa/store/sqlite_store.h"

namespace psa::test {

class TestStore final : public store::QueueReader {
 public:
  /// Opens (creating) queue.db + queue.key in `dir`. Delivered rows are kept for an hour so
  /// attempts can still be looked up after delivery. Throws std::runtime_error on failure.
  explicit TestStore(std::filesystem::path dir);
  ~TestStore() override;

  store::SqliteStore& store() { return *store_; }
  const std::filesystem::path& dbPath() const { return db_; }
  const std::filesystem::path& keyPath() const { return key_; }

  /// Appends durably (appendSync, in batches of 1000); returns the msg_ids in order.
  std::vector<std::string> append(std::vector<store::Record> records);
  /// Closes and reopens the store (what a restart does: leases are dropped).
  void reopen();
  void close();

  struct Counts {
    size_t pending = 0;    ///< queued, not delivered (leased and waiting-for-retry included)
    size_t leased = 0;
    size_t delivered = 0;  ///< appended through this object minus pending minus dead
    size_t dead = 0;
    size_t ack_calls = 0;
    size_t acked_records = 0;
    size_t lease_calls = 0;
  };
  Counts counts();
  /// msg_id -> dead-letter reason.
  std::map<std::string, std::string> deadLetters();
  /// Delivery attempts the store counted for `msg_id` (nacks), or 0 if unknown.
  uint32_t attempts(const std::string& msg_id);

  // QueueReader: forwarded, counted.
  void lease(size_t max, store::LeaseCallback done) override;
  void ack(std::vector<int64_t> seqs, store::StatusCallback done) override;
  void nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
            store::StatusCallback done) override;
  void deadLetter(int64_t seq, std::string reason, store::StatusCallback done) override;
  void releaseAll(store::StatusCallback done) override;
  void setDeliverableListener(std::function<void()> notify) override;

 private:
  void open();

  std::filesystem::path db_;
  std::filesystem::path key_;
  store::SqliteStorePtr store_;
  std::function<void()> listener_;
  size_t appended_ = 0;
  std::atomic<size_t> ack_calls_{0};
  std::atomic<size_t> acked_records_{0};
  std::atomic<size_t> lease_calls_{0};
};

}  // namespace psa::test
