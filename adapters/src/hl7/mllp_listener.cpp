// The hl7-mllp listener: binds its addresses (retrying with back-off when it cannot), accepts
// connections within the allow list and the connection limits (evicting the longest-idle
// connection to make room), hands each to a session (mllp_session.cpp), and stops gracefully.
// Its accepts run on one strand; status() may be called from any thread.
#include "hl7/mllp_listener.h"

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "psa/adapters/net/listen_socket.h"
#include "hl7/mllp_session.h"
#include "hl7/mllp_shared.h"
#include "psa/adapters/net/server_tls.h"
#include "psa/store/fatal.h"

namespace psa::adapters::hl7::mllp {
namespace {

constexpr auto kStopGrace = std::chrono::seconds(25);
constexpr auto kAcceptRetry = std::chrono::milliseconds(200);
// A listener that could not bind retries: 1 s, doubling, at most a minute apart (a local port,
// no fleet in lockstep to spread: no jitter). A failure that repeats itself is logged again
// after kBindFailureLogEvery at the earliest.
constexpr auto kBindRetryFirst = std::chrono::seconds(1);
constexpr auto kBindRetryMax = std::chrono::seconds(60);
constexpr auto kBindFailureLogEvery = std::chrono::minutes(10);
constexpr const char* kType = "hl7-mllp";

class MllpListener final : public Source, public std::enable_shared_from_this<MllpListener> {
 public:
  MllpListener(std::shared_ptr<Shared> shared, asio::io_context& io)
      : io_(io),
        strand_(asio::make_strand(io)),
        sh_(std::move(shared)),
        retry_timer_(strand_),
        bind_timer_(strand_),
        grace_timer_(strand_),
        name_(sh_->settings.name) {}

  const std::string& name() const override { return name_; }
  const std::string& type() const override { return type_; }

  Status start() override {
    std::lock_guard lock(mu_);
    if (state_ != State::stopped || started_) {
      return Error(Errc::invalid_argument, "adapter " + name_ + " already started");
    }
    auto bound = bindAll();
    if (!bound) {
      sh_->setError(bound.error().message);
      state_ = State::failed;
      return bound.error();  // acceptors opened so far close here
    }
    beginListening(std::move(bound).value());
    return {};
  }

  bool retryStartInBackground() override {
    {
      std::lock_guard lock(mu_);
      if (state_ != State::failed || started_) {
        return false;
      }
      state_ = State::retrying;
      bind_attempts_ = 1;  // the failed start()
      bind_delay_ = kBindRetryFirst;
      next_bind_ms_ = sh_->clock->nowMs() + kBindRetryFirst.count() * 1000;
    }
    auto self = shared_from_this();
    asio::post(strand_,
               [self] { guardInvariant("mllp.bind_retry", [&] { self->armBindRetry(); }); });
    return true;
  }

  void stop(std::function<void()> done) override {
    auto self = shared_from_this();
    asio::post(strand_, [self, done = std::move(done)]() mutable {
      guardInvariant("mllp.listener_stop", [&] { self->onStop(std::move(done)); });
    });
  }

