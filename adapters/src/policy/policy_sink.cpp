#include "psa/adapters/policy/policy_sink.h"

#include <utility>
#include <vector>

namespace psa::adapters::policy {
namespace {

template <class Changed>
bool changedAnything(const Changed& c) {
  for (const auto* list : {&c.records, &c.dead}) {
    for (const auto& [source, counts] : *list) {
      if (counts.total() > 0) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

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
  // Counted when the batch commits: a batch refused (disk full) and retried counts once, and a
  // duplicate (nothing new stored) not at all.
  struct Changed {
    std::vector<std::pair<std::string, Counts>> records;  ///< same order as batch.records
    std::vector<std::pair<std::string, Counts>> dead;
  };
  auto changed = std::make_shared<Changed>();
  if (policy) {
    for (store::Record& r : batch.records) {
      Outcome o = policy->apply(r.kind, r.format, r.payload.reveal());
      if (o.changed) {
        r.payload = Sensitive<std::string>(std::move(o.payload));
      }
      changed->records.emplace_back(r.source, o.counts);
    }
    for (store::DeadLetterInput& d : batch.dead) {
      store::Record& r = d.record;
      Outcome o = policy->applyToDeadLetter(r.kind, r.format, r.payload.reveal());
      if (o.changed) {
        r.payload = Sensitive<std::string>(std::move(o.payload));
      }
      changed->dead.emplace_back(r.source, o.counts);
    }
  }
  next_.append(std::move(batch),
               [state = state_, changed, done = std::move(done)](Result<store::AppendResult> r) {
                 if (r && changedAnything(*changed)) {
                   std::lock_guard lock(state->mu);
                   auto add = [&state](const std::pair<std::string, Counts>& c) {
                     if (c.second.total() > 0) {
                       state->totals.all += c.second;
                       state->totals.by_source[c.first] += c.second;
                     }
                   };
                   for (size_t i = 0; i < changed->records.size(); ++i) {
                     if (i >= r->records.size() || !r->records[i].duplicate) {
                       add(changed->records[i]);
                     }
                   }
                   for (const auto& c : changed->dead) {
                     add(c);
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
