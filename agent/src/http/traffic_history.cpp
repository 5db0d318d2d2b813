// The status page's traffic history: a ring of per-interval differences of two totals.
#include "http/traffic_history.h"

#include <algorithm>

namespace psa::agent::http {
namespace {

// A total that went backwards was reset (the link or store restarted): count from 0.
uint64_t delta(uint64_t total, uint64_t last) { return total >= last ? total - last : total; }

}  // namespace

TrafficHistory::TrafficHistory(std::chrono::seconds interval, size_t capacity)
    : interval_(interval), capacity_(std::max<size_t>(capacity, 1)) {
  ring_.reserve(capacity_);
}

void TrafficHistory::sample(int64_t now_ms, uint64_t in_total, uint64_t out_total) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (has_baseline_) {
    Slot slot{{now_ms, delta(in_total, last_in_), delta(out_total, last_out_)}, last_ms_};
    if (ring_.size() < capacity_) {
      ring_.push_back(slot);
    } else {
      ring_[next_] = slot;
    }
    next_ = (next_ + 1) % capacity_;
  }
  has_baseline_ = true;
  last_ms_ = now_ms;
  last_in_ = in_total;
  last_out_ = out_total;
}

std::vector<TrafficHistory::Point> TrafficHistory::points() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Point> out;
  out.reserve(ring_.size());
  // Once full, next_ is the oldest slot.
  const size_t start = ring_.size() < capacity_ ? 0 : next_;
  for (size_t i = 0; i < ring_.size(); ++i) {
    out.push_back(ring_[(start + i) % ring_.size()].point);
  }
  return out;
}

double TrafficHistory::rate(std::chrono::seconds window, uint64_t Point::*field) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ring_.empty()) {
    return 0.0;
  }
  const int64_t newest = ring_[(next_ + capacity_ - 1) % capacity_].point.at_ms;
  const int64_t cut =
      newest - std::chrono::duration_cast<std::chrono::milliseconds>(window).count();
  uint64_t count = 0;
  int64_t covered_ms = 0;
  for (const Slot& s : ring_) {
    if (s.point.at_ms > cut) {
      count += s.point.*field;
      // Only the part of an interval inside the window counts as covered time.
      covered_ms += s.point.at_ms - std::max(s.from_ms, cut);
    }
  }
  return covered_ms > 0 ? static_cast<double>(count) * 1000.0 / static_cast<double>(covered_ms)
                        : 0.0;
}

double TrafficHistory::inRate(std::chrono::seconds window) const {
  return rate(window, &Point::in);
}

double TrafficHistory::outRate(std::chrono::seconds window) const {
  return rate(window, &Point::out);
}

json::Value TrafficHistory::toJson() const {
  json::Value points = json::Value::array();
  for (const Point& p : this->points()) {
    points.push(json::Value::array({json::Value::integer(p.at_ms),
                                    json::Value::integer(static_cast<int64_t>(p.in)),
                                    json::Value::integer(static_cast<int64_t>(p.out))}));
  }
  json::Value v = json::Value::object();
  v.set("interval_s", json::Value::integer(interval_.count()));
  v.set("points", std::move(points));
  return v;
}

}  // namespace psa::agent::http