  SourceStatus status() const override {
    SourceStatus st;
    {
      std::lock_guard lock(mu_);
      switch (state_) {
        case State::stopped:
          st.state = "stopped";
          break;
        case State::listening:
          st.state = "listening";
          break;
        case State::stopping:
          st.state = "stopping";
          break;
        case State::failed:
          st.state = "failed";
          break;
        case State::retrying:
          st.state = "retrying";  // could not bind; tries again (bind_attempts, next_bind_...)
          break;
      }
      st.healthy = state_ != State::failed && state_ != State::retrying;
      json::Value eps = json::Value::array();
      for (const auto& b : bound_) {
        eps.push(json::Value::string(b));
      }
      st.detail.set("endpoints", std::move(eps));
      if (state_ == State::retrying) {
        st.detail.set("bind_attempts", json::Value::integer(static_cast<int64_t>(bind_attempts_)));
        st.detail.set("next_bind_attempt_in_ms", json::Value::integer(std::max<int64_t>(
                                                     0, next_bind_ms_ - sh_->clock->nowMs())));
      }
    }
    const Shared& s = *sh_;
    st.last_message_ms = s.last_message_ms.load();
    {
      std::lock_guard lock(s.err_mu);
      st.last_error = s.last_error;
      st.last_error_ms = s.last_error_ms;
    }
    auto& c = st.counters;
    c["connections"] = s.connections_total.load();
    c["connections_refused"] = s.connections_refused.load();
    c["connections_over_limit"] = s.connections_over_limit.load();
    c["connections_over_peer_limit"] = s.connections_over_peer_limit.load();
    c["connections_evicted"] = s.connections_evicted.load();
    c["messages"] = s.messages.load();
    c["accepted"] = s.accepted.load();
    c["duplicates"] = s.duplicates.load();
    c["dead_letters"] = s.dead_letters.load();
    c["store_refused"] = s.store_refused.load();
    c["bytes_in"] = s.bytes_in.load();
    c["bytes_out"] = s.bytes_out.load();
    c["framing_errors"] = s.framing_errors.load();
    c["oversize"] = s.oversize.load();
    c["keepalives"] = s.keepalives.load();
    c["missing_end_cr"] = s.missing_end_cr.load();
    c["tls_failures"] = s.tls_failures.load();
    c["idle_timeouts"] = s.idle_timeouts.load();
    c["idle_timeouts_mid_frame"] = s.idle_timeouts_mid_frame.load();
    c["write_timeouts"] = s.write_timeouts.load();
    c["acks_suppressed"] = s.acks_suppressed.load();
    for (size_t k = 0; k < kAckCodes; ++k) {
      c[std::string("ack_") + kAckNames[k]] = s.ack_counts[k].load();
    }
    json::Value listen = json::Value::array();
    for (const auto& ep : s.settings.listen) {
      listen.push(json::Value::string(ep.text));
    }
    st.detail.set("listen", std::move(listen));
    st.detail.set("tls", json::Value::boolean(s.tls != nullptr));
    st.detail.set("client_certificates",
                  json::Value::boolean(s.settings.tls && !s.settings.tls->client_ca_file.empty()));
    st.detail.set("connections_open",
                  json::Value::integer(static_cast<int64_t>(s.connections_open.load())));
    st.detail.set("max_connections",
                  json::Value::integer(static_cast<int64_t>(s.settings.max_connections)));
    st.detail.set("max_connections_per_peer",
                  json::Value::integer(static_cast<int64_t>(peerLimit())));
    {
      // The peers holding the most connections (addresses only: no PHI), at most three.
      std::vector<std::pair<size_t, std::string>> peers;
      {
        std::lock_guard lock(sh_->reg_mu);
        for (const auto& [addr, n] : sh_->per_peer) {
          peers.emplace_back(n, addr);
        }
      }
      std::sort(peers.begin(), peers.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      st.detail.set("peers_open", json::Value::integer(static_cast<int64_t>(peers.size())));
      json::Value top = json::Value::array();
      for (size_t k = 0; k < peers.size() && k < 3; ++k) {
        json::Value p = json::Value::object();
        p.set("address", json::Value::string(peers[k].second));
        p.set("connections", json::Value::integer(static_cast<int64_t>(peers[k].first)));
        top.push(std::move(p));
      }
      st.detail.set("top_peers", std::move(top));
    }
    json::Value lat = json::Value::object();
    lat.set("count", json::Value::integer(static_cast<int64_t>(s.latency.count())));
    lat.set("p50_us", json::Value::integer(static_cast<int64_t>(s.latency.percentile(0.50))));
    lat.set("p99_us", json::Value::integer(static_cast<int64_t>(s.latency.percentile(0.99))));
    st.detail.set("ack_latency", std::move(lat));
    return st;
  }

 private:
  enum class State { stopped, listening, stopping, failed, retrying };

  struct Bound {
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::vector<std::string> endpoints;
  };

  // Opens, binds and listens on every configured address; all or nothing. Errors:
  // Errc::unavailable with the address, the OS's words and a hint.
  Result<Bound> bindAll() {
    Bound out;
    for (const auto& ep : sh_->settings.listen) {
      error_code ec;
      const auto addr = asio::ip::make_address(ep.host, ec);
      if (ec) {
        return Error(Errc::invalid_argument, "listen " + ep.text + ": " + ec.message());
      }
      const tcp::endpoint endpoint(addr, ep.port);
      auto acc = std::make_unique<tcp::acceptor>(strand_);
      acc->open(endpoint.protocol(), ec);
      if (!ec) {
        net::setListenOptions(*acc, ec);
      }
      if (!ec && ep.v6) {
        acc->set_option(asio::ip::v6_only(true), ec);
      }
      if (!ec) {
        acc->bind(endpoint, ec);
      }
      if (!ec) {
        acc->listen(asio::socket_base::max_listen_connections, ec);
      }
      if (ec) {
        std::string hint;
        if (ec == asio::error::address_in_use) {
          hint = " (another program listens there; change listen or stop it)";
        } else if (ec == asio::error::access_denied) {
          hint = " (" + net::listenAccessDeniedMeaning() + ")";
        } else if (ec == boost::system::errc::address_not_available) {
          hint = " (no such address on this host)";
        }
        return Error(Errc::unavailable, "listen " + ep.text + ": " + ec.message() + hint);
      }
      out.endpoints.push_back(endpointText(acc->local_endpoint(ec)));
      out.acceptors.push_back(std::move(acc));
    }
    return out;
  }

  // Under mu_: takes the bound acceptors and starts accepting (on the strand).
  void beginListening(Bound bound) {
    acceptors_ = std::move(bound.acceptors);
    bound_ = std::move(bound.endpoints);
    started_ = true;
    state_ = State::listening;
    std::string list;
    for (const auto& b : bound_) {
      list += (list.empty() ? "" : ",") + b;
    }
    sh_->log.info("listening",
                  {{"endpoints", list},
                   {"tls", sh_->tls != nullptr},
                   {"max_connections", static_cast<uint64_t>(sh_->settings.max_connections)},
                   {"max_connections_per_peer", static_cast<uint64_t>(peerLimit())}});
    auto self = shared_from_this();
    asio::post(strand_, [self] {
      for (size_t k = 0; k < self->acceptors_.size(); ++k) {
        self->accept(k);
      }
    });
  }

  // Strand.
  void armBindRetry() {
    if (stopping_) {
      return;
    }
    SteadyClock::duration delay;
    {
      std::lock_guard lock(mu_);
      delay = bind_delay_;
    }
    auto self = shared_from_this();
    bind_timer_.expires_after(delay);
    bind_timer_.async_wait([self](const error_code& ec) {
      guardInvariant("mllp.bind_retry", [&] {
        if (!ec) {
          self->onBindRetry();
        }
      });
    });
  }

  // Strand: one more attempt to bind.
  void onBindRetry() {
    if (stopping_) {
      return;
    }
    auto bound = bindAll();
    std::lock_guard lock(mu_);
    ++bind_attempts_;
    if (bound) {
      sh_->log.info("bind_recovered", {{"attempts", bind_attempts_}});
      beginListening(std::move(bound).value());
      return;
    }
    const std::string& error = bound.error().message;
    sh_->setError(error);
    bind_delay_ = std::min<SteadyClock::duration>(bind_delay_ * 2, kBindRetryMax);
    const auto delay_ms = std::chrono::duration_cast<std::chrono::milliseconds>(bind_delay_);
    next_bind_ms_ = sh_->clock->nowMs() + delay_ms.count();
    // Logged when it changes, else at most every kBindFailureLogEvery (with the count since).
    const auto now = SteadyClock::now();
    if (error != bind_error_logged_ || now - bind_logged_at_ >= kBindFailureLogEvery) {
      sh_->log.warn("bind_retry_failed", {{"error", error},
                                          {"attempts", bind_attempts_},
                                          {"failures_not_logged", bind_failures_unlogged_},
                                          {"next_attempt_s", delay_ms.count() / 1000}});
      bind_error_logged_ = error;
      bind_logged_at_ = now;
      bind_failures_unlogged_ = 0;
    } else {
      ++bind_failures_unlogged_;
    }
    auto self = shared_from_this();
    asio::post(strand_,
               [self] { guardInvariant("mllp.bind_retry", [&] { self->armBindRetry(); }); });
  }

  size_t peerLimit() const {
    return std::min(sh_->settings.max_connections_per_peer, sh_->settings.max_connections);
  }

  void accept(size_t k) {
    if (k >= acceptors_.size() || !acceptors_[k]->is_open()) {
      return;
    }
    auto self = shared_from_this();
    acceptors_[k]->async_accept(
        asio::make_strand(io_),
        asio::bind_executor(strand_, [self, k](const error_code& ec, tcp::socket socket) {
          guardInvariant("mllp.accept", [&] { self->onAccept(k, ec, std::move(socket)); });
        }));
  }

  void onAccept(size_t k, const error_code& ec, tcp::socket socket) {
    if (stopping_) {
      error_code ignored;
      socket.close(ignored);
      return;
    }
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        return;
      }
      sh_->warn("accept_failed", {{"error", ec}});
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
          ec == asio::error::no_memory) {
        // Out of file descriptors: wait a little instead of spinning.
        auto self = shared_from_this();
        retry_timer_.expires_after(kAcceptRetry);
        retry_timer_.async_wait([self, k](const error_code& e) {
          if (!e) {
            self->accept(k);
          }
        });
        return;
      }
      accept(k);
      return;
    }
    accept(k);
    error_code pec;
    const tcp::endpoint remote = socket.remote_endpoint(pec);
    if (pec) {
      socket.close(pec);
      return;  // already gone
    }
    const std::string peer = endpointText(remote);
    if (!allowed(remote.address())) {
      sh_->connections_refused.fetch_add(1, std::memory_order_relaxed);
      sh_->warn("connection_refused", {{"peer", peer}, {"reason", "address not in allow list"}});
      error_code ignored;
      socket.close(ignored);
      return;
    }
    const std::string address = addressText(remote.address());
    const Admission admission = admit(address);
    if (!admission.admitted) {
      const bool per_peer = admission.reason == kPeerLimit;
      (per_peer ? sh_->connections_over_peer_limit : sh_->connections_over_limit)
          .fetch_add(1, std::memory_order_relaxed);
      sh_->warn("connection_refused",
                {{"peer", peer},
                 {"reason", std::string(admission.reason) + " reached, every connection busy"},
                 {"limit",
                  static_cast<uint64_t>(per_peer ? peerLimit() : sh_->settings.max_connections)}});
      error_code ignored;
      socket.close(ignored);
      return;
    }
    if (admission.victim) {
      // Counted against the limit no more; it closes once whatever it received is answered.
      sh_->connections_evicted.fetch_add(1, std::memory_order_relaxed);
      const int64_t idle_ms =
          (steadyNs(SteadyClock::now()) - admission.victim->progress_ns.load()) / 1000000;
      sh_->warn("connection_evicted", {{"peer", admission.victim->peer()},
                                       {"idle_ms", idle_ms},
                                       {"reason", std::string(admission.reason) + " reached"},
                                       {"for_peer", peer}});
      admission.victim->evict();
    }
    sh_->connections_total.fetch_add(1, std::memory_order_relaxed);
    sh_->connections_open.fetch_add(1, std::memory_order_relaxed);
    auto session = makeSession(sh_, std::move(socket), admission.id, peer);
    registerSession(admission.id, session, address);
    session->start();
  }

