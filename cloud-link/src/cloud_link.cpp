#include "psa/cloudlink/cloud_link.h"

#include <mqtt_protocol.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <future>
#include <queue>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "mqtt_session.h"
#include "psa/cloudlink/envelope.h"
#include "psa/cloudlink/policy.h"
#include "psa/cloudlink/topics.h"
#include "psa/store/fatal.h"
#include "psa/store/json.h"
#include "psa/store/log.h"
#include "psa/store/test_fault.h"

namespace psa::cloudlink {

namespace asio = boost::asio;
using detail::MqttSession;
using detail::SessionEvent;
using SteadyTime = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;

std::string_view confirmName(Confirm confirm) {
  return confirm == Confirm::receipt ? "receipt" : "broker";
}

std::optional<Confirm> parseConfirm(std::string_view text) {
  if (text == "broker") {
    return Confirm::broker;
  }
  if (text == "receipt") {
    return Confirm::receipt;
  }
  return std::nullopt;
}

std::string_view linkStateName(LinkState state) {
  switch (state) {
    case LinkState::stopped: return "stopped";
    case LinkState::connecting: return "connecting";
    case LinkState::connected: return "connected";
    case LinkState::backoff: return "backoff";
    case LinkState::stopping: return "stopping";
  }
  return "unknown";
}

Status validateOptions(const CloudLinkOptions& o) {
  auto url = parseBrokerUrl(o.url);
  if (!url) {
    return Error(Errc::invalid_argument, "cloud.url: " + url.error().message);
  }
  if (!Topics::validLevel(o.tenant)) {
    return Error(Errc::invalid_argument,
                 "agent.tenant: must be a non-empty MQTT topic level without '/', '+', '#'");
  }
  if (!Topics::validLevel(o.agent_id)) {
    return Error(Errc::invalid_argument,
                 "agent.id: must be a non-empty MQTT topic level without '/', '+', '#'");
  }
  if (o.client_id.size() > 256) {
    return Error(Errc::invalid_argument, "client_id: longer than 256 bytes");
  }
  if (o.ca_file.empty() || o.cert_file.empty() || o.key_file.empty()) {
    return Error(Errc::invalid_argument,
                 "cloud.ca_file, cloud.cert_file and cloud.key_file are all required (mutual TLS)");
  }
  if (o.max_inflight < 1 || o.max_inflight > 65535) {
    return Error(Errc::invalid_argument, "cloud.max_inflight: must be 1..65535");
  }
  if (o.keepalive.count() < 5 || o.keepalive.count() > 65535) {
    return Error(Errc::invalid_argument, "cloud.keepalive: must be 5..65535 seconds");
  }
  if (o.session_expiry.count() < 0 || o.session_expiry.count() > 0xffffffffLL) {
    return Error(Errc::invalid_argument, "cloud.session_expiry: out of range");
  }
  if (o.confirm == Confirm::receipt &&
      (o.receipt_timeout.count() <= 0 || o.max_unreceipted < 1)) {
    return Error(Errc::invalid_argument,
                 "cloud.receipt_timeout and max_unreceipted must be positive in receipt mode");
  }
  if (o.puback_timeout.count() <= 0 || o.connect_timeout.count() <= 0) {
    return Error(Errc::invalid_argument, "cloud.puback_timeout and connect_timeout must be positive");
  }
  if (o.backoff_initial.count() <= 0 || o.backoff_max < o.backoff_initial) {
    return Error(Errc::invalid_argument, "backoff: need 0 < backoff_initial <= backoff_max");
  }
  if (o.retry_initial.count() <= 0 || o.retry_max < o.retry_initial) {
    return Error(Errc::invalid_argument, "retry: need 0 < retry_initial <= retry_max");
  }
  if (o.max_control_bytes < 1024) {
    return Error(Errc::invalid_argument, "max_control_bytes: at least 1024");
  }
  return {};
}

std::string LinkStatus::toJson() const {
  json::Value v = json::Value::object();
  v.set("state", json::Value::string(std::string(linkStateName(state))));
  v.set("connected", json::Value::boolean(connected));
  v.set("url", json::Value::string(url));
  v.set("confirm", json::Value::string(confirm));
  v.set("last_error", json::Value::string(last_error));
  v.set("last_error_at", json::Value::string(last_error_at_ms ? formatRfc3339(last_error_at_ms)
                                                                : std::string()));
  v.set("since", json::Value::string(since_ms ? formatRfc3339(since_ms) : std::string()));
  v.set("next_retry_at",
        json::Value::string(next_retry_ms ? formatRfc3339(next_retry_ms) : std::string()));
  v.set("session_present", json::Value::boolean(session_present));
  v.set("in_flight", json::Value::integer(static_cast<int64_t>(in_flight)));
  v.set("awaiting_receipt", json::Value::integer(static_cast<int64_t>(awaiting_receipt)));
  v.set("published", json::Value::integer(static_cast<int64_t>(published)));
  v.set("resent", json::Value::integer(static_cast<int64_t>(resent)));
  v.set("acked", json::Value::integer(static_cast<int64_t>(acked)));
  v.set("dead_lettered", json::Value::integer(static_cast<int64_t>(dead_lettered)));
  v.set("retried", json::Value::integer(static_cast<int64_t>(retried)));
  json::Value codes = json::Value::object();
  for (const auto& [code, count] : reason_codes) {
    char key[8];
    std::snprintf(key, sizeof key, "0x%02X", static_cast<unsigned>(code) & 0xffu);
    codes.set(key, json::Value::integer(static_cast<int64_t>(count)));
  }
  v.set("reason_codes", std::move(codes));
  v.set("drain_rate", json::Value::number(drain_rate));
  v.set("connects", json::Value::integer(static_cast<int64_t>(connects)));
  v.set("reconnects", json::Value::integer(static_cast<int64_t>(reconnects)));
  v.set("watchdog_trips", json::Value::integer(static_cast<int64_t>(watchdog_trips)));
  v.set("receipts", json::Value::integer(static_cast<int64_t>(receipts)));
  v.set("receipts_invalid", json::Value::integer(static_cast<int64_t>(receipts_invalid)));
  v.set("control_received", json::Value::integer(static_cast<int64_t>(control_received)));
  v.set("control_rejected", json::Value::integer(static_cast<int64_t>(control_rejected)));
  v.set("store_errors", json::Value::integer(static_cast<int64_t>(store_errors)));
  v.set("broker_receive_maximum", json::Value::integer(broker_receive_maximum));
  return json::serialize(v);
}

namespace {

constexpr milliseconds kTick{500};
constexpr milliseconds kGracefulDisconnectTimeout{2000};
constexpr milliseconds kJoinTimeout{3000};
constexpr size_t kMaxControlInflight = 16;
constexpr size_t kMinReady = 64;
// Poison isolation: a record that makes the broker drop the connection (e.g. over mosquitto's
// message_size_limit: PUBACK 0x95 and a close, which libmosquitto may see as a broken pipe
// first) would otherwise come back first after every reconnect and block everything behind it.
constexpr int kPoisonStrikes = 2;
constexpr milliseconds kPoisonWindow{5000};
constexpr size_t kProbeMargin = 16;

struct InFlight {
  int64_t seq = 0;
  std::string msg_id;
  SteadyTime sent_at;
  uint32_t attempts = 0;
  bool receipted = false;  ///< receipt mode: the receipt came before the PUBACK
};

struct ControlItem {
  SteadyTime sent_at{};
  std::string topic;
  std::string payload;
  bool retain = false;
  bool is_status = false;
  CloudLink::PublishCallback done;
};

bool validCommandName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

struct CloudLink::Impl : std::enable_shared_from_this<CloudLink::Impl> {
  Impl(asio::io_context& io, store::QueueReader& reader, CloudLinkOptions options, ClockPtr clock,
       BrokerAddress address)
      : io_(io),
        strand_(asio::make_strand(io)),
        reader_(reader),
        options_(std::move(options)),
        clock_(clock ? std::move(clock) : Clock::system()),
        address_(std::move(address)),
        topics_(options_.tenant, options_.agent_id),
        log_("cloudlink", options_.agent_id),
        backoff_(options_.backoff_initial, options_.backoff_max),
        reconnect_timer_(strand_),
        tick_timer_(strand_) {
    status_.url = options_.url;
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
  void waitForIdleHandler() const {
    for (int spins = 0; busy_.load(); ++spins) {
      if (spins < 100) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(milliseconds(1));
      }
    }
  }

