#include "api_client.h"

#include <algorithm>

#include "psa/adapters/api/fhir.h"
#include "psa/adapters/api/http_time.h"

namespace psa::adapters::api {

void StopSignal::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  cv_.notify_all();
}

bool StopSignal::stopped() const {
  std::lock_guard lock(mu_);
  return stoppedLocked();
}

bool StopSignal::stoppedLocked() const {
  return stopped_ || (deadline_ && std::chrono::steady_clock::now() >= *deadline_);
}

void StopSignal::stopAfter(std::chrono::nanoseconds d) {
  std::lock_guard lock(mu_);
  deadline_ = std::chrono::steady_clock::now() + d;
  cv_.notify_all();
}

bool StopSignal::sleepFor(std::chrono::nanoseconds d) {
  std::unique_lock lock(mu_);
  if (deadline_) {
    const auto now = std::chrono::steady_clock::now();
    const auto until = d < *deadline_ - now ? now + d : *deadline_;
    cv_.wait_until(lock, until, [&] { return stopped_ || poked_; });
  } else {
    cv_.wait_for(lock, d, [&] { return stopped_ || poked_; });
  }
  poked_ = false;
  return !stoppedLocked();
}

void StopSignal::poke() {
  std::lock_guard lock(mu_);
  poked_ = true;
  cv_.notify_all();
}

RequestLimiter::RequestLimiter(std::vector<LimitRule> rules, std::filesystem::path budget_dir,
                               std::string adapter, ClockPtr clock)
    : clock_(std::move(clock)) {
  for (const auto& r : rules) {
    if (r.limit == 0 || r.window.count() <= 0) {
      continue;
    }
    if (r.fixed) {
      std::filesystem::path file;
      if (!budget_dir.empty()) {
        file = budget_dir / (adapter + "." + (r.name.empty() ? "budget" : r.name) + ".budget");
      }
      budgets_.emplace_back(r.limit,
                            std::chrono::duration_cast<std::chrono::seconds>(r.window), file);
    } else {
      buckets_.push_back(TokenBucket::forLimit(r.limit, r.window, clock_->steady()));
    }
  }
}

Status RequestLimiter::load() {
  std::lock_guard lock(mu_);
  for (auto& b : budgets_) {
    if (auto st = b.load(); !st) {
      if (st.error().is(Errc::corrupt)) {
        // Unknown spending: assume the current window is used up (never exceed the limit).
        const int64_t now = clock_->nowMs();
        while (true) {
          auto taken = b.tryTake(now);
          if (!taken || taken->has_value()) {
            break;
          }
        }
        continue;
      }
      return st;
    }
  }
  return {};
}

// While every place is held by a request in flight, only an answer frees one; those come from
// other threads (one adapter thread never waits here with a request of its own in flight), so
// look again after a short while.
constexpr std::chrono::milliseconds kAnswerPoll{20};

Result<RequestLimiter::Permit> RequestLimiter::acquire(StopSignal& stop) {
  for (;;) {
    std::chrono::nanoseconds wait{0};
    {
      std::lock_guard lock(mu_);
      const auto now = clock_->steady();
      if (now < hold_until_) {
        wait = hold_until_ - now;
      } else {
        // Check every rule first without reserving, so a refusal by one doesn't hold another's
        // place.
        for (auto& b : buckets_) {
          if (b.unreserved(now) < 1.0) {
            auto w = b.tryReserve(now);  // reserves nothing here: it only reports the wait
            wait = std::max(
                wait, w == TokenBucket::kUntilAnAnswer ? std::chrono::nanoseconds(kAnswerPoll) : w);
          }
        }
        if (wait.count() == 0) {
          const int64_t now_ms = clock_->nowMs();
          for (auto& budget : budgets_) {
            if (budget.used(now_ms) >= budget.limit()) {
              auto next = budget.tryReserve(now_ms);  // full: reserves nothing
              if (!next) {
                return std::move(next).error();
              }
              if (next->has_value()) {
                // A window full of requests in flight frees up when they are answered, not at
                // the next window (they count there too).
                const bool in_flight_only = budget.inFlight() >= budget.limit();
                wait = std::max(wait, in_flight_only
                                          ? std::chrono::nanoseconds(kAnswerPoll)
                                          : std::chrono::nanoseconds(
                                                std::chrono::milliseconds(**next - now_ms + 50)));
              }
            }
          }
        }
        if (wait.count() == 0) {
          const int64_t now_ms = clock_->nowMs();
          for (size_t i = 0; i < budgets_.size(); ++i) {
            auto r = budgets_[i].tryReserve(now_ms);
            if (!r) {
              for (size_t j = 0; j < i; ++j) {
                budgets_[j].cancel();
              }
              return std::move(r).error();
            }
          }
          for (auto& b : buckets_) {
            (void)b.tryReserve(now);
          }
          ++in_flight_;
          return Permit(this);
        }
      }
      ++waits_;
    }
    if (!stop.sleepFor(wait)) {
      return Error(Errc::closed, "stopped");
    }
  }
}