  static constexpr const char* kPeerLimit = "max_connections_per_peer";
  static constexpr const char* kLimit = "max_connections";

  struct Admission {
    bool admitted = true;
    uint64_t id = 0;
    const char* reason = nullptr;         // the limit that was reached, if one was
    std::shared_ptr<SessionBase> victim;  // evicted to make room (already marked)
  };

  // Strand (accepts are serialised, so what is admitted here is registered before the next
  // decision). A peer at max_connections_per_peer makes room among its own connections, a full
  // listener among all: the one longest without progress that has no message awaiting its
  // commit or ACK is evicted. When every candidate is busy, the new connection is refused.
  Admission admit(const std::string& address) {
    Admission a;
    std::lock_guard lock(sh_->reg_mu);
    auto at = sh_->per_peer.find(address);
    const size_t of_peer = at == sh_->per_peer.end() ? 0 : at->second;
    const size_t active = sh_->sessions.size() - sh_->evicting;
    // (A per-peer limit at or above max_connections is max_connections: the listener is full.)
    const bool peer_full = sh_->settings.max_connections_per_peer < sh_->settings.max_connections &&
                           of_peer >= sh_->settings.max_connections_per_peer;
    if (peer_full || active >= sh_->settings.max_connections) {
      a.reason = peer_full ? kPeerLimit : kLimit;
      Shared::Entry* chosen = nullptr;
      int64_t oldest = 0;
      for (auto& [id, e] : sh_->sessions) {
        if (e.evicting || (peer_full && e.address != address)) {
          continue;
        }
        auto s = e.session.lock();
        if (!s || s->busy.load(std::memory_order_relaxed)) {
          continue;
        }
        const int64_t progress = s->progress_ns.load(std::memory_order_relaxed);
        if (chosen == nullptr || progress < oldest) {
          chosen = &e;
          oldest = progress;
          a.victim = std::move(s);
        }
      }
      if (chosen == nullptr) {
        a.admitted = false;
        return a;
      }
      chosen->evicting = true;
      ++sh_->evicting;
      if (auto p = sh_->per_peer.find(chosen->address);
          p != sh_->per_peer.end() && --p->second == 0) {
        sh_->per_peer.erase(p);
      }
    }
    a.id = sh_->next_session++;
    return a;
  }

