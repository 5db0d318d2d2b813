#include "psa/adapters/policy/policy_sink.h"

#include <utility>

namespace psa::adapters::policy {

PolicySink::PolicySink(store::RecordSink& next, FieldPolicyPtr policy)
    : next_(next), state_(std::make_shared<State>()) {
  state_->policy = std::move(policy);
}

void PolicySink::setPolicy(FieldPolicyPtr policy) {
  std::lock_guard lock(state_->mu);
  state_->policy = std::move(policy);
}

FieldPolicyPtr PolicySink::policy() const {
  std::lock_guard lock(state_->mu);
  return state_->policy;
}

PolicyTotals PolicySink::totals() const {
  std::lock_guard lock(state_->mu);
  return state_->totals;
}

void PolicySink::append(store::AppendBatch batch, store::AppendCallback done) {
  const FieldPolicyPtr policy = this->policy();
  // Counted when the batch commits: a batch refused (disk full) and retried counts once.
  auto changed = std::make_shared<std::map<std::string, Counts>>();
  if (policy) {
    for (store::Record& r : batch.records) {
      Outcome o = policy->apply(r.kind, r.format, r.payload.reveal());
      if (o.changed) {
        r.payload = Sensitive<std::string>(std::move(o.payload));
      }
      if (o.counts.total() > 0) {
        (*changed)[r.source] += o.counts;
      }
    }
    for (store::DeadLetterInput& d : batch.dead) {
      store::Record& r = d.record;
      Outcome o = policy->applyToDeadLetter(r.kind, r.format, r.payload.reveal());
      if (o.changed) {
        r.payload = Sensitive<std::string>(std::move(o.payload));
      }
      if (o.counts.total() > 0) {
        (*changed)[r.source] += o.counts;
      }
    }
  }
  next_.append(std::move(batch),
               [state = state_, changed, done = std::move(done)](Result<store::AppendResult> r) {
                 if (r && !changed->empty()) {
                   std::lock_guard lock(state->mu);
                   for (const auto& [source, c] : *changed) {
                     state->totals.all += c;
                     state->totals.by_source[source] += c;
                   }
                 }
                 done(std::move(r));
               });
}

Result<std::optional<std::string>> PolicySink::watermark(const std::string& scope,
                                                         const std::string& key) {
  return next_.watermark(scope, key);
}

Result<std::map<std::string, std::string>> PolicySink::watermarks(const std::string& scope) {
  return next_.watermarks(scope);
}

}  // namespace psa::adapters::policy
