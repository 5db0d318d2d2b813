// IntakeWatch: the record sink the running agent hands its adapters. It passes every batch to
// the store unchanged and remembers what the store answered: when it last refused input as
// full (disk budget or disk) and when it last accepted some, so `status` and `check` can say
// "refusing new records" from what actually happened rather than from a guess at the fill.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "psa/store/clock.h"
#include "psa/store/record_sink.h"

namespace psa::agent {

/// What the store answered the adapters, as far as the disk budget is concerned.
struct IntakeRefusals {
  uint64_t refused_total = 0;   ///< batches refused with Errc::full since the agent started
  int64_t last_refused_ms = 0;  ///< Unix ms, 0 = never
  int64_t last_accepted_ms = 0;
  bool last_refusal_disk = false;  ///< the disk was full (not the budget) at the last refusal
  /// The last answer was a refusal: the next record would most likely be refused too.
  bool refusing() const { return last_refused_ms != 0 && last_refused_ms >= last_accepted_ms; }
};

/// Forwards to `store` (which must outlive every append's completion; the shared state the
/// completions update is reference-counted, so the watch itself may go first). Thread-safe:
/// append() runs on adapter strands, completions on the store's writer thread.
class IntakeWatch final : public store::RecordSink {
 public:
  IntakeWatch(store::RecordSink& store, ClockPtr clock);

  void append(store::AppendBatch batch, store::AppendCallback done) override;
  Result<std::optional<std::string>> watermark(const std::string& scope,
                                               const std::string& key) override;
  Result<std::map<std::string, std::string>> watermarks(const std::string& scope) override;

  /// A consistent snapshot (any thread).
  IntakeRefusals refusals() const;

 private:
  struct State;
  store::RecordSink& store_;
  ClockPtr clock_;
  std::shared_ptr<State> state_;
};

}  // namespace psa::agent
