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

Result<std::optional<int64_t>> WindowBudget::tryTake(int64_t now_ms) {
  const int64_t start = now_ms - (((now_ms % window_ms_) + window_ms_) % window_ms_);
  if (start != window_start_) {
    window_start_ = start;
    used_ = 0;
    reserved_ = 0;
  }
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
  return std::optional<int64_t>();
}

uint64_t WindowBudget::used(int64_t now_ms) const {
  const int64_t start = now_ms - (((now_ms % window_ms_) + window_ms_) % window_ms_);
  return start == window_start_ ? used_ : 0;
}

}  // namespace psa::adapters::api
