#include "delivery_window.h"

#include <algorithm>

namespace psa::cloudlink::detail {

namespace {
// Only feeds the "resent" counter: keep memory bounded.
constexpr size_t kMaxReleasedSeqs = 200000;
}  // namespace

DeliveryWindow::DeliveryWindow(Confirm confirm, std::chrono::milliseconds receipt_timeout)
    : confirm_(confirm), receipt_timeout_(receipt_timeout) {}

std::optional<SteadyTime> DeliveryWindow::oldestSentAt() const {
  std::optional<SteadyTime> oldest;
  for (const auto& [seq, f] : inflight_) {
    if (!oldest || f.sent_at < *oldest) {
      oldest = f.sent_at;
    }
  }
  return oldest;
}

std::optional<DeliveryWindow::Conviction> DeliveryWindow::beforePublish(const std::string& msg_id) {
  if (auto c = convicted_.find(msg_id); c != convicted_.end()) {
    Conviction conviction{suspects_[msg_id], std::move(c->second)};
    convicted_.erase(c);
    suspects_.erase(msg_id);
    return conviction;
  }
  if (probing()) {
    if (probe_budget_ == 0) {
      suspects_.clear();  // the suspects were delivered some other way
    } else {
      --probe_budget_;
    }
  }
  return std::nullopt;
}

bool DeliveryWindow::sent(int mid, int64_t seq, std::string msg_id, uint32_t attempts,
                          SteadyTime now) {
  return sent(std::vector<int>{mid}, seq, std::move(msg_id), attempts, now);
}

bool DeliveryWindow::sent(const std::vector<int>& mids, int64_t seq, std::string msg_id,
                          uint32_t attempts, SteadyTime now) {
  const bool resend = attempts > 0 || released_seqs_.erase(seq) > 0;
  InFlight f;
  f.seq = seq;
  f.msg_id = std::move(msg_id);
  f.sent_at = now;
  f.attempts = attempts;
  f.unanswered = mids;
  if (confirm_ == Confirm::receipt) {
    inflight_by_msg_[f.msg_id] = seq;
  }
  for (int mid : mids) {
    by_mid_[mid] = seq;
  }
  inflight_[seq] = std::move(f);
  return resend;
}

void DeliveryWindow::abandon(int64_t seq) {
  auto it = inflight_.find(seq);
  if (it == inflight_.end()) {
    return;
  }
  for (int mid : it->second.unanswered) {
    by_mid_.erase(mid);
  }
  inflight_by_msg_.erase(it->second.msg_id);
  inflight_.erase(it);
}

std::optional<InFlight> DeliveryWindow::answered(int mid, bool success) {
  auto m = by_mid_.find(mid);
  if (m == by_mid_.end()) {
    return std::nullopt;
  }
  const int64_t seq = m->second;
  by_mid_.erase(m);
  auto it = inflight_.find(seq);
  if (it == inflight_.end()) {
    return std::nullopt;
  }
  InFlight& rec = it->second;
  if (!suspects_.empty()) {
    suspects_.erase(rec.msg_id);  // the broker answered: not what kills the connection
  }
  auto& left = rec.unanswered;
  left.erase(std::remove(left.begin(), left.end(), mid), left.end());
  if (success && !left.empty()) {
    return std::nullopt;  // more chunks to hear about
  }
  for (int other : left) {
    by_mid_.erase(other);  // a failed chunk decides the record; later answers are not ours
  }
  InFlight f = std::move(rec);
  inflight_.erase(it);
  if (confirm_ == Confirm::receipt) {
    inflight_by_msg_.erase(f.msg_id);
  }
  return f;
}

void DeliveryWindow::delivered(const InFlight& f, SteadyTime now) {
  if (confirm_ == Confirm::broker || f.receipted) {
    pending_acks_.push_back(f.seq);
    return;
  }
  awaiting_receipt_.emplace(f.msg_id, f.seq);
  receipt_queue_.emplace_back(now + receipt_timeout_, f.msg_id);
}

size_t DeliveryWindow::receipt(const std::vector<std::string>& ids) {
  if (confirm_ != Confirm::receipt) {
    return 0;
  }
  size_t matched = 0;
  for (const std::string& id : ids) {
    if (auto it = awaiting_receipt_.find(id); it != awaiting_receipt_.end()) {
      pending_acks_.push_back(it->second);
      awaiting_receipt_.erase(it);
      ++matched;
    } else if (auto m = inflight_by_msg_.find(id); m != inflight_by_msg_.end()) {
      if (auto f = inflight_.find(m->second); f != inflight_.end()) {
        f->second.receipted = true;
        ++matched;
      }
    }
  }
  return matched;
}

std::vector<std::pair<std::string, int64_t>> DeliveryWindow::takeReceiptTimeouts(SteadyTime now) {
  std::vector<std::pair<std::string, int64_t>> out;
  while (!receipt_queue_.empty() && receipt_queue_.front().first <= now) {
    std::string id = std::move(receipt_queue_.front().second);
    receipt_queue_.pop_front();
    auto it = awaiting_receipt_.find(id);
    if (it == awaiting_receipt_.end()) {
      continue;  // receipted in time
    }
    const int64_t seq = it->second;
    awaiting_receipt_.erase(it);
    released_seqs_.insert(seq);
    out.emplace_back(std::move(id), seq);
  }
  return out;
}

std::vector<int64_t> DeliveryWindow::takePendingAcks() {
  std::vector<int64_t> batch;
  batch.swap(pending_acks_);
  return batch;
}

std::optional<std::string> DeliveryWindow::suspectInflight(const std::string& words,
                                                           SteadyTime now) {
  if (inflight_.empty()) {
    return std::nullopt;
  }
  std::optional<std::string> convicted;
  if (probing() && inflight_.size() == 1) {
    const InFlight& f = inflight_.begin()->second;
    auto it = suspects_.find(f.msg_id);
    if (it != suspects_.end() && now - f.sent_at <= kPoisonWindow &&
        ++it->second >= kPoisonStrikes) {
      convicted_[f.msg_id] = words;
      convicted = f.msg_id;
    }
  } else {
    for (const auto& [seq, f] : inflight_) {
      suspects_.emplace(f.msg_id, 0);
    }
  }
  probe_budget_ = suspects_.size() + kProbeMargin;
  return convicted;
}

size_t DeliveryWindow::releaseAll() {
  const size_t returned = inflight_.size() + awaiting_receipt_.size();
  if (released_seqs_.size() > kMaxReleasedSeqs) {
    released_seqs_.clear();
  }
  for (const auto& [seq, f] : inflight_) {
    released_seqs_.insert(seq);
  }
  for (const auto& [id, seq] : awaiting_receipt_) {
    released_seqs_.insert(seq);
  }
  inflight_.clear();
  by_mid_.clear();
  inflight_by_msg_.clear();
  awaiting_receipt_.clear();
  receipt_queue_.clear();
  return returned;
}

}  // namespace psa::cloudlink::detail
