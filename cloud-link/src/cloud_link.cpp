// CloudLink: the public API, the connection lifecycle (connect, CONNACK, subscriptions,
// disconnects and back-off), incoming messages and P/status. See cloud_link_impl.h for the
// other files of the link.
#include "psa/cloudlink/cloud_link.h"

#include <iterator>

#include "cloud_link_impl.h"
#include "psa/cloudlink/envelope.h"
#include "psa/store/json.h"
#include "psa/store/test_fault.h"

namespace psa::cloudlink {

void CloudLink::Impl::waitForIdleHandler() const {
  for (int spins = 0; busy_.load(); ++spins) {
    if (spins < 100) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
}

void CloudLink::Impl::setState(LinkState state) {
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

void CloudLink::Impl::setLastError(const std::string& words) {
  updateStatus([&](LinkStatus& s) {
    s.last_error = words;
    s.last_error_at_ms = clock_->nowMs();
  });
}

void CloudLink::Impl::syncCounts() {
  updateStatus([&](LinkStatus& s) {
    s.in_flight = window_.inFlight();
    s.awaiting_receipt = window_.awaitingReceipt();
  });
}

void CloudLink::Impl::doStart() {
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

void CloudLink::Impl::connectNow() {
  const uint64_t generation = ++generation_;
  redirected_ = std::move(next_redirect_);
  next_redirect_.reset();
  status_.url = currentUrl();
  detail::SessionConfig cfg;
  cfg.host = address().host;
  cfg.port = address().port;
  cfg.client_id = options_.client_id.empty() ? options_.agent_id : options_.client_id;
  cfg.keepalive_s = static_cast<int>(options_.keepalive.count());
  cfg.session_expiry_s = static_cast<uint32_t>(options_.session_expiry.count());
  cfg.send_maximum = static_cast<int>(
      std::min<size_t>(options_.max_inflight + ControlChannel::kMaxInflight, 65535));
  cfg.will_topic = topics_.status();
  cfg.will_payload = "{\"state\":\"offline\"}";
  cfg.will_retain = retain_available_;
  cfg.tls = {address().host, options_.ca_file, options_.cert_file, options_.key_file};
  cfg.credentials = detail::credentialSources(options_);
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
  log_.info("link.connecting", {{"url", currentUrl()}});
  session->start();
}

void CloudLink::Impl::abortSession(const std::string& words) {
  if (auto s = session()) {
    if (!words.empty()) {
      abort_words_ = words;
    }
    s->abort();
  }
}

void CloudLink::Impl::onSessionEvent(uint64_t generation, SessionEvent ev) {
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
      } else if (ev.code == 0x9A && retain_available_) {
        // The broker keeps no retained messages and refused our retained will: the next
        // attempt sends it unretained (and so the online status).
        retain_available_ = false;
        abortSession(ev.error + "; reconnecting with an unretained will");
        log_.warn("link.retain_unavailable",
                  {{"effect", "the online status and the will are published unretained"}});
      } else if ((ev.code == 0x9C || ev.code == 0x9D) &&
                 followServerReference(ev.code, ev.server_reference)) {
        abortSession(ev.error + "; the broker points to " + ev.server_reference +
                     " (followed for this connection only)");
      } else if (ev.code == 0x9B) {
        // Our will is QoS 1: a broker limited to QoS 0 refuses the CONNECT before it could
        // announce Maximum QoS. Same verdict as an announced QoS 0.
        BrokerLimits qos0;
        qos0.maximum_qos = 0;
        abortSession(brokerUnusable(qos0) + " (CONNACK: QoS not supported)");
        log_.error("link.broker_unusable", {{"reason", "CONNACK 0x9B QoS not supported"}});
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
    case SessionEvent::Type::message:
      onMessage(std::move(ev));
      break;
    case SessionEvent::Type::suback:
      onSuback(ev);
      break;
    case SessionEvent::Type::ended:
      if ((ev.code == 0x9C || ev.code == 0x9D) &&
          followServerReference(ev.code, ev.server_reference) && !ev.error.empty()) {
        ev.error += "; the broker points to " + ev.server_reference +
                    " (followed for this connection only)";
      }
      onSessionEnded(std::move(ev.error));
      break;
  }
}

void CloudLink::Impl::onConnected(const SessionEvent& ev) {
  if (stopping_) {
    return;  // stop() already asked this session to go away
  }
  if (std::string why = brokerUnusable(ev.limits); !why.empty()) {
    // Before anything is published: the records stay queued until the broker is fixed.
    log_.error("link.broker_unusable", {{"reason", why}, {"maximum_qos", ev.limits.maximum_qos}});
    updateStatus([&](LinkStatus& s) { s.broker = ev.limits; });
    abortSession(why);
    return;
  }
  broker_ = ev.limits;
  topic_aliases_.clear();  // aliases live as long as one connection
  if (!broker_.retain_available && retain_available_) {
    retain_available_ = false;
    log_.warn("link.retain_unavailable",
              {{"effect", "the online status and the will are published unretained"}});
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
    s.broker_receive_maximum = ev.limits.receive_maximum;
    s.broker = ev.limits;
  });
  log_.info("link.connected", {{"url", currentUrl()},
                               {"session_present", ev.session_present},
                               {"receive_maximum", ev.limits.receive_maximum},
                               {"window", recordWindow(options_.max_inflight, broker_)},
                               {"broker_limits", brokerLimitsText(ev.limits)}});
  if (auto s = session()) {
    int mid = 0;
    const int rc = s->subscribe(&mid, {topics_.configSet(), topics_.commandFilter(),
                                       topics_.receipt(), topics_.upgradeChunk(),
                                       topics_.downFilter()});
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

void CloudLink::Impl::onSuback(const SessionEvent& ev) {
  if (ev.code != subscribe_mid_) {
    return;
  }
  static const char* kNames[] = {"P/config/set", "P/cmd/+", "P/receipt", "P/upgrade/chunk",
                                 "P/down/+"};
  for (size_t i = 0; i < ev.granted.size() && i < std::size(kNames); ++i) {
    if (ev.granted[i] >= 0x80) {
      const std::string words = std::string("broker refused subscription to ") + kNames[i] + ": " +
                                reasonName(ev.granted[i]);
      setLastError(words);
      log_.warn("link.subscribe_refused", {{"filter", kNames[i]}, {"code", ev.granted[i]}});
    }
  }
}

std::string CloudLink::Impl::deniedWords() const {
  return "broker refused: not authorized to publish records (no record accepted on this "
         "connection; check the broker's ACL for " +
         topics_.prefix() + "/up/#)";
}

void CloudLink::Impl::onSessionEnded(std::string words, milliseconds join_timeout) {
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
  const size_t returned = window_.releaseAll() + ready_.size();
  ready_.clear();  // leased but never sent: releaseAll() returns them
  control_.requeueInflight();
  syncCounts();
  if (returned > 0) {
    log_.info("link.release", {{"records", returned}});
  }
  flushAcks(/*force=*/true);
  requestRelease();

  redirected_.reset();  // a followed reference served one connection
  if (stopping_) {
    next_redirect_.reset();
    state_ = LinkState::stopping;
    stop_phase_ = StopPhase::releasing;
    advanceStop();
    return;
  }
  if (next_redirect_) {
    scheduleReconnect(milliseconds(0));  // the broker said where to go: no back-off
    return;
  }
  if (!words.empty()) {
    failOver(words);
  }
  scheduleReconnect();
}

bool CloudLink::Impl::followServerReference(int code, const std::string& reference) {
  if (reference.empty() || redirected_ || stopping_) {
    return false;  // one hop only: a redirect is never followed from a redirect
  }
  auto target = parseServerReference(reference);
  if (!target) {
    log_.warn("link.server_reference_ignored",
              {{"code", code}, {"reference", reference}, {"error", target.error().message}});
    return false;
  }
  std::string url = "mqtts://";
  url += target->host.find(':') != std::string::npos ? "[" + target->host + "]" : target->host;
  url += ":" + std::to_string(target->port);
  log_.info("link.server_moved", {{"code", code}, {"from", currentUrl()}, {"to", url}});
  next_redirect_ = Endpoint{std::move(url), std::move(target).value()};
  return true;
}

void CloudLink::Impl::failOver(const std::string& why) {
  if (endpoints_.size() < 2) {
    return;
  }
  const std::string from = currentUrl();
  endpoint_ = (endpoint_ + 1) % endpoints_.size();
  updateStatus([&](LinkStatus& s) { s.url = currentUrl(); });
  log_.info("link.failover", {{"from", from}, {"to", currentUrl()}, {"reason", why}});
}

void CloudLink::Impl::scheduleReconnect(std::optional<milliseconds> override_delay) {
  const milliseconds delay = override_delay ? *override_delay : backoff_.next();
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

void CloudLink::Impl::onMessage(SessionEvent ev) {
  if (ev.topic == topics_.receipt()) {
    onReceipt(ev);
    return;
  }
  control_.onMessage(std::move(ev));
}

std::string CloudLink::Impl::currentStatusJson() {
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

void CloudLink::Impl::queueStatus(std::string json) {
  control_.queueStatus(std::move(json));
  flushControl();
}

void CloudLink::Impl::queueControl(ControlItem item) {
  control_.queue(std::move(item));
  flushControl();
}

void CloudLink::Impl::flushControl() {
  if (state_ != LinkState::connected) {
    return;
  }
  if (auto s = session()) {
    control_.flush(*s, steadyNow(), retain_available_);
  }
}

// -------------------------------------------------------------------- CloudLink

Result<std::unique_ptr<CloudLink>> CloudLink::create(asio::io_context& io,
                                                     store::QueueReader& reader,
                                                     CloudLinkOptions options, ClockPtr clock) {
  PSA_TRY(validateOptions(options));
  std::vector<Endpoint> endpoints;
  for (const std::string& url : brokerUrls(options)) {
    endpoints.push_back({url, parseBrokerUrl(url).value()});
  }
  auto impl = std::make_shared<Impl>(io, reader, std::move(options), std::move(clock),
                                     std::move(endpoints));
  return std::unique_ptr<CloudLink>(new CloudLink(std::move(impl)));
}

CloudLink::CloudLink(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

CloudLink::~CloudLink() {
  guardInvariant("cloud_link.destructor", [this] { impl_->shutdownNow(); });
}

void CloudLink::setControlSink(ControlSink* sink) {
  auto impl = impl_;
  impl->post([impl, sink] { impl->control_.setSink(sink); });
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

void CloudLink::publishWriteResult(std::string json, PublishCallback done) {
  publishOn(impl_, impl_->topics_.downResult(), std::move(json), std::move(done));
}

namespace {
void publishOn(const std::shared_ptr<CloudLink::Impl>& impl, std::string topic, std::string json,
               CloudLink::PublishCallback done) {
  impl->post(
      [impl, topic = std::move(topic), json = std::move(json), done = std::move(done)]() mutable {
        ControlItem item;
        item.topic = std::move(topic);
        item.payload = std::move(json);
        item.done = std::move(done);
        impl->queueControl(std::move(item));
      });
}
}  // namespace

}  // namespace psa::cloudlink
