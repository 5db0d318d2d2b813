// PolicySink: the record sink in front of the store that applies the field policy to every
// record and dead letter before it is committed, so a value the policy removes never reaches
// the disk. Records keep the dedupe identity their adapter computed from the received message
// (sender + control id + hash of the bytes as received): a resend is still recognised, whatever
// the policy did to the stored copy.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "psa/adapters/policy/field_policy.h"
#include "psa/store/record_sink.h"

namespace psa::adapters::policy {

/// What the policy changed since the agent started (values committed, never the values).
struct PolicyTotals {
  Counts all;
  std::map<std::string, Counts> by_source;  ///< adapter name -> counts
};

/// Thread-safe: append() from any strand, setPolicy() from any thread (the next batch uses the
/// new policy; a batch in flight keeps the one it started with).
class PolicySink final : public store::RecordSink {
 public:
  /// `next` must outlive every append's completion.
  PolicySink(store::RecordSink& next, FieldPolicyPtr policy);

  void setPolicy(FieldPolicyPtr policy);
  FieldPolicyPtr policy() const;
  PolicyTotals totals() const;

  void append(store::AppendBatch batch, store::AppendCallback done) override;
  Result<std::optional<std::string>> watermark(const std::string& scope,
                                               const std::string& key) override;
  Result<std::map<std::string, std::string>> watermarks(const std::string& scope) override;

 private:
  struct State {
    mutable std::mutex mu;
    FieldPolicyPtr policy;
    PolicyTotals totals;
  };
  store::RecordSink& next_;
  std::shared_ptr<State> state_;
};

}  // namespace psa::adapters::policy
