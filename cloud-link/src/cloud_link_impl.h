// CloudLink::Impl, the link's state and machinery, shared by its source files:
//   cloud_link.cpp           the public API, connection lifecycle, incoming messages, P/status
//   cloud_link_delivery.cpp  leasing, publishing, PUBACKs, receipts, acks to the store
//   cloud_link_stop.cpp      the tick (watchdogs, timeouts), graceful stop, destruction
// The bookkeeping it delegates lives in DeliveryWindow (records between publish and release)
// and ControlChannel (config/commands in, status/results/audit out).
//
// Threads: every member is touched only on strand_ (see post() and runHandler()); the only
// exceptions are the atomics destroyed_/busy_ and ~CloudLink's shutdownNow().
#pragma once

#include <mqtt_protocol.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <future>
#include <optional>
#include <queue>
#include <random>
#include <thread>
#include <unordered_map>

#include "control_channel.h"
#include "delivery_window.h"
#include "mqtt_session.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/cloudlink/policy.h"
#include "psa/cloudlink/topics.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"

namespace psa::cloudlink {

namespace asio = boost::asio;
using detail::ControlChannel;
using detail::ControlItem;
using detail::DeliveryWindow;
using detail::InFlight;
using detail::MqttSession;
using detail::SessionEvent;
using detail::SteadyTime;
using std::chrono::milliseconds;

/// One broker endpoint: its URL as configured and where it points.
struct Endpoint {
  std::string url;
  BrokerAddress address;
};

struct CloudLink::Impl : std::enable_shared_from_this<CloudLink::Impl> {
  static constexpr milliseconds kTick{500};
  static constexpr milliseconds kGracefulDisconnectTimeout{2000};
  static constexpr milliseconds kJoinTimeout{3000};
  static constexpr size_t kMinReady = 64;
  Impl(asio::io_context& io, store::QueueReader& reader, CloudLinkOptions options, ClockPtr clock,
       std::vector<Endpoint> endpoints)
      : io_(io),
        strand_(asio::make_strand(io)),
        reader_(reader),
        options_(std::move(options)),
        clock_(clock ? std::move(clock) : Clock::system()),
        endpoints_(std::move(endpoints)),
        topics_(options_.tenant, options_.agent_id),
        log_("cloudlink", options_.agent_id),
        backoff_(options_.backoff_initial, options_.backoff_max),
        reconnect_timer_(strand_),
        tick_timer_(strand_),
        window_(options_.confirm, options_.receipt_timeout),
        control_(topics_, options_.max_control_bytes, options_.max_control_queue, status_, log_) {
    // Each agent walks the endpoints in its own random order: after a cluster restart the
    // agents spread over its nodes, and when a node fails its agents spread over the others
    // (a common "next" would put its whole share on one neighbour).
    std::shuffle(endpoints_.begin(), endpoints_.end(), rng_);
    endpoint_ = 0;
    status_.url = endpoints_[endpoint_].url;
    status_.confirm = std::string(confirmName(options_.confirm));
    status_.since_ms = clock_->nowMs();
  }

  // ---------------------------------------------------------------- plumbing

  /// Queues `f` on the strand: the one place link state is touched. Never runs `f` inline,
  /// so it is safe from any thread, the strand included.
  template <class F>
  void post(F&& f) {
    asio::post(strand_, [self = shared_from_this(), f = std::forward<F>(f)]() mutable {
      self->runHandler("cloud_link.handler", f);
    });
  }

  /// The body of every strand handler (posts and timers). Once the link is destroyed a handler
  /// returns at once. `busy_` is not a lock: handlers are already serialised by the strand; it
  /// only lets ~CloudLink (on another thread) wait for the one handler running right now.
  template <class F>
  void runHandler(const char* place, F&& f) {
    busy_.store(true);
    if (!destroyed_.load()) {
      guardInvariant(place, f);
    }
    busy_.store(false);
  }