  void registerSession(uint64_t id, const std::shared_ptr<SessionBase>& s,
                       const std::string& address) {
    std::lock_guard lock(sh_->reg_mu);
    sh_->sessions.emplace(id, Shared::Entry{s, address, false});
    ++sh_->per_peer[address];
  }

  bool allowed(const asio::ip::address& addr) const {
    const auto& allow = sh_->settings.allow;
    if (allow.empty()) {
      return true;
    }
    if (addr.is_v4()) {
      const auto bytes = addr.to_v4().to_bytes();
      return std::any_of(allow.begin(), allow.end(),
                         [&](const CidrRange& r) { return r.contains(bytes.data(), false); });
    }
    const auto bytes = addr.to_v6().to_bytes();
    return std::any_of(allow.begin(), allow.end(),
                       [&](const CidrRange& r) { return r.contains(bytes.data(), true); });
  }

  void onStop(std::function<void()> done) {
    std::vector<std::shared_ptr<SessionBase>> live;
    std::vector<std::function<void()>> call_now;
    bool first = false;
    {
      std::lock_guard lock(sh_->reg_mu);
      if (sh_->stopped) {
        call_now.push_back(std::move(done));
      } else {
        if (!sh_->stopping) {
          first = true;
          sh_->stopping = true;
          // Runs first when the last session has gone.
          std::weak_ptr<MllpListener> weak = weak_from_this();
          sh_->stop_waiters.push_back([weak] {
            if (auto self = weak.lock()) {
              self->finishStop();
            }
          });
          for (auto& [id, e] : sh_->sessions) {
            if (auto s = e.session.lock()) {
              live.push_back(std::move(s));
            }
          }
        }
        sh_->stop_waiters.push_back(std::move(done));
        if (first && sh_->sessions.empty()) {
          sh_->stopped = true;
          call_now.swap(sh_->stop_waiters);
        }
      }
    }
    if (first) {
      stopping_ = true;
      {
        std::lock_guard lock(mu_);
        if (state_ == State::listening) {
          state_ = State::stopping;
        }
      }
      for (auto& acc : acceptors_) {
        error_code ec;
        acc->close(ec);
      }
      retry_timer_.cancel();
      bind_timer_.cancel();
      sh_->log.info("stopping", {{"connections", static_cast<uint64_t>(live.size())}});
      for (auto& s : live) {
        s->stop();
      }
      if (!live.empty()) {
        std::weak_ptr<MllpListener> weak = weak_from_this();
        grace_timer_.expires_after(kStopGrace);
        grace_timer_.async_wait([weak](const error_code& ec) {
          auto self = weak.lock();
          if (ec || !self) {
            return;
          }
          std::vector<std::shared_ptr<SessionBase>> left;
          {
            std::lock_guard lock(self->sh_->reg_mu);
            for (auto& [id, e] : self->sh_->sessions) {
              if (auto s = e.session.lock()) {
                left.push_back(std::move(s));
              }
            }
          }
          for (auto& s : left) {
            s->forceClose();
          }
        });
      }
    }
    for (auto& f : call_now) {
      if (f) {
        f();
      }
    }
  }