  SteadyTime steadyNow() const { return clock_->steady(); }

  std::string endpointName() const { return address_.host + ":" + std::to_string(address_.port); }

  template <class F>
  void updateStatus(F&& f) {
    f(status_);
  }

  void setState(LinkState state) {
    state_ = state;
    updateStatus([&](LinkStatus& s) {
      s.state = state;
      s.connected = state == LinkState::connected;
      s.since_ms = clock_->nowMs();
      if (state != LinkState::backoff) {
        s.next_retry_ms = 0;
      }
    });
  }

  void setLastError(const std::string& words) {
    updateStatus([&](LinkStatus& s) {
      s.last_error = words;
      s.last_error_at_ms = clock_->nowMs();
    });
  }

  void syncCounts() {
    updateStatus([&](LinkStatus& s) {
      s.in_flight = inflight_.size();
      s.awaiting_receipt = awaiting_receipt_.size();
    });
  }

  // ---------------------------------------------------------------- lifecycle

  void doStart() {
    if (started_) {
      return;
    }
    started_ = true;
    stopping_ = false;
    std::weak_ptr<Impl> weak = weak_from_this();
    reader_.setDeliverableListener([weak] {
      // Store writer thread: only post.
      if (auto self = weak.lock()) {
        self->post([self] {
          self->deliverable_hint_ = true;
          self->pump();
        });
      }
    });
    scheduleTick();
    connectNow();
  }

  void connectNow() {
    const uint64_t generation = ++generation_;
    detail::SessionConfig cfg;
    cfg.host = address_.host;
    cfg.port = address_.port;
    cfg.client_id = options_.client_id.empty() ? options_.agent_id : options_.client_id;
    cfg.keepalive_s = static_cast<int>(options_.keepalive.count());
    cfg.session_expiry_s = static_cast<uint32_t>(options_.session_expiry.count());
    cfg.send_maximum = static_cast<int>(std::min<size_t>(options_.max_inflight + kMaxControlInflight, 65535));
    cfg.will_topic = topics_.status();
    cfg.will_payload = "{\"state\":\"offline\"}";
    cfg.tls = {address_.host, options_.ca_file, options_.cert_file, options_.key_file};
    cfg.max_incoming_bytes = options_.max_control_bytes;

    std::weak_ptr<Impl> weak = weak_from_this();
    auto session = std::make_shared<MqttSession>(std::move(cfg), [weak, generation](SessionEvent ev) {
      // Session thread: copy and post only.
      if (auto self = weak.lock()) {
        self->post([self, generation, ev = std::move(ev)]() mutable {
          self->onSessionEvent(generation, std::move(ev));
        });
      }
    });
    session_ = session;
    tcp_up_ = false;
    slow_connect_reported_ = false;
    session_broken_ = false;
    session_started_at_ = steadyNow();
    setState(LinkState::connecting);
    log_.info("link.connecting", {{"url", options_.url}});
    session->start();
  }

