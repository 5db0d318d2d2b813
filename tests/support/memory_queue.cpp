#include "memory_queue.h"

#include <cstdio>

namespace psa::test {

MemoryQueue::MemoryQueue() : thread_([this] { worker(); }) {}

MemoryQueue::~MemoryQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void MemoryQueue::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

void MemoryQueue::worker() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) {
      return;
    }
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

void MemoryQueue::notifyLocked() {
  if (listener_) {
    tasks_.push_back(listener_);
    cv_.notify_all();
  }
}

std::vector<std::string> MemoryQueue::append(std::vector<store::Record> records) {
  std::vector<std::string> ids;
  std::lock_guard lock(mu_);
  for (auto& r : records) {
    if (r.msg_id.empty()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "01MEM%021llu", static_cast<unsigned long long>(next_id_++));
      r.msg_id = buf;
    }
    ids.push_back(r.msg_id);
    Entry e;
    e.record = std::move(r);
    pending_.insert(next_seq_);
    entries_.emplace(next_seq_++, std::move(e));
  }
  notifyLocked();
  return ids;
}

void MemoryQueue::lease(size_t max, store::LeaseCallback done) {
  post([this, max, done = std::move(done)] {
    std::vector<store::Leased> out;
    {
      std::lock_guard lock(mu_);
      ++counts_.lease_calls;
      if (fail_leases_ > 0) {
        --fail_leases_;
      } else {
        const auto now = std::chrono::steady_clock::now();
        // Records whose retry time has come first, then pending ones in FIFO order.
        std::vector<int64_t> picked;
        for (int64_t seq : retry_) {
          if (picked.size() >= max) {
            break;
          }
          if (entries_[seq].not_before <= now) {
            picked.push_back(seq);
          }
        }
        for (auto it = pending_.begin(); it != pending_.end() && picked.size() < max; ++it) {
          const Entry& e = entries_[*it];
          if (e.attempts == 0 && e.not_before <= now) {
            picked.push_back(*it);
          }
        }
        for (int64_t seq : picked) {
          Entry& e = entries_[seq];
          pending_.erase(seq);
          retry_.erase(seq);
          e.state = State::leased;
          store::Leased l;
          l.seq = seq;
          l.record.msg_id = e.record.msg_id;
          l.record.source = e.record.source;
          l.record.vendor = e.record.vendor;
          l.record.kind = e.record.kind;
          l.record.format = e.record.format;
          l.record.received_at_ms = e.record.received_at_ms;
          l.record.payload = e.record.payload;
          l.attempts = e.attempts;
          out.push_back(std::move(l));
        }
        done(std::move(out));
        return;
      }
    }
    done(Error(Errc::io, "injected lease failure"));
  });
}

void MemoryQueue::ack(std::vector<int64_t> seqs, store::StatusCallback done) {
  post([this, seqs = std::move(seqs), done = std::move(done)] {
    {
      std::lock_guard lock(mu_);
      ++counts_.ack_calls;
      counts_.acked_records += seqs.size();
      for (int64_t seq : seqs) {
        auto it = entries_.find(seq);
        if (it != entries_.end() && it->second.state != State::dead) {
          it->second.state = State::delivered;
          pending_.erase(seq);
          retry_.erase(seq);
        }
      }
    }
    done(Status{});
  });
}

void MemoryQueue::nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
                       store::StatusCallback done) {
  post([this, seq, retry_after, reason = std::move(reason), done = std::move(done)] {
    {
      std::lock_guard lock(mu_);
      ++counts_.nacks;
      auto it = entries_.find(seq);
      if (it != entries_.end() && it->second.state == State::leased) {
        it->second.state = State::pending;
        pending_.insert(seq);
        retry_.insert(seq);
        ++it->second.attempts;
        it->second.not_before = std::chrono::steady_clock::now() + retry_after;
        it->second.reason = reason;
      }
      notifyLocked();
    }
    done(Status{});
  });
}

void MemoryQueue::deadLetter(int64_t seq, std::string reason, store::StatusCallback done) {
  post([this, seq, reason = std::move(reason), done = std::move(done)] {
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(seq);
      if (it != entries_.end() && it->second.state == State::leased) {
        it->second.state = State::dead;
        it->second.reason = reason;
      }
    }
    done(Status{});
  });
}

void MemoryQueue::releaseAll(store::StatusCallback done) {
  post([this, done = std::move(done)] {
    {
      std::lock_guard lock(mu_);
      for (auto& [seq, e] : entries_) {
        if (e.state == State::leased) {
          e.state = State::pending;
          pending_.insert(seq);
          if (e.attempts > 0) {
            retry_.insert(seq);
          }
        }
      }
    }
    done(Status{});
  });
}

void MemoryQueue::setDeliverableListener(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  listener_ = std::move(notify);
}

MemoryQueue::Counts MemoryQueue::counts() const {
  std::lock_guard lock(mu_);
  Counts c = counts_;
  for (const auto& [seq, e] : entries_) {
    switch (e.state) {
      case State::pending: ++c.pending; break;
      case State::leased:
        ++c.pending;
        ++c.leased;
        break;
      case State::delivered: ++c.delivered; break;
      case State::dead: ++c.dead; break;
    }
  }
  return c;
}

std::map<std::string, std::string> MemoryQueue::deadLetters() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& [seq, e] : entries_) {
    if (e.state == State::dead) {
      out[e.record.msg_id] = e.reason;
    }
  }
  return out;
}

uint32_t MemoryQueue::attempts(const std::string& msg_id) const {
  std::lock_guard lock(mu_);
  for (const auto& [seq, e] : entries_) {
    if (e.record.msg_id == msg_id) {
      return e.attempts;
    }
  }
  return 0;
}

void MemoryQueue::failLeases(int n) {
  std::lock_guard lock(mu_);
  fail_leases_ = n;
}

}  // namespace psa::test
