// An in-memory QueueReader for unit tests of the delivery side (cloud link): same contract as
// the SQLite store's reader (FIFO leases, retry times, dead letters, releaseAll, a deliverable
// listener), callbacks on a worker thread of its own, plus counters and failure injection the
// real store cannot offer. Integration tests use the real SqliteStore.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "psa/store/queue_reader.h"

namespace psa::test {

class MemoryQueue final : public store::QueueReader {
 public:
  MemoryQueue();
  ~MemoryQueue() override;

  /// Appends records (msg_id assigned if empty); returns their msg_ids.
  std::vector<std::string> append(std::vector<store::Record> records);

  void lease(size_t max, store::LeaseCallback done) override;
  void ack(std::vector<int64_t> seqs, store::StatusCallback done) override;
  void nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
            store::StatusCallback done) override;
  void deadLetter(int64_t seq, std::string reason, store::StatusCallback done) override;
  void releaseAll(store::StatusCallback done) override;
  void setDeliverableListener(std::function<void()> notify) override;

  struct Counts {
    size_t pending = 0;  ///< not delivered, not dead (leased included)
    size_t leased = 0;
    size_t delivered = 0;
    size_t dead = 0;
    size_t ack_calls = 0;
    size_t acked_records = 0;
    size_t nacks = 0;
    size_t lease_calls = 0;
  };
  Counts counts() const;
  /// Dead letters: msg_id -> reason.
  std::map<std::string, std::string> deadLetters() const;
  /// Attempts counted by nack, per msg_id.
  uint32_t attempts(const std::string& msg_id) const;
  /// Make the next `n` lease calls fail with Errc::io.
  void failLeases(int n);

 private:
  enum class State { pending, leased, delivered, dead };
  struct Entry {
    store::Record record;
    State state = State::pending;
    uint32_t attempts = 0;
    std::chrono::steady_clock::time_point not_before{};
    std::string reason;
  };
  void post(std::function<void()> task);
  void notifyLocked();
  void worker();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::map<int64_t, Entry> entries_;
  std::set<int64_t> pending_;  ///< deliverable now or after not_before (FIFO by seq)
  std::set<int64_t> retry_;    ///< subset of pending_ with attempts > 0 (served first)
  int64_t next_seq_ = 1;
  uint64_t next_id_ = 1;
  std::function<void()> listener_;
  Counts counts_;
  int fail_leases_ = 0;
  std::thread thread_;
};

}  // namespace psa::test