  std::shared_ptr<MqttSession> session() const { return session_; }

  void abortSession(const std::string& words) {
    if (auto s = session()) {
      if (!words.empty()) {
        abort_words_ = words;
      }
      s->abort();
    }
  }

  void onSessionEvent(uint64_t generation, SessionEvent ev) {
    if (generation != generation_) {
      return;  // a late event of a finished session
    }
    switch (ev.type) {
      case SessionEvent::Type::tcp_connected:
        tcp_up_ = true;
        tcp_up_at_ = steadyNow();
        break;
      case SessionEvent::Type::connack:
        if (ev.code == 0) {
          onConnected(ev);
        } else {
          setLastError(ev.error);
        }
        break;
      case SessionEvent::Type::pubacks_ready:
        testFaultPoint("cloud_link.puback");
        if (auto s = session()) {
          for (const auto& [mid, rc] : s->takePubacks()) {
            onPuback(mid, rc);
          }
          syncCounts();
          pump();
          flushControl();
          advanceStop();
        }
        break;
      case SessionEvent::Type::message: onMessage(std::move(ev)); break;
      case SessionEvent::Type::suback: onSuback(ev); break;
      case SessionEvent::Type::ended: onSessionEnded(std::move(ev.error)); break;
    }
  }

  void onConnected(const SessionEvent& ev) {
    if (stopping_) {
      return;  // stop() already asked this session to go away
    }
    setState(LinkState::connected);
    tls_causes_.forget(endpointName());
    connected_at_ = steadyNow();
    last_puback_at_ = connected_at_;
    records_accepted_ = false;
    denied_on_connection_ = false;
    updateStatus([&](LinkStatus& s) {
      ++s.connects;
      s.session_present = ev.session_present;
      s.broker_receive_maximum = ev.receive_maximum;
    });
    log_.info("link.connected", {{"url", options_.url},
                                 {"session_present", ev.session_present},
                                 {"receive_maximum", ev.receive_maximum}});
    if (auto s = session()) {
      int mid = 0;
      const int rc = s->subscribe(&mid, {topics_.configSet(), topics_.commandFilter(),
                                         topics_.receipt()});
      if (rc == MOSQ_ERR_SUCCESS) {
        subscribe_mid_ = mid;
      }
    }
    queueStatus(currentStatusJson());
    last_status_at_ = steadyNow();
    deliverable_hint_ = true;
    flushControl();
    pump();
  }

  void onSuback(const SessionEvent& ev) {
    if (ev.code != subscribe_mid_) {
      return;
    }
    static const char* kNames[] = {"P/config/set", "P/cmd/+", "P/receipt"};
    for (size_t i = 0; i < ev.granted.size() && i < 3; ++i) {
      if (ev.granted[i] >= 0x80) {
        const std::string words = std::string("broker refused subscription to ") + kNames[i] +
                                  ": " + reasonName(ev.granted[i]);
        setLastError(words);
        log_.warn("link.subscribe_refused", {{"filter", kNames[i]}, {"code", ev.granted[i]}});
      }
    }
  }

  /// `join_timeout` 0 abandons a thread that has not finished (stuck in a blocking connect).
  std::string deniedWords() const {
    return "broker refused: not authorized to publish records (no record accepted on this "
           "connection; check the broker's ACL for " + topics_.prefix() + "/up/#)";
  }

  void onSessionEnded(std::string words, milliseconds join_timeout = kJoinTimeout) {
    std::shared_ptr<MqttSession> ended;
    ended.swap(session_);
    ++generation_;  // ignore anything else the old session still had queued
    if (ended) {
      ended->closeSink();
      if (!ended->join(join_timeout)) {
        log_.warn("link.thread_abandoned", {{"reason", "blocked in connect"}});
      }
    }
    if (!abort_words_.empty()) {
      words = abort_words_;
      abort_words_.clear();
    }
    const bool was_connected = connected_at_ != SteadyTime{};
    if (!words.empty() && was_connected && denied_on_connection_ && !records_accepted_) {
      words = deniedWords() + "; the broker then closed the connection";
    }
    if (!words.empty()) {
      words = tls_causes_.explain(endpointName(), words);
      setLastError(words);
      log_.warn("link.disconnected", {{"reason", words}});
    } else {
      log_.info("link.disconnected", {{"reason", "requested"}});
    }
    if (was_connected && steadyNow() - connected_at_ >= options_.backoff_reset_after) {
      backoff_.reset();
    }
    connected_at_ = SteadyTime{};

    // mosquitto (2.0.11) closes the connection right after answering an ACL-denied publish
    // with PUBACK 0x87: that close is explained, the other records in flight are not suspects.
    if (!words.empty() && was_connected && !stopping_ && !denied_on_connection_) {
      suspectInflight(words);
    }

    // Everything in flight goes back to the store (same msg-ids on resend).
    const size_t returned = inflight_.size() + awaiting_receipt_.size() + ready_.size();
    ready_.clear();  // leased but never sent: releaseAll() returns them
    if (released_seqs_.size() > 200000) {
      released_seqs_.clear();  // only feeds the "resent" counter; keep memory bounded
    }
    for (auto& [mid, f] : inflight_) {
      released_seqs_.insert(f.seq);
    }
    for (auto& [id, seq] : awaiting_receipt_) {
      released_seqs_.insert(seq);
    }
    inflight_.clear();
    inflight_by_msg_.clear();
    awaiting_receipt_.clear();
    receipt_queue_.clear();
    for (auto it = control_inflight_.begin(); it != control_inflight_.end(); ++it) {
      control_queue_.push_front(std::move(it->second));
    }
    control_inflight_.clear();
    syncCounts();
    if (returned > 0) {
      log_.info("link.release", {{"records", returned}});
    }
    flushAcks(/*force=*/true);
    requestRelease();

    if (stopping_) {
      state_ = LinkState::stopping;
      stop_phase_ = StopPhase::releasing;
      advanceStop();
      return;
    }
    scheduleReconnect();
  }