void RequestLimiter::finish(bool sent) {
  std::lock_guard lock(mu_);
  if (in_flight_ == 0) {
    return;
  }
  --in_flight_;
  const auto now = clock_->steady();
  const int64_t now_ms = clock_->nowMs();
  for (auto& b : buckets_) {
    if (sent) {
      b.complete(now);
    } else {
      b.cancel();
    }
  }
  for (auto& budget : budgets_) {
    if (sent) {
      budget.complete(now_ms);
    } else {
      budget.cancel();
    }
  }
}

uint64_t RequestLimiter::inFlight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

RequestLimiter::Permit& RequestLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    arrived();
    limiter_ = std::exchange(other.limiter_, nullptr);
  }
  return *this;
}

void RequestLimiter::Permit::arrived() {
  if (limiter_ != nullptr) {
    std::exchange(limiter_, nullptr)->finish(true);
  }
}

void RequestLimiter::Permit::cancel() {
  if (limiter_ != nullptr) {
    std::exchange(limiter_, nullptr)->finish(false);
  }
}

void RequestLimiter::holdFor(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  const auto until = clock_->steady() + d;
  hold_until_ = std::max(hold_until_, until);
}

uint64_t RequestLimiter::waitsTotal() const {
  std::lock_guard lock(mu_);
  return waits_;
}

ApiClient::ApiClient(HttpTransportPtr transport, RequestLimiterPtr limiter, RetryPolicy policy,
                     ClockPtr clock, std::shared_ptr<StopSignal> stop, log::Logger logger)
    : transport_(std::move(transport)),
      limiter_(std::move(limiter)),
      policy_(policy),
      clock_(std::move(clock)),
      stop_(std::move(stop)),
      logger_(std::move(logger)),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds ApiClient::backoff(int attempt) {
  const int64_t base = policy_.base.count();
  const int64_t cap = policy_.cap.count();
  int64_t d = base;
  for (int i = 1; i < attempt && d < cap; ++i) {
    d *= 2;
  }
  d = std::min(d, cap);
  // "Equal jitter": half fixed, half random, so retries of many clients spread out but never
  // collapse to zero.
  std::uniform_int_distribution<int64_t> dist(d / 2, d);
  std::lock_guard lock(mu_);
  return std::chrono::milliseconds(dist(rng_));
}

std::string describeStatus(const HttpResponse& r) {
  std::string s = "HTTP " + std::to_string(r.status);
  const std::string summary = summarizeErrorBody(r.body);
  if (!summary.empty()) {
    s += " " + summary;
  }
  return s;
}

