#include "psa/adapters/api/rate_limit.h"

#include <algorithm>
#include <cmath>

#include "psa/store/json.h"
#include "state_file.h"

namespace psa::adapters::api {

TokenBucket::TokenBucket(double capacity, double rate_per_s, double initial_tokens, TimePoint now)
    : capacity_(std::max(1.0, capacity)),
      rate_(rate_per_s > 0 ? rate_per_s : 1.0),
      tokens_(std::clamp(initial_tokens, 0.0, std::max(1.0, capacity))),
      last_(now) {}

TokenBucket TokenBucket::forLimit(uint64_t limit, std::chrono::milliseconds window, TimePoint now) {
  if (limit == 0 || window.count() <= 0) {
    return TokenBucket(1, 1, 0, now);
  }
  const double capacity = std::max(1.0, std::floor(static_cast<double>(limit) / 10.0));
  const double seconds = static_cast<double>(window.count()) / 1000.0;
  double rate = (static_cast<double>(limit) - capacity) / seconds;
  if (rate <= 0) {
    // limit == 1: one request per window, the single token refilling over the whole window.
    rate = 1.0 / seconds;
    return TokenBucket(1, rate * 0.999, 0, now);
  }
  // A hair below the exact rate so floating-point rounding can never tip a window over.
  return TokenBucket(capacity, rate * 0.999, 0, now);
}

void TokenBucket::refill(TimePoint now) {
  if (now > last_) {
    const double secs = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(capacity_, tokens_ + secs * rate_);
    last_ = now;
  }
}

std::chrono::nanoseconds TokenBucket::tryTake(TimePoint now) {
  refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return std::chrono::nanoseconds(0);
  }
  const double missing = 1.0 - tokens_;
  const double secs = missing / rate_;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(secs * 1e9)));
}

double TokenBucket::available(TimePoint now) {
  refill(now);
  return tokens_;
}

// Reserve at send, take at the answer. Write B for tokens_ and R for reserved_. tryReserve()
// admits only when B - R >= 1 and then adds one to R; complete() takes one from B and R; refill
// only raises B (capped at the capacity C, which B - R >= 0 keeps above R). So B >= R >= 0
// always, and B >= 1 whenever complete() takes a token: the bucket never goes negative.
// Charging every request at its answer time a_i, a bucket that never goes negative gives, for
// any interval [t, t+W]: answers in it = B(t) + refill - B(t+W) <= C + r*W - B(t+W)
// <= C + r*W - R(t+W). The requests whose [send, answer] interval touches [t, t+W] are those
// answered in it plus those still in flight at t+W (R(t+W)), so there are at most C + r*W =
// the limit of them: whichever instant between send and answer the server counts a request
// at, no window of length W holds more than the limit. A new bucket starts empty with nothing
// in flight, so the bound holds across a restart too (the requests a killed process had in
// flight were in its R).
std::chrono::nanoseconds TokenBucket::tryReserve(TimePoint now) {
  refill(now);
  const double free_tokens = tokens_ - static_cast<double>(reserved_);
  if (free_tokens >= 1.0) {
    ++reserved_;
    return std::chrono::nanoseconds(0);
  }
  if (static_cast<double>(reserved_) + 1.0 > capacity_) {
    return kUntilAnAnswer;  // full of reservations: only an answer frees a token
  }
  const double secs = (1.0 - free_tokens) / rate_;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(secs * 1e9)));
}

void TokenBucket::complete(TimePoint now) {
  if (reserved_ == 0) {
    return;
  }
  refill(now);
  --reserved_;
  tokens_ = std::max(0.0, tokens_ - 1.0);
}

void TokenBucket::cancel() {
  if (reserved_ > 0) {
    --reserved_;
  }
}

double TokenBucket::unreserved(TimePoint now) {
  refill(now);
  return tokens_ - static_cast<double>(reserved_);
}

WindowBudget::WindowBudget(uint64_t limit, std::chrono::seconds window,
                           std::filesystem::path state_file, uint64_t reserve)
    : limit_(limit),
      window_ms_(std::max<int64_t>(1, window.count()) * 1000),
      file_(std::move(state_file)),
      reserve_(std::max<uint64_t>(1, reserve)) {}