  // Any thread: every session has gone.
  void finishStop() {
    {
      std::lock_guard lock(mu_);
      if (state_ != State::failed) {
        state_ = State::stopped;
      }
    }
    auto self = shared_from_this();
    asio::post(strand_, [self] { self->grace_timer_.cancel(); });
    sh_->log.info("stopped", {{"connections", sh_->connections_total.load()},
                              {"messages", sh_->messages.load()}});
  }

  asio::io_context& io_;
  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<Shared> sh_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  asio::steady_timer retry_timer_;
  asio::steady_timer bind_timer_;  // the next bind attempt while retrying
  asio::steady_timer grace_timer_;
  std::string name_;
  std::string type_ = kType;
  mutable std::mutex mu_;
  State state_ = State::stopped;
  std::vector<std::string> bound_;
  bool started_ = false;
  // Bind retries (mu_): attempts so far (the failed start() is the first), the current delay,
  // when the next one is due (clock ms).
  uint64_t bind_attempts_ = 0;
  SteadyClock::duration bind_delay_{};
  int64_t next_bind_ms_ = 0;
  // Rate limit of bind_retry_failed lines (strand).
  std::string bind_error_logged_;
  TimePoint bind_logged_at_{};
  uint64_t bind_failures_unlogged_ = 0;
  bool stopping_ = false;  // strand
};

}  // namespace

}  // namespace psa::adapters::hl7::mllp

namespace psa::adapters::hl7 {

Result<SourcePtr> makeMllpListener(MllpSettings settings, SourceContext& ctx) {
  auto shared = std::make_shared<mllp::Shared>(std::move(settings), ctx.sink, ctx.clock);
  if (shared->settings.tls) {
    std::string error;
    shared->tls = net::makeServerTls(*shared->settings.tls, error);
    if (!shared->tls) {
      return Error(Errc::io, error);
    }
  }
  return SourcePtr(std::make_shared<mllp::MllpListener>(std::move(shared), ctx.io));
}

}  // namespace psa::adapters::hl7