Result<HttpResponse> ApiClient::call(const Call& c) {
  int attempts = 0;
  int throttled = 0;
  bool reauthed = false;
  Error last(Errc::unavailable, "no attempt made");
  while (true) {
    if (stop_->stopped()) {
      return Error(Errc::closed, "stopped");
    }
    if (attempts >= policy_.max_attempts) {
      const std::string msg = c.what + ": " + last.message + " (after " +
                              std::to_string(attempts) + " attempts)";
      return Error(last.code, msg);
    }
    if (throttled > policy_.max_throttled) {
      return Error(Errc::unavailable, c.what + ": still throttled after " +
                                          std::to_string(throttled) + " waits");
    }
    // The request's place in the rate limits, from now until its answer has arrived (the
    // vendor may count it at any instant in between).
    RequestLimiter::Permit permit;
    if (limiter_) {
      auto p = limiter_->acquire(*stop_);
      if (!p) {
        return std::move(p).error();
      }
      permit = std::move(p).value();
    }
    if (c.before_attempt) {
      c.before_attempt();
    }
    auto built = c.build();
    if (!built) {
      permit.cancel();
      return std::move(built).error();
    }
    HttpRequest req = std::move(built).value();
    if (c.authenticate && auth_) {
      if (auto st = auth_->apply(req); !st) {
        permit.cancel();
        return Error(st.error().code, c.what + ": " + st.error().message);
      }
    }
    {
      std::lock_guard lock(mu_);
      ++counters_.requests;
    }
    auto sent = c.stream != nullptr ? transport_->sendStreaming(req, *c.stream)
                                    : transport_->send(req);
    permit.arrived();  // answer, error or timeout: the request is charged now
    if (!sent) {
      if (sent.error().is(Errc::closed) || sent.error().is(Errc::invalid_argument)) {
        return Error(sent.error().code, c.what + ": " + sent.error().message);
      }
      ++attempts;
      last = std::move(sent).error();
      {
        std::lock_guard lock(mu_);
        ++counters_.retries;
        if (last.is(Errc::invalid_input)) {
          ++counters_.bad_bodies;  // a streaming reader refused the data
        }
      }
      logger_.warn("http_retry", {{"call", c.what}, {"attempt", attempts}, {"error", last.message}});
      if (!stop_->sleepFor(backoff(attempts))) {
        return Error(Errc::closed, "stopped");
      }
      continue;
    }
    HttpResponse resp = std::move(sent).value();
    if (auto date = resp.header("date")) {
      if (auto ms = parseHttpDate(*date)) {
        std::lock_guard lock(mu_);
        last_server_date_ms_ = *ms;
      }
    }
    const int st = resp.status;
    const bool accepted =
        std::find(c.accept.begin(), c.accept.end(), st) != c.accept.end();
    if (st == 401 && !accepted) {
      if (c.authenticate && auth_ && !reauthed) {
        reauthed = true;
        auth_->invalidate();
        {
          std::lock_guard lock(mu_);
          ++counters_.reauth;
        }
        logger_.info("reauthenticate", {{"call", c.what}});
        continue;
      }
      return Error(Errc::unauthorized, c.what + ": " + describeStatus(resp) +
                                           (reauthed ? " (after re-authentication)" : ""));
    }
    if ((st == 429 || (st == 503 && resp.header("retry-after"))) && !accepted) {
      ++throttled;
      {
        std::lock_guard lock(mu_);
        ++counters_.throttled;
      }
      std::chrono::milliseconds wait = policy_.throttle_default * std::min(throttled, 8);
      if (auto ra = resp.header("retry-after")) {
        int64_t reference = clock_->nowMs();
        if (auto date = resp.header("date")) {
          if (auto ms = parseHttpDate(*date)) {
            reference = *ms;
          }
        }
        if (auto d = parseRetryAfter(*ra, reference)) {
          // An HTTP date has whole-second precision: wait for the whole second.
          wait = *d + std::chrono::milliseconds(ra->find(',') != std::string::npos ? 1000 : 100);
        }
      }
      logger_.warn("throttled", {{"call", c.what}, {"status", st}, {"wait_ms", wait.count()}});
      if (limiter_) {
        limiter_->holdFor(wait);
      } else if (!stop_->sleepFor(wait)) {
        return Error(Errc::closed, "stopped");
      }
      last = Error(Errc::unavailable, describeStatus(resp));
      continue;
    }
    if (st >= 500 && !accepted) {
      ++attempts;
      last = Error(Errc::unavailable, describeStatus(resp));
      {
        std::lock_guard lock(mu_);
        ++counters_.retries;
      }
      logger_.warn("http_retry", {{"call", c.what}, {"attempt", attempts}, {"status", st}});
      if (!stop_->sleepFor(backoff(attempts))) {
        return Error(Errc::closed, "stopped");
      }
      continue;
    }
    if (accepted) {
      return resp;
    }
    if (st < 200 || st >= 300) {
      const Errc code = (st == 401 || st == 403) ? Errc::unauthorized
                        : st == 404              ? Errc::not_found
                                                 : Errc::invalid_input;
      return Error(code, c.what + ": " + describeStatus(resp));
    }
    if (c.inband) {
      if (auto v = c.inband(resp)) {
        switch (v->kind) {
          case Verdict::Kind::throttled: {
            ++throttled;
            {
              std::lock_guard lock(mu_);
              ++counters_.throttled;
            }
            const auto wait = policy_.throttle_default * std::min(throttled, 8);
            logger_.warn("throttled_inband", {{"call", c.what}, {"wait_ms", wait.count()}});
            if (limiter_) {
              limiter_->holdFor(wait);
            } else if (!stop_->sleepFor(wait)) {
              return Error(Errc::closed, "stopped");
            }
            last = Error(Errc::unavailable, v->message);
            continue;
          }
          case Verdict::Kind::auth_expired:
            if (c.authenticate && auth_ && !reauthed) {
              reauthed = true;
              auth_->invalidate();
              {
                std::lock_guard lock(mu_);
                ++counters_.reauth;
              }
              logger_.info("reauthenticate", {{"call", c.what}});
              continue;
            }
            return Error(Errc::unauthorized, c.what + ": " + v->message);
          case Verdict::Kind::retry:
            ++attempts;
            last = Error(Errc::unavailable, v->message);
            {
              std::lock_guard lock(mu_);
              ++counters_.retries;
            }
            if (!stop_->sleepFor(backoff(attempts))) {
              return Error(Errc::closed, "stopped");
            }
            continue;
          case Verdict::Kind::fail:
            return Error(Errc::invalid_input, c.what + ": " + v->message);
        }
      }
    }
    if (c.validate) {
      if (auto ok = c.validate(resp); !ok) {
        ++attempts;
        last = ok.error();
        {
          std::lock_guard lock(mu_);
          ++counters_.bad_bodies;
          ++counters_.retries;
        }
        logger_.warn("bad_body", {{"call", c.what}, {"attempt", attempts}, {"error", last.message}});
        if (!stop_->sleepFor(backoff(attempts))) {
          return Error(Errc::closed, "stopped");
        }
        continue;
      }
    }
    return resp;
  }
}

ApiClient::Counters ApiClient::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

int64_t ApiClient::lastServerDateMs() const {
  std::lock_guard lock(mu_);
  return last_server_date_ms_;
}

}  // namespace psa::adapters::api