Status WindowBudget::load() {
  if (file_.empty()) {
    return {};
  }
  auto text = readStateFile(file_);
  if (!text) {
    return text.error();
  }
  if (!text->has_value()) {
    return {};
  }
  auto doc = json::parse(**text);
  if (!doc || !doc->isObject() || !doc->find("window_start_ms") || !doc->find("used")) {
    return Error(Errc::corrupt, "rate budget file " + file_.string() + " is not a budget record");
  }
  const int64_t start = doc->getInt("window_start_ms", -1);
  const int64_t used = doc->getInt("used", 0);
  if (start < 0 || used < 0 || start % window_ms_ != 0) {
    return Error(Errc::corrupt, "rate budget file " + file_.string() + " has invalid values");
  }
  window_start_ = start;
  used_ = static_cast<uint64_t>(used);  // the persisted reservation: assume all of it was spent
  reserved_ = used_;
  loaded_window_ = true;
  return {};
}

Status WindowBudget::persist(int64_t window_start, uint64_t reserved) {
  if (file_.empty()) {
    return {};
  }
  json::Value doc = json::Value::object();
  doc.set("window_start_ms", json::Value::integer(window_start));
  doc.set("window_s", json::Value::integer(window_ms_ / 1000));
  doc.set("limit", json::Value::integer(static_cast<int64_t>(limit_)));
  doc.set("used", json::Value::integer(static_cast<int64_t>(reserved)));
  return writeStateFile(file_, json::serialize(doc));
}

int64_t WindowBudget::windowOf(int64_t now_ms) const {
  return now_ms - (((now_ms % window_ms_) + window_ms_) % window_ms_);
}

// A request in flight when a window opens may be counted by the server in that window (its
// answer, or the request itself, can arrive there), so it counts in the new window as well as
// in the one it was charged to at send. With used_ counting the requests whose [send, answer]
// interval touches the current window, admitting only while used_ < limit keeps every window
// at or under the limit whichever instant of that interval the server counts. A process that
// stopped with a request in flight did not say so in its state file; when the window after the
// one read from the file opens, one such request is assumed (the adapters send one request at
// a time per limiter), which costs at most one request after a restart.
uint64_t WindowBudget::carriedInto(int64_t start) const {
  const bool after_loaded = loaded_window_ && start == window_start_ + window_ms_;
  return in_flight_ + (after_loaded ? 1 : 0);
}

void WindowBudget::roll(int64_t now_ms) {
  const int64_t start = windowOf(now_ms);
  if (start != window_start_) {
    used_ = start > window_start_ ? carriedInto(start) : in_flight_;
    window_start_ = start;
    reserved_ = 0;
    loaded_window_ = false;
  }
}

Result<std::optional<int64_t>> WindowBudget::tryReserve(int64_t now_ms) {
  roll(now_ms);
  if (used_ >= limit_) {
    return std::optional<int64_t>(window_start_ + window_ms_);
  }
  if (used_ + 1 > reserved_) {
    const uint64_t want = std::min(limit_, used_ + reserve_);
    if (auto st = persist(window_start_, want); !st) {
      return st.error();
    }
    reserved_ = want;
  }
  ++used_;
  ++in_flight_;
  return std::optional<int64_t>();
}

void WindowBudget::complete(int64_t now_ms) {
  roll(now_ms);  // an answer after the top of the window: the request counts in the new one
  if (in_flight_ > 0) {
    --in_flight_;
  }
}

void WindowBudget::cancel() {
  if (in_flight_ > 0) {
    --in_flight_;
  }
}

Result<std::optional<int64_t>> WindowBudget::tryTake(int64_t now_ms) {
  auto r = tryReserve(now_ms);
  if (r && !r->has_value()) {
    complete(now_ms);
  }
  return r;
}

uint64_t WindowBudget::used(int64_t now_ms) const {
  const int64_t start = windowOf(now_ms);
  if (start == window_start_) {
    return used_;
  }
  return start > window_start_ ? carriedInto(start) : in_flight_;
}

}  // namespace psa::adapters::api