  /// The connection died with records in flight: one of them may be what kills it. Those
  /// records become suspects and the next connection sends one record at a time until every
  /// suspect got an answer; a suspect that was alone in flight when the connection died
  /// kPoisonStrikes times is dead-lettered instead of being sent again.
  void suspectInflight(const std::string& words) {
    if (inflight_.empty()) {
      return;
    }
    const SteadyTime now = steadyNow();
    if (probing() && inflight_.size() == 1) {
      const InFlight& f = inflight_.begin()->second;
      auto it = suspects_.find(f.msg_id);
      if (it != suspects_.end() && now - f.sent_at <= kPoisonWindow &&
          ++it->second >= kPoisonStrikes) {
        convicted_[f.msg_id] = words;
        log_.warn("record.poison", {{"msg_id", f.msg_id}, {"strikes", it->second}});
      }
    } else {
      for (const auto& [mid, f] : inflight_) {
        suspects_.emplace(f.msg_id, 0);
      }
    }
    probe_budget_ = suspects_.size() + kProbeMargin;
    log_.info("link.probe", {{"suspects", suspects_.size()}});
  }

  bool probing() const { return !suspects_.empty(); }

  void scheduleReconnect() {
    const milliseconds delay = backoff_.next();
    setState(LinkState::backoff);
    const int64_t at = clock_->nowMs() + delay.count();
    updateStatus([&](LinkStatus& s) { s.next_retry_ms = at; });
    log_.info("link.retry_in", {{"ms", static_cast<int64_t>(delay.count())}});
    reconnect_timer_.expires_after(delay);
    reconnect_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->runHandler("cloud_link.reconnect", [&] {
        if (ec || self->stopping_ || self->state_ != LinkState::backoff) {
          return;
        }
        self->updateStatus([](LinkStatus& s) { ++s.reconnects; });
        self->connectNow();
      });
    });
  }

  // ---------------------------------------------------------------- leasing and publishing

  bool canPublish() const {
    return state_ == LinkState::connected && !stopping_ && !session_broken_;
  }

  /// Records leased ahead (`ready_`) keep the window full without a store round trip per
  /// PUBACK; at most readyTarget() are held.
  bool canLease() const {
    if (!canPublish() || lease_outstanding_ || release_outstanding_ || need_release_ ||
        !deliverable_hint_) {
      return false;
    }
    if (ready_.size() >= readyTarget()) {
      return false;
    }
    if (options_.confirm == Confirm::receipt &&
        awaiting_receipt_.size() + inflight_.size() + ready_.size() >= options_.max_unreceipted) {
      return false;
    }
    return true;
  }

  size_t window() const { return probing() ? 1 : options_.max_inflight; }
  /// How many leased records to hold ready: a window's worth, but at least kMinReady so a
  /// small window does not wait for a store round trip after every PUBACK.
  size_t readyTarget() const { return std::max(options_.max_inflight, kMinReady); }

  void pump() {
    while (!ready_.empty() && inflight_.size() < window() && canPublish()) {
      store::Leased next = std::move(ready_.front());
      ready_.pop_front();
      publishRecord(std::move(next));
    }
    if (!canLease()) {
      return;
    }
    size_t n = readyTarget() - ready_.size();
    if (options_.confirm == Confirm::receipt) {
      n = std::min(n, options_.max_unreceipted - awaiting_receipt_.size() - inflight_.size() -
                          ready_.size());
    }
    lease_outstanding_ = true;
    deliverable_hint_ = false;
    lease_requested_ = n;
    auto self = shared_from_this();
    reader_.lease(n, [self](Result<std::vector<store::Leased>> result) {
      self->post([self, result = std::move(result)]() mutable {
        self->onLeased(std::move(result));
      });
    });
  }

  void onLeased(Result<std::vector<store::Leased>> result) {
    lease_outstanding_ = false;
    if (!result) {
      updateStatus([](LinkStatus& s) { ++s.store_errors; });
      log_.error("store.lease_failed", {{"error", result.error().describe()}});
      lease_retry_at_ = steadyNow() + milliseconds(1000);
      return;
    }
    std::vector<store::Leased>& records = result.value();
    if (need_release_) {
      requestRelease();  // the session ended while this lease was outstanding
      return;
    }
    if (!canPublish()) {
      // Covered by the releaseAll() that follows the end of the session / stop.
      advanceStop();
      return;
    }
    if (records.size() >= lease_requested_) {
      deliverable_hint_ = true;
    }
    for (store::Leased& leased : records) {
      ready_.push_back(std::move(leased));
    }
    pump();
    syncCounts();
  }

