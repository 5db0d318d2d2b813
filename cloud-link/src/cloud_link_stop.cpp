// CloudLink's clockwork and ending: the half-second tick (drain rate, connect and PUBACK
// watchdogs, receipt timeouts, retry times, periodic P/status), the graceful stop in phases, and
// the destructor's hard stop.
#include "cloud_link_impl.h"

namespace psa::cloudlink {

void CloudLink::Impl::scheduleTick() {
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->runHandler("cloud_link.tick", [&] {
      if (ec || !self->started_) {
        return;
      }
      self->onTick();
      self->scheduleTick();
    });
  });
}

void CloudLink::Impl::onTick() {
  const SteadyTime now = steadyNow();
  // Drain rate over the last ~5 s.
  drain_samples_.emplace_back(now, acked_total_);
  while (drain_samples_.size() > 2 && now - drain_samples_.front().first > milliseconds(5000)) {
    drain_samples_.pop_front();
  }
  if (drain_samples_.size() >= 2) {
    const auto& [t0, a0] = drain_samples_.front();
    const double secs = std::chrono::duration<double>(now - t0).count();
    const double rate = secs > 0 ? static_cast<double>(acked_total_ - a0) / secs : 0.0;
    updateStatus([&](LinkStatus& s) { s.drain_rate = rate; });
  }

  // Watchdog: stalled handshake.
  if (state_ == LinkState::connecting && tcp_up_ && now - tcp_up_at_ > options_.connect_timeout &&
      abort_words_.empty()) {
    const std::string words = "connect timed out: no CONNACK within " +
                              std::to_string(options_.connect_timeout.count()) +
                              " ms (TLS handshake or broker stalled)";
    updateStatus([](LinkStatus& s) { ++s.watchdog_trips; });
    log_.warn("watchdog.connect_timeout");
    abortSession(words);
  }
  // Watchdog: connected, messages in flight, no PUBACK for puback_timeout (half-open TCP).
  const size_t in_flight = window_.inFlight() + control_.inFlight();
  if (state_ == LinkState::connected && !stopping_ && abort_words_.empty() && in_flight > 0 &&
      now - last_puback_at_ > options_.puback_timeout) {
    SteadyTime oldest = now;
    for (const auto& sent : {window_.oldestSentAt(), control_.oldestSentAt()}) {
      if (sent) {
        oldest = std::min(oldest, *sent);
      }
    }
    if (now - oldest > options_.puback_timeout) {
      const std::string words = "link stalled: no PUBACK for " +
                                std::to_string(options_.puback_timeout.count()) + " ms with " +
                                std::to_string(in_flight) + " message(s) in flight; reconnecting";
      updateStatus([](LinkStatus& s) { ++s.watchdog_trips; });
      log_.warn("watchdog.puback_timeout", {{"in_flight", in_flight}});
      abortSession(words);
    }
  }
  // A TCP connect that gets no answer at all (packets dropped) cannot be interrupted; say so.
  if (state_ == LinkState::connecting && !tcp_up_ && !slow_connect_reported_ &&
      now - session_started_at_ > options_.connect_timeout) {
    slow_connect_reported_ = true;
    setLastError("no answer from " + address().host + ":" + std::to_string(address().port) +
                 " for " + std::to_string(options_.connect_timeout.count()) +
                 " ms (TCP connect pending; a firewall may be dropping the packets)");
  }
  // Receipt timeouts: put unreceipted records back for a resend with the same msg-id.
  const auto timed_out = window_.takeReceiptTimeouts(now);
  for (size_t i = 0; i < timed_out.size(); ++i) {
    const auto& [id, seq] = timed_out[i];
    updateStatus([](LinkStatus& s) { ++s.retried; });
    if (i == 0) {
      log_.info("record.receipt_timeout", {{"first_msg_id", id}});
    }
    auto self = shared_from_this();
    reader_.nack(seq, milliseconds(0), "receipt timeout", [self](Status st) {
      self->post([self, st = std::move(st)] {
        self->storeResult("nack", st);
        self->deliverable_hint_ = true;
        self->pump();
      });
    });
  }
  if (timed_out.size() > 1) {
    log_.info("record.receipt_timeout", {{"count", timed_out.size()}});
  }
  // Records waiting for a retry time: the store does not announce that time, so look again.
  while (!retry_due_.empty() && retry_due_.top() <= now) {
    retry_due_.pop();
    deliverable_hint_ = true;
  }
  if (lease_retry_at_ != SteadyTime{} && now >= lease_retry_at_) {
    lease_retry_at_ = SteadyTime{};
    deliverable_hint_ = true;
  }
  // Periodic status.
  if (state_ == LinkState::connected && !stopping_ && options_.status_interval.count() > 0 &&
      now - last_status_at_ >= options_.status_interval) {
    last_status_at_ = now;
    queueStatus(currentStatusJson());
  }
  // Stop: drain deadline and graceful-disconnect deadline.
  if (stopping_) {
    if (stop_phase_ == StopPhase::draining && now >= drain_deadline_) {
      log_.warn("link.stop_drain_timeout", {{"in_flight", window_.inFlight()}});
      stop_phase_ = StopPhase::committing;
    }
    if (stop_phase_ == StopPhase::closing && now >= close_deadline_) {
      if (auto s = session()) {
        s->abort();
        if (now >= close_deadline_ + kGracefulDisconnectTimeout) {
          // Still in a connect() that cannot be interrupted: leave it behind.
          onSessionEnded({}, milliseconds(0));
          return;
        }
      }
    }
    advanceStop();
  }
  syncCounts();
  pump();
}

