// ApiClient: one adapter's HTTP calls with the policy every vendor needs: client-side rate
// limits, Retry-After on 429/503, exponential back-off with jitter for connection errors and
// 5xx, one re-authentication on 401 (or a vendor's in-band equivalent), and a body check that
// turns an unparsable page into a retry and, after the last attempt, a clear error.
// Runs on the adapter's own worker thread and blocks it; never call it from an I/O thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "psa/adapters/api/http.h"
#include "psa/adapters/api/rate_limit.h"
#include "psa/store/clock.h"
#include "psa/store/log.h"
#include "psa/store/result.h"

namespace psa::adapters::api {

/// A stop flag with interruptible waits, shared by a worker thread and stop().
class StopSignal {
 public:
  void stop();
  bool stopped() const;
  /// Makes the signal stop by itself once `d` (real time) has passed: from then on stopped()
  /// is true, and a sleepFor() in progress ends at that instant. Bounds a whole call (every
  /// wait in it) without a thread of its own. Any thread.
  void stopAfter(std::chrono::nanoseconds d);
  /// Waits `d` unless stopped first; false when stopped.
  bool sleepFor(std::chrono::nanoseconds d);
  /// Wakes a sleeper without stopping (e.g. "poll now").
  void poke();

 private:
  bool stoppedLocked() const;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool poked_ = false;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
};

/// A documented limit: `limit` requests per `window`. Rolling limits become a token bucket;
/// fixed ones (top of the hour, UTC day) a persisted WindowBudget.
struct LimitRule {
  uint64_t limit = 0;
  std::chrono::milliseconds window{0};
  bool fixed = false;
  std::string name;  ///< names the budget file: "<state>/<adapter>.<name>.budget"
};

/// Client-side limiter for one scope (API calls, or token calls). Thread-safe.
/// A request holds its place from acquire() until its answer arrives and is charged then
/// (reserve at send, stamp at arrival: see rate_limit.h for why), so no window of a rule ever
/// holds more than the rule's limit of requests, whichever instant between our send and the
/// answer's arrival the vendor counts a request at.
class RequestLimiter {
 public:
  /// One admitted request. Call arrived() when its answer (or a transport error) came back,
  /// or cancel() when it was never sent; destroying a permit that got neither counts as
  /// arrived. Move-only; must not outlive its limiter.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept : limiter_(std::exchange(other.limiter_, nullptr)) {}
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { arrived(); }
    void arrived();
    void cancel();

   private:
    friend class RequestLimiter;
    explicit Permit(RequestLimiter* limiter) : limiter_(limiter) {}
    RequestLimiter* limiter_ = nullptr;
  };

  RequestLimiter(std::vector<LimitRule> rules, std::filesystem::path budget_dir,
                 std::string adapter, ClockPtr clock);
  /// Loads persisted budgets (a corrupt one is replaced by a full window: safe side).
  Status load();
  /// Blocks until one request may be sent (every rule agrees and no Retry-After is pending),
  /// then reserves its place in every rule. Errors: Errc::closed when stopped, Errc::io when a
  /// budget can't be saved.
  Result<Permit> acquire(StopSignal& stop);
  /// Holds every request back for `d` from now (Retry-After, in-band throttle).
  void holdFor(std::chrono::milliseconds d);
  uint64_t waitsTotal() const;
  /// Requests admitted whose answer has not arrived yet.
  uint64_t inFlight() const;

 private:
  void finish(bool sent);

  mutable std::mutex mu_;
  ClockPtr clock_;
  std::vector<TokenBucket> buckets_;
  std::vector<WindowBudget> budgets_;
  std::chrono::steady_clock::time_point hold_until_{};
  uint64_t waits_ = 0;
  uint64_t in_flight_ = 0;
};

using RequestLimiterPtr = std::shared_ptr<RequestLimiter>;