  /// Runs `f` on the strand and returns its result: inline when called on the strand (e.g. from
  /// a ControlSink or status-provider callback), else posted and waited for. Needs a thread
  /// running the io_context; once the io_context has stopped no handler can run, so `f` then
  /// runs on the caller's thread after the last handler finished.
  template <class F>
  auto call(F f) -> decltype(f()) {
    using R = decltype(f());
    if (strand_.running_in_this_thread()) {
      return f();
    }
    if (!io_.stopped()) {
      auto done = std::make_shared<std::promise<R>>();
      std::future<R> result = done->get_future();
      asio::post(strand_, [self = shared_from_this(), done, f]() mutable {
        self->runHandler("cloud_link.call", [&] { done->set_value(f()); });
      });
      // Poll, so that an io_context stopped while we wait cannot leave us waiting forever.
      while (result.wait_for(milliseconds(50)) != std::future_status::ready) {
        if (io_.stopped()) {
          break;
        }
      }
      if (result.wait_for(milliseconds(0)) == std::future_status::ready) {
        return result.get();
      }
    }
    waitForIdleHandler();
    return f();
  }

  /// Waits until no strand handler is running (one may be finishing on another thread).
  void waitForIdleHandler() const;
  SteadyTime steadyNow() const { return clock_->steady(); }

  /// The endpoint of the current (or next) attempt: a broker's Server Reference being followed,
  /// else the configured one.
  const BrokerAddress& address() const {
    return redirected_ ? redirected_->address : endpoints_[endpoint_].address;
  }
  const std::string& currentUrl() const {
    return redirected_ ? redirected_->url : endpoints_[endpoint_].url;
  }
  std::string endpointName() const { return address().host + ":" + std::to_string(address().port); }
  /// After a failed attempt or a lost connection: the next endpoint of the cluster (no-op with
  /// one endpoint).
  void failOver(const std::string& why);
  /// CONNACK or DISCONNECT 0x9C/0x9D with a Server Reference: the next attempt goes there, for
  /// that connection only (never from a connection that is itself a redirect, never persisted;
  /// the configured endpoints stay the source of truth). Its certificate must verify against
  /// the same ca_file for the referenced host name. False if not followed.
  bool followServerReference(int code, const std::string& reference);

  template <class F>
  void updateStatus(F&& f) {
    f(status_);
  }

  void setState(LinkState state);
  void setLastError(const std::string& words);
  void syncCounts();

  // ---------------------------------------------------------------- lifecycle

  void doStart();
  void connectNow();
  std::shared_ptr<MqttSession> session() const { return session_; }

  void abortSession(const std::string& words);
  void onSessionEvent(uint64_t generation, SessionEvent ev);
  void onConnected(const SessionEvent& ev);
  void onSuback(const SessionEvent& ev);
  std::string deniedWords() const;

  /// `join_timeout` 0 abandons a thread that has not finished (stuck in a blocking connect).
  void onSessionEnded(std::string words, milliseconds join_timeout = kJoinTimeout);

  /// The connection died with records in flight: one of them may be what kills it (a record
  /// over mosquitto's message_size_limit gets PUBACK 0x95 and a close, which libmosquitto may
  /// see as a broken pipe first). Those records become suspects and the next connection sends
  /// one record at a time until every suspect got an answer; a suspect that broke the
  /// connection alone too often is dead-lettered instead of being sent again (DeliveryWindow).
  void suspectInflight(const std::string& words);
  /// After the back-off's next delay, or after `delay` when given (following a redirect).
  void scheduleReconnect(std::optional<milliseconds> delay = std::nullopt);

  // ---------------------------------------------------------------- leasing and publishing

  bool canPublish() const;

  /// Records leased ahead (`ready_`) keep the window full without a store round trip per
  /// PUBACK; at most readyTarget() are held.
  bool canLease() const;

  /// How many leased records to hold ready: a window's worth, but at least kMinReady so a
  /// small window does not wait for a store round trip after every PUBACK.
  size_t readyTarget() const { return std::max(options_.max_inflight, kMinReady); }

  void pump();
  void onLeased(Result<std::vector<store::Leased>> result);
  void publishRecord(store::Leased&& leased);
  /// One QoS 1 publish of a record (or one chunk of it) on `topic`, with a topic alias when
  /// the broker allows them: the first publish on a topic carries the topic and a new alias,
  /// later ones the alias alone. Returns a MOSQ_ERR_* code; `metadata_unusable` says the
  /// properties, not the publish, failed.
  int publishOn(MqttSession& session, int& mid, const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& props,
                const std::string& content_type, std::string_view payload, bool& metadata_unusable);
  milliseconds retryDelay(uint32_t attempts);
  void retryRecord(int64_t seq, const std::string& msg_id, uint32_t attempts, int code,
                   std::string reason);
  void deadLetter(int64_t seq, const std::string& msg_id, int code, std::string reason);
  void storeResult(const char* op, const Status& st);
  void onPuback(int mid, int rc);