void CloudLink::Impl::doStop(std::function<void()> done) {
  if (done) {
    stop_callbacks_.push_back(std::move(done));
  }
  if (!started_) {
    finishStop();
    return;
  }
  if (stopping_) {
    return;
  }
  stopping_ = true;
  ready_.clear();  // leased, not sent: the final releaseAll() returns them
  reconnect_timer_.cancel();
  // state_ stays as it is (a connected link keeps receiving PUBACKs while draining); only
  // the reported state changes.
  updateStatus([&](LinkStatus& s) {
    s.state = LinkState::stopping;
    s.since_ms = clock_->nowMs();
    s.next_retry_ms = 0;
  });
  log_.info("link.stopping", {{"in_flight", window_.inFlight()}});
  if (state_ == LinkState::connected) {
    stop_phase_ = StopPhase::draining;
    drain_deadline_ = steadyNow() + options_.drain_timeout;
  } else if (session()) {
    stop_phase_ = StopPhase::closing;
    close_deadline_ = steadyNow() + kGracefulDisconnectTimeout;
    abortSession({});
  } else {
    stop_phase_ = StopPhase::releasing;
    requestRelease();
  }
  advanceStop();
}

void CloudLink::Impl::advanceStop() {
  if (!stopping_) {
    return;
  }
  if (stop_phase_ == StopPhase::draining && window_.inFlight() == 0 && control_.inFlight() == 0) {
    stop_phase_ = StopPhase::committing;
  }
  if (stop_phase_ == StopPhase::committing) {
    flushAcks(true);
    if (acks_outstanding_ == 0 && !window_.hasPendingAcks()) {
      stop_phase_ = StopPhase::closing;
      close_deadline_ = steadyNow() + kGracefulDisconnectTimeout;
      if (auto s = session()) {
        s->disconnectGracefully();
      } else {
        stop_phase_ = StopPhase::releasing;
      }
    }
  }
  if (stop_phase_ == StopPhase::releasing && !session() && !lease_outstanding_ &&
      !release_outstanding_ && acks_outstanding_ == 0) {
    if (need_release_) {
      requestRelease();
      return;
    }
    finishStop();
  }
}

void CloudLink::Impl::finishStop() {
  stop_phase_ = StopPhase::none;
  stopping_ = false;
  started_ = false;
  tick_timer_.cancel();
  reconnect_timer_.cancel();
  reader_.setDeliverableListener({});
  setState(LinkState::stopped);
  control_.failQueued();
  log_.info("link.stopped");
  auto callbacks = std::move(stop_callbacks_);
  stop_callbacks_.clear();
  for (auto& cb : callbacks) {
    cb();
  }
}

void CloudLink::Impl::shutdownNow() {
  destroyed_.store(true);
  if (!strand_.running_in_this_thread()) {
    waitForIdleHandler();
  }
  reader_.setDeliverableListener({});
  std::shared_ptr<MqttSession> s;
  s.swap(session_);
  if (s) {
    s->closeSink();
    s->abort();
    if (!s->join(kJoinTimeout)) {
      log_.warn("link.thread_abandoned", {{"reason", "blocked in connect"}});
    }
  }
}

}  // namespace psa::cloudlink