/// Credentials for requests. Implementations cache tokens and are used from the adapter's
/// worker thread only.
class AuthStrategy {
 public:
  virtual ~AuthStrategy() = default;
  /// Makes sure credentials are current (fetching a token when needed) and adds them to `req`.
  /// Errors: Errc::unauthorized (credentials refused: a clear, PHI-free message), transport
  /// errors of the token call, Errc::closed.
  virtual Status apply(HttpRequest& req) = 0;
  /// The server refused what apply() added: forget cached tokens.
  virtual void invalidate() = 0;
  /// What `check` prints, e.g. "SMART backend services (RS384) as client agent".
  virtual std::string describe() const = 0;
  /// The scopes the last token answer granted ("" when unknown or not a token strategy):
  /// `discover fhir` reports them.
  virtual std::string grantedScope() const { return {}; }
};

using AuthStrategyPtr = std::shared_ptr<AuthStrategy>;

struct RetryPolicy {
  int max_attempts = 5;                 ///< per call, for transport errors, 5xx and bad bodies
  int max_throttled = 30;               ///< 429/503 answers tolerated per call
  std::chrono::milliseconds base{250};  ///< first back-off
  std::chrono::milliseconds cap{30000};
  std::chrono::milliseconds throttle_default{2000};  ///< a 429 without Retry-After
};

/// How a vendor answers in-band (HTTP 200 bodies that mean "throttled" or "log in again").
struct Verdict {
  enum class Kind { retry, throttled, auth_expired, fail };
  Kind kind = Kind::fail;
  std::string message;  ///< PHI-free
};

class ApiClient {
 public:
  ApiClient(HttpTransportPtr transport, RequestLimiterPtr limiter, RetryPolicy policy,
            ClockPtr clock, std::shared_ptr<StopSignal> stop, log::Logger logger);

  /// The auth strategy for calls with `authenticate` set (may be null: no auth).
  void setAuth(AuthStrategyPtr auth) { auth_ = std::move(auth); }
  AuthStrategy* auth() const { return auth_.get(); }

  struct Call {
    std::string what;  ///< for messages: "search Patient", "token"
    /// Builds the request for one attempt (after auth is current); may read auth state.
    std::function<Result<HttpRequest>()> build;
    bool authenticate = true;
    /// Statuses handed back to the caller as they are (besides 2xx).
    std::vector<int> accept;
    /// Checks a 2xx body; a failure is retried, then returned as the call's error.
    std::function<Status(const HttpResponse&)> validate;
    /// In-band vendor signals in a 2xx body (Kareo, Unity): nullopt = fine.
    std::function<std::optional<Verdict>(const HttpResponse&)> inband;
    /// Streams 2xx bodies here instead of collecting them (Bulk NDJSON).
    const BodySink* stream = nullptr;
    /// Called before every attempt (a streaming reader resets its state).
    std::function<void()> before_attempt;
  };

  /// Runs the call under the policy. Returns the response (2xx or an accepted status) or an
  /// error: Errc::unauthorized (401/403 after one re-authentication), Errc::not_found (404),
  /// Errc::invalid_input (other 4xx, or a body that kept failing validation),
  /// Errc::unavailable / Errc::timeout (after the last retry), Errc::closed (stopped).
  Result<HttpResponse> call(const Call& c);

  /// Counters for status: requests, retries, throttled, reauth.
  struct Counters {
    uint64_t requests = 0;
    uint64_t retries = 0;
    uint64_t throttled = 0;
    uint64_t reauth = 0;
    uint64_t bad_bodies = 0;
  };
  Counters counters() const;
  /// The server's clock from the last response's Date header (Unix ms), 0 if never seen.
  int64_t lastServerDateMs() const;
  StopSignal& stopSignal() { return *stop_; }
  const ClockPtr& clock() const { return clock_; }

 private:
  std::chrono::milliseconds backoff(int attempt);

  HttpTransportPtr transport_;
  RequestLimiterPtr limiter_;
  RetryPolicy policy_;
  ClockPtr clock_;
  std::shared_ptr<StopSignal> stop_;
  log::Logger logger_;
  AuthStrategyPtr auth_;
  mutable std::mutex mu_;
  Counters counters_;
  int64_t last_server_date_ms_ = 0;
  std::mt19937_64 rng_;
};

/// "HTTP 404" + ": " + summarizeErrorBody(body) when there is one.
std::string describeStatus(const HttpResponse& r);

}  // namespace psa::adapters::api