  // ---------------------------------------------------------------- acks to the store

  void scheduleAckFlush();

  /// One ack() call per batch; while one is being committed the next batch accumulates (the
  /// store group-commits, so commits never happen per PUBACK).
  void flushAcks(bool force);
  void requestRelease();

  // ---------------------------------------------------------------- incoming messages

  void onMessage(SessionEvent ev);
  void onReceipt(const SessionEvent& ev);

  // ---------------------------------------------------------------- control publishing

  std::string currentStatusJson();
  void queueStatus(std::string json);
  void queueControl(ControlItem item);
  void flushControl();

  // ---------------------------------------------------------------- timers and watchdog

  void scheduleTick();
  void onTick();

  // ---------------------------------------------------------------- stop

  enum class StopPhase { none, draining, committing, closing, releasing, done };
  void doStop(std::function<void()> done);
  void advanceStop();
  void finishStop();

  /// ~CloudLink, on any thread (the strand included, e.g. from a stop() callback). After
  /// destroyed_ is set every handler returns at once; once the one running right now (on
  /// another thread) has finished, this thread is the only one touching the state.
  void shutdownNow();

  // ---------------------------------------------------------------- state

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  store::QueueReader& reader_;
  const CloudLinkOptions options_;
  const ClockPtr clock_;
  std::vector<Endpoint> endpoints_;  ///< in this agent's random order (shuffled once, at start)
  size_t endpoint_ = 0;  ///< the endpoint of the current (or next) attempt
  std::optional<Endpoint> next_redirect_;  ///< a Server Reference to follow at the next attempt
  std::optional<Endpoint> redirected_;     ///< the current connection follows this reference
  const Topics topics_;
  const log::Logger log_;
  std::function<std::string()> status_provider_;
  std::atomic<bool> destroyed_{false};  ///< set by ~CloudLink; every later handler returns
  std::atomic<bool> busy_{false};       ///< a strand handler is running (see runHandler)
  bool started_ = false;
  bool stopping_ = false;
  StopPhase stop_phase_ = StopPhase::none;
  SteadyTime drain_deadline_{};
  SteadyTime close_deadline_{};
  std::vector<std::function<void()>> stop_callbacks_;
  LinkState state_ = LinkState::stopped;
  std::shared_ptr<MqttSession> session_;
  uint64_t generation_ = 0;
  bool tcp_up_ = false;
  bool slow_connect_reported_ = false;
  bool session_broken_ = false;
  SteadyTime session_started_at_{};
  SteadyTime tcp_up_at_{};
  SteadyTime connected_at_{};
  SteadyTime last_puback_at_{};
  /// A record PUBACK with a success code arrived on this connection (reset on connect).
  bool records_accepted_ = false;
  /// A record PUBACK "not authorized" arrived on this connection (reset on connect).
  bool denied_on_connection_ = false;
  SteadyTime last_status_at_{};
  std::string abort_words_;
  int subscribe_mid_ = -1;
  Backoff backoff_;
  TlsCauseMemory tls_causes_;  // the last specific TLS failure per endpoint
  std::mt19937_64 rng_{std::random_device{}()};
  asio::steady_timer reconnect_timer_;
  asio::steady_timer tick_timer_;
  std::priority_queue<SteadyTime, std::vector<SteadyTime>, std::greater<>> retry_due_;
  SteadyTime lease_retry_at_{};
  int acks_outstanding_ = 0;
  bool ack_flush_posted_ = false;
  uint64_t acked_total_ = 0;
  std::deque<std::pair<SteadyTime, uint64_t>> drain_samples_;
  std::deque<store::Leased> ready_;  ///< leased ahead, not yet published
  bool lease_outstanding_ = false;
  size_t lease_requested_ = 0;
  bool deliverable_hint_ = true;
  bool need_release_ = false;
  bool release_outstanding_ = false;
  BrokerLimits broker_;           ///< the current connection's CONNACK (records' window, retain)
  /// P/up/{kind} topic -> the alias this connection established for it (Topic Alias Maximum).
  std::unordered_map<std::string, int> topic_aliases_;
  bool retain_available_ = true;  ///< false once a broker said it keeps no retained messages
  LinkStatus status_;
  DeliveryWindow window_;   ///< records between publish and release
  ControlChannel control_;  ///< config/commands in, status/results/audit out
};

}  // namespace psa::cloudlink
