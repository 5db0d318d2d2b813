#include "intake_watch.h"

#include <mutex>
#include <utility>

namespace psa::agent {

struct IntakeWatch::State {
  mutable std::mutex mu;
  IntakeRefusals seen;
};

IntakeWatch::IntakeWatch(store::RecordSink& store, ClockPtr clock)
    : store_(store), clock_(std::move(clock)), state_(std::make_shared<State>()) {}

void IntakeWatch::append(store::AppendBatch batch, store::AppendCallback done) {
  store_.append(std::move(batch), [state = state_, clock = clock_,
                                   done = std::move(done)](Result<store::AppendResult> r) {
    const int64_t now = clock->nowMs();
    {
      std::lock_guard lock(state->mu);
      if (r) {
        state->seen.last_accepted_ms = now;
      } else if (r.error().is(Errc::full)) {
        ++state->seen.refused_total;
        state->seen.last_refused_ms = now;
        // The store says "store at its disk budget: ..." when the budget refused the batch;
        // any other "full" came from the file system (SQLITE_FULL).
        state->seen.last_refusal_disk = r.error().message.find("disk budget") == std::string::npos;
      }
    }
    done(std::move(r));
  });
}

Result<std::optional<std::string>> IntakeWatch::watermark(const std::string& scope,
                                                          const std::string& key) {
  return store_.watermark(scope, key);
}

Result<std::map<std::string, std::string>> IntakeWatch::watermarks(const std::string& scope) {
  return store_.watermarks(scope);
}

IntakeRefusals IntakeWatch::refusals() const {
  std::lock_guard lock(state_->mu);
  return state_->seen;
}

}  // namespace psa::agent