  void publishRecord(store::Leased&& leased) {
    auto s = session();
    if (!s) {
      session_broken_ = true;
      return;
    }
    const store::Record& r = leased.record;
    if (auto c = convicted_.find(r.msg_id); c != convicted_.end()) {
      const int strikes = suspects_[r.msg_id];
      const std::string last = std::move(c->second);
      convicted_.erase(c);
      suspects_.erase(r.msg_id);
      deadLetter(leased.seq, r.msg_id, 0,
                 "the connection broke each time this record was sent alone (" +
                     std::to_string(strikes) + " times, last: " + last +
                     "); the broker probably refuses it (e.g. over its message size limit)");
      return;
    }
    if (probing()) {
      if (probe_budget_ == 0) {
        suspects_.clear();  // the suspects were delivered some other way
      } else {
        --probe_budget_;
      }
    }
    mosquitto_property* props = nullptr;
    int prc = MOSQ_ERR_SUCCESS;
    for (const auto& [name, value] : userProperties(r)) {
      prc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, name.c_str(),
                                               value.c_str());
      if (prc != MOSQ_ERR_SUCCESS) {
        break;
      }
    }
    if (prc == MOSQ_ERR_SUCCESS) {
      prc = mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE,
                                          std::string(contentTypeFor(r.format)).c_str());
    }
    if (prc != MOSQ_ERR_SUCCESS) {
      mosquitto_property_free_all(&props);
      deadLetter(leased.seq, r.msg_id, 0,
                 "metadata not usable as MQTT user properties (" +
                     std::string(mosquitto_strerror(prc)) + ")");
      return;
    }
    int mid = 0;
    const int rc = s->publish(&mid, topics_.up(r.kind), r.payload.reveal(), false, props);
    mosquitto_property_free_all(&props);
    switch (rc) {
      case MOSQ_ERR_SUCCESS: {
        const bool resend = leased.attempts > 0 || released_seqs_.erase(leased.seq) > 0;
        InFlight f;
        f.seq = leased.seq;
        f.msg_id = r.msg_id;
        f.sent_at = steadyNow();
        f.attempts = leased.attempts;
        if (options_.confirm == Confirm::receipt) {
          inflight_by_msg_[f.msg_id] = mid;
        }
        inflight_.emplace(mid, std::move(f));
        updateStatus([&](LinkStatus& st) {
          ++st.published;
          if (resend) {
            ++st.resent;
          }
        });
        return;
      }
      case MOSQ_ERR_NO_CONN:
        // The connection is going away; releaseAll() after `ended` returns this record.
        session_broken_ = true;
        return;
      case MOSQ_ERR_OVERSIZE_PACKET:
        deadLetter(leased.seq, r.msg_id, 0x95,
                   "packet too large for the broker (maximum packet size " +
                       std::to_string(s->maximumPacketSize()) + " bytes)");
        return;
      case MOSQ_ERR_PAYLOAD_SIZE:
        deadLetter(leased.seq, r.msg_id, 0, "payload larger than MQTT allows");
        return;
      case MOSQ_ERR_NOMEM:
        retryRecord(leased.seq, r.msg_id, leased.attempts, -1, "out of memory while publishing");
        return;
      case MOSQ_ERR_QOS_NOT_SUPPORTED:
        setLastError("broker does not support QoS 1");
        retryRecord(leased.seq, r.msg_id, leased.attempts, -1, "broker does not support QoS 1");
        return;
      default:
        deadLetter(leased.seq, r.msg_id, 0,
                   std::string("publish rejected by the MQTT library: ") + mosquitto_strerror(rc));
        return;
    }
  }

  milliseconds retryDelay(uint32_t attempts) {
    int64_t d = options_.retry_initial.count();
    for (uint32_t i = 0; i < attempts && d < options_.retry_max.count(); ++i) {
      d *= 2;
    }
    d = std::min<int64_t>(d, options_.retry_max.count());
    std::uniform_int_distribution<int64_t> dist(d / 2, d);
    return milliseconds(dist(rng_));
  }

  void retryRecord(int64_t seq, const std::string& msg_id, uint32_t attempts, int code,
                   std::string reason) {
    const milliseconds delay = retryDelay(attempts);
    updateStatus([&](LinkStatus& s) {
      ++s.retried;
      if (code >= 0x80) {
        ++s.reason_codes[code];
      }
    });
    log_.warn("record.retry", {{"msg_id", msg_id},
                               {"code", code},
                               {"reason", reason},
                               {"retry_ms", static_cast<int64_t>(delay.count())}});
    retry_due_.push(steadyNow() + delay);
    auto self = shared_from_this();
    reader_.nack(seq, delay, std::move(reason), [self](Status st) {
      self->post([self, st = std::move(st)] {
        self->storeResult("nack", st);
        self->deliverable_hint_ = true;
        self->pump();
      });
    });
  }

  void deadLetter(int64_t seq, const std::string& msg_id, int code, std::string reason) {
    updateStatus([&](LinkStatus& s) {
      ++s.dead_lettered;
      if (code >= 0x80) {
        ++s.reason_codes[code];
      }
    });
    log_.warn("record.dead_letter", {{"msg_id", msg_id}, {"code", code}, {"reason", reason}});
    auto self = shared_from_this();
    reader_.deadLetter(seq, std::move(reason), [self](Status st) {
      self->post([self, st = std::move(st)] { self->storeResult("dead_letter", st); });
    });
  }

  void storeResult(const char* op, const Status& st) {
    if (!st) {
      updateStatus([](LinkStatus& s) { ++s.store_errors; });
      log_.error("store.error", {{"op", op}, {"error", st.error().describe()}});
    }
  }

  void onPuback(int mid, int rc) {
    last_puback_at_ = steadyNow();
    if (auto c = control_inflight_.find(mid); c != control_inflight_.end()) {
      ControlItem item = std::move(c->second);
      control_inflight_.erase(c);
      if (item.done) {
        if (rc < 0x80) {
          item.done(Status{});
        } else {
          item.done(Error(Errc::unavailable, pubackReason(rc)));
        }
      }
      if (rc >= 0x80) {
        updateStatus([&](LinkStatus& s) { ++s.reason_codes[rc]; });
        log_.warn("control.puback_error", {{"topic", item.topic}, {"code", rc}});
      }
      return;
    }
    auto it = inflight_.find(mid);
    if (it == inflight_.end()) {
      return;  // not ours (e.g. a mid of a message published before a stop)
    }
    InFlight f = std::move(it->second);
    inflight_.erase(it);
    if (!suspects_.empty()) {
      suspects_.erase(f.msg_id);  // the broker answered: not what kills the connection
    }
    if (options_.confirm == Confirm::receipt) {
      inflight_by_msg_.erase(f.msg_id);
    }
    PubackAction action = classifyPuback(rc);
    if (rc == 0x87) {
      denied_on_connection_ = true;
    }
    if (action == PubackAction::dead_letter && rc == 0x87 && !records_accepted_) {
      // Not authorized, and the broker has accepted no record on this connection: the ACL
      // denies this agent everything (a broker-side misconfiguration), not this record's topic.
      // Dead-lettering would move the whole queue aside; retry with back-off instead, so
      // delivery resumes by itself once the ACL is fixed.
      action = PubackAction::retry;
      setLastError(deniedWords());
    }
    switch (action) {
      case PubackAction::delivered:
        records_accepted_ = true;
        if (options_.confirm == Confirm::broker || f.receipted) {
          pending_acks_.push_back(f.seq);
          scheduleAckFlush();
        } else {
          awaiting_receipt_.emplace(f.msg_id, f.seq);
          receipt_queue_.emplace_back(steadyNow() + options_.receipt_timeout, f.msg_id);
        }
        break;
      case PubackAction::retry:
        retryRecord(f.seq, f.msg_id, f.attempts, rc, pubackReason(rc));
        break;
      case PubackAction::dead_letter: deadLetter(f.seq, f.msg_id, rc, pubackReason(rc)); break;
    }
  }

  // ---------------------------------------------------------------- acks to the store

  void scheduleAckFlush() {
    if (ack_flush_posted_) {
      return;
    }
    ack_flush_posted_ = true;
    // Posting lets every PUBACK already queued on the strand join this batch.
    post([this] {
      ack_flush_posted_ = false;
      flushAcks(false);
    });
  }

  /// One ack() call per batch; while one is being committed the next batch accumulates (the
  /// store group-commits, so commits never happen per PUBACK).
  void flushAcks(bool force) {
    if (pending_acks_.empty() || (acks_outstanding_ > 0 && !force)) {
      return;
    }
    std::vector<int64_t> batch;
    batch.swap(pending_acks_);
    const size_t n = batch.size();
    ++acks_outstanding_;
    auto self = shared_from_this();
    reader_.ack(std::move(batch), [self, n](Status st) {
      self->post([self, n, st = std::move(st)] {
        --self->acks_outstanding_;
        if (st) {
          self->acked_total_ += n;
          self->updateStatus([&](LinkStatus& s) { s.acked += n; });
        } else {
          self->storeResult("ack", st);
        }
        self->flushAcks(false);
        self->advanceStop();
      });
    });
  }

  void requestRelease() {
    if (lease_outstanding_) {
      need_release_ = true;
      return;
    }
    need_release_ = false;
    release_outstanding_ = true;
    auto self = shared_from_this();
    reader_.releaseAll([self](Status st) {
      self->post([self, st = std::move(st)] {
        self->release_outstanding_ = false;
        self->storeResult("release_all", st);
        self->deliverable_hint_ = true;
        self->pump();
        self->advanceStop();
      });
    });
  }

  // ---------------------------------------------------------------- incoming messages

  void onMessage(SessionEvent ev) {
    const std::string& topic = ev.topic;
    if (topic == topics_.receipt()) {
      onReceipt(ev);
      return;
    }
    const bool is_config = topic == topics_.configSet();
    const std::string cmd_prefix = topics_.prefix() + "/cmd/";
    const bool is_cmd = !is_config && topic.rfind(cmd_prefix, 0) == 0;
    std::string name = is_cmd ? topic.substr(cmd_prefix.size()) : std::string();
    std::string problem;
    if (!is_config && !is_cmd) {
      problem = "unexpected topic";
    } else if (ev.oversize) {
      problem = "payload of " + std::to_string(ev.payload_size) + " bytes exceeds the limit of " +
                std::to_string(options_.max_control_bytes);
    } else if (is_cmd && (name == "result" || !validCommandName(name))) {
      problem = "invalid command name";
    } else if (sink_ == nullptr) {
      problem = "no control sink";
    }
    if (!problem.empty()) {
      updateStatus([](LinkStatus& s) { ++s.control_rejected; });
      log_.warn("control.rejected", {{"kind", is_config ? "config" : "command"},
                                     {"size", ev.payload_size},
                                     {"reason", problem}});
      return;
    }
    updateStatus([](LinkStatus& s) { ++s.control_received; });
    log_.info("control.received",
              {{"kind", is_config ? "config" : "command"}, {"name", name}, {"size", ev.payload_size}});
    if (is_config) {
      sink_->onConfigDocument(std::move(ev.payload));
    } else {
      sink_->onCommand(std::move(name), std::move(ev.payload));
    }
  }

  void onReceipt(const SessionEvent& ev) {
    ReceiptLimits limits;
    limits.max_bytes = options_.max_control_bytes;
    Result<std::vector<std::string>> ids =
        ev.oversize ? Result<std::vector<std::string>>(Error(
                          Errc::limit, "receipt of " + std::to_string(ev.payload_size) +
                                           " bytes exceeds the limit"))
                    : parseReceipt(ev.payload, limits);
    if (!ids) {
      updateStatus([](LinkStatus& s) { ++s.receipts_invalid; });
      log_.warn("receipt.invalid", {{"size", ev.payload_size}, {"error", ids.error().message}});
      return;
    }
    updateStatus([](LinkStatus& s) { ++s.receipts; });
    if (options_.confirm != Confirm::receipt) {
      return;  // broker mode: records are released on PUBACK already
    }
    size_t matched = 0;
    for (const std::string& id : ids.value()) {
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
    log_.debug("receipt.accepted", {{"ids", ids->size()}, {"matched", matched}});
    if (matched > 0) {
      scheduleAckFlush();
      syncCounts();
      pump();
    }
  }

  // ---------------------------------------------------------------- control publishing

  std::string currentStatusJson() {
    if (status_provider_) {
      std::string s = guardInvariant("cloud_link.status_provider", status_provider_);
      if (!s.empty()) {
        return s;
      }
    }
    json::Value v = json::Value::object();
    v.set("state", json::Value::string("online"));
    v.set("agent_id", json::Value::string(options_.agent_id));
    v.set("tenant", json::Value::string(options_.tenant));
    v.set("at", json::Value::string(formatRfc3339(clock_->nowMs())));
    return json::serialize(v);
  }

  void queueStatus(std::string json) {
    ControlItem item;
    item.topic = topics_.status();
    item.payload = std::move(json);
    item.retain = true;
    item.is_status = true;
    queueControl(std::move(item));
  }

  void queueControl(ControlItem item) {
    if (item.is_status) {
      // Only the newest status matters.
      control_queue_.erase(std::remove_if(control_queue_.begin(), control_queue_.end(),
                                          [](const ControlItem& c) { return c.is_status; }),
                           control_queue_.end());
    } else if (control_queue_.size() >= options_.max_control_queue) {
      if (item.done) {
        item.done(Error(Errc::full, "cloud link queue full (" +
                                        std::to_string(options_.max_control_queue) + " messages)"));
      }
      return;
    }
    control_queue_.push_back(std::move(item));
    flushControl();
  }

  void flushControl() {
    if (state_ != LinkState::connected) {
      return;
    }
    auto s = session();
    if (!s) {
      return;
    }
    while (!control_queue_.empty() && control_inflight_.size() < kMaxControlInflight) {
      ControlItem& item = control_queue_.front();
      mosquitto_property* props = nullptr;
      mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, "application/json");
      int mid = 0;
      const int rc = s->publish(&mid, item.topic, item.payload, item.retain, props);
      mosquitto_property_free_all(&props);
      if (rc == MOSQ_ERR_NO_CONN) {
        return;
      }
      ControlItem taken = std::move(item);
      control_queue_.pop_front();
      if (rc == MOSQ_ERR_SUCCESS) {
        taken.sent_at = steadyNow();
        control_inflight_.emplace(mid, std::move(taken));
      } else if (taken.done) {
        taken.done(Error(Errc::invalid_argument,
                         std::string("cannot publish: ") + mosquitto_strerror(rc)));
      }
    }
  }

  // ---------------------------------------------------------------- timers and watchdog

  void scheduleTick() {
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

  void onTick() {
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
    if (state_ == LinkState::connected && !stopping_ && abort_words_.empty() &&
        (!inflight_.empty() || !control_inflight_.empty()) &&
        now - last_puback_at_ > options_.puback_timeout) {
      SteadyTime oldest = now;
      for (const auto& [mid, f] : inflight_) {
        oldest = std::min(oldest, f.sent_at);
      }
      for (const auto& [mid, c] : control_inflight_) {
        oldest = std::min(oldest, c.sent_at);
      }
      if (now - oldest > options_.puback_timeout) {
        const size_t n = inflight_.size() + control_inflight_.size();
        const std::string words = "link stalled: no PUBACK for " +
                                  std::to_string(options_.puback_timeout.count()) + " ms with " +
                                  std::to_string(n) + " message(s) in flight; reconnecting";
        updateStatus([](LinkStatus& s) { ++s.watchdog_trips; });
        log_.warn("watchdog.puback_timeout", {{"in_flight", n}});
        abortSession(words);
      }
    }
    // A TCP connect that gets no answer at all (packets dropped) cannot be interrupted; say so.
    if (state_ == LinkState::connecting && !tcp_up_ && !slow_connect_reported_ &&
        now - session_started_at_ > options_.connect_timeout) {
      slow_connect_reported_ = true;
      setLastError("no answer from " + address_.host + ":" + std::to_string(address_.port) +
                   " for " + std::to_string(options_.connect_timeout.count()) +
                   " ms (TCP connect pending; a firewall may be dropping the packets)");
    }
    // Receipt timeouts: put unreceipted records back for a resend with the same msg-id.
    size_t timed_out = 0;
    while (!receipt_queue_.empty() && receipt_queue_.front().first <= now) {
      const std::string id = std::move(receipt_queue_.front().second);
      receipt_queue_.pop_front();
      auto it = awaiting_receipt_.find(id);
      if (it == awaiting_receipt_.end()) {
        continue;
      }
      const int64_t seq = it->second;
      awaiting_receipt_.erase(it);
      updateStatus([](LinkStatus& s) { ++s.retried; });
      if (++timed_out == 1) {
        log_.info("record.receipt_timeout", {{"first_msg_id", id}});
      }
      auto self = shared_from_this();
      released_seqs_.insert(seq);
      reader_.nack(seq, milliseconds(0), "receipt timeout", [self](Status st) {
        self->post([self, st = std::move(st)] {
          self->storeResult("nack", st);
          self->deliverable_hint_ = true;
          self->pump();
        });
      });
    }
    if (timed_out > 1) {
      log_.info("record.receipt_timeout", {{"count", timed_out}});
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
        log_.warn("link.stop_drain_timeout", {{"in_flight", inflight_.size()}});
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

  // ---------------------------------------------------------------- stop

  enum class StopPhase { none, draining, committing, closing, releasing, done };

  void doStop(std::function<void()> done) {
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
    log_.info("link.stopping", {{"in_flight", inflight_.size()}});
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

  void advanceStop() {
    if (!stopping_) {
      return;
    }
    if (stop_phase_ == StopPhase::draining &&
        (inflight_.empty() && control_inflight_.empty())) {
      stop_phase_ = StopPhase::committing;
    }
    if (stop_phase_ == StopPhase::committing) {
      flushAcks(true);
      if (acks_outstanding_ == 0 && pending_acks_.empty()) {
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

  void finishStop() {
    stop_phase_ = StopPhase::none;
    stopping_ = false;
    started_ = false;
    tick_timer_.cancel();
    reconnect_timer_.cancel();
    reader_.setDeliverableListener({});
    setState(LinkState::stopped);
    std::deque<ControlItem> pending;
    pending.swap(control_queue_);
    for (ControlItem& item : pending) {
      if (item.done) {
        item.done(Error(Errc::closed, "cloud link stopped"));
      }
    }
    log_.info("link.stopped");
    auto callbacks = std::move(stop_callbacks_);
    stop_callbacks_.clear();
    for (auto& cb : callbacks) {
      cb();
    }
  }

  /// ~CloudLink, on any thread (the strand included, e.g. from a stop() callback). After
  /// destroyed_ is set every handler returns at once; once the one running right now (on
  /// another thread) has finished, this thread is the only one touching the state.
  void shutdownNow() {
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

  // ---------------------------------------------------------------- state

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  store::QueueReader& reader_;
  const CloudLinkOptions options_;
  const ClockPtr clock_;
  const BrokerAddress address_;
  const Topics topics_;
  const log::Logger log_;

  ControlSink* sink_ = nullptr;
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

  std::unordered_map<int, InFlight> inflight_;         ///< mid -> record awaiting PUBACK
  std::unordered_map<std::string, int> inflight_by_msg_;  ///< receipt mode: msg-id -> mid
  std::unordered_map<std::string, int64_t> awaiting_receipt_;  ///< msg-id -> seq
  std::deque<std::pair<SteadyTime, std::string>> receipt_queue_;  ///< deadline, msg-id
  std::unordered_set<int64_t> released_seqs_;  ///< returned to the store: next publish is a resend
  std::unordered_map<std::string, int> suspects_;  ///< msg-id -> solo connection deaths
  std::unordered_map<std::string, std::string> convicted_;  ///< msg-id -> last error; dead-letter when leased
  size_t probe_budget_ = 0;
  std::priority_queue<SteadyTime, std::vector<SteadyTime>, std::greater<>> retry_due_;
  SteadyTime lease_retry_at_{};

  std::vector<int64_t> pending_acks_;
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

  std::deque<ControlItem> control_queue_;
  std::unordered_map<int, ControlItem> control_inflight_;

  LinkStatus status_;
};

// -------------------------------------------------------------------- CloudLink

Result<std::unique_ptr<CloudLink>> CloudLink::create(asio::io_context& io,
                                                     store::QueueReader& reader,
                                                     CloudLinkOptions options, ClockPtr clock) {
  PSA_TRY(validateOptions(options));
  auto address = parseBrokerUrl(options.url);
  auto impl = std::make_shared<Impl>(io, reader, std::move(options), std::move(clock),
                                     std::move(address).value());
  return std::unique_ptr<CloudLink>(new CloudLink(std::move(impl)));
}

CloudLink::CloudLink(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

CloudLink::~CloudLink() {
  guardInvariant("cloud_link.destructor", [this] { impl_->shutdownNow(); });
}

void CloudLink::setControlSink(ControlSink* sink) {
  auto impl = impl_;
  impl->post([impl, sink] { impl->sink_ = sink; });
}

void CloudLink::setStatusProvider(std::function<std::string()> provider) {
  auto impl = impl_;
  impl->post([impl, provider = std::move(provider)]() mutable {
    impl->status_provider_ = std::move(provider);
  });
}

void CloudLink::start() {
  auto impl = impl_;
  impl->post([impl] { impl->doStart(); });
}

void CloudLink::stop(std::function<void()> done) {
  auto impl = impl_;
  impl->post([impl, done = std::move(done)]() mutable { impl->doStop(std::move(done)); });
}

LinkStatus CloudLink::status() const {
  Impl* impl = impl_.get();
  return impl->call([impl] { return impl->status_; });
}

void CloudLink::publishStatus(std::string json) {
  auto impl = impl_;
  impl->post([impl, json = std::move(json)]() mutable { impl->queueStatus(std::move(json)); });
}

namespace {
void publishOn(const std::shared_ptr<CloudLink::Impl>& impl, std::string topic, std::string json,
               CloudLink::PublishCallback done);
}

void CloudLink::publishConfigState(std::string json, PublishCallback done) {
  publishOn(impl_, impl_->topics_.configState(), std::move(json), std::move(done));
}

void CloudLink::publishCommandResult(std::string json, PublishCallback done) {
  publishOn(impl_, impl_->topics_.commandResult(), std::move(json), std::move(done));
}

void CloudLink::publishAudit(std::string json, PublishCallback done) {
  publishOn(impl_, impl_->topics_.audit(), std::move(json), std::move(done));
}

namespace {
void publishOn(const std::shared_ptr<CloudLink::Impl>& impl, std::string topic, std::string json,
               CloudLink::PublishCallback done) {
  impl->post([impl, topic = std::move(topic), json = std::move(json),
                  done = std::move(done)]() mutable {
    ControlItem item;
    item.topic = std::move(topic);
    item.payload = std::move(json);
    item.done = std::move(done);
    impl->queueControl(std::move(item));
  });
}
}  // namespace

}  // namespace psa::cloudlink
