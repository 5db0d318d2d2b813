// The `hl7-mllp-out` delivery engine (see hl7_outbound.h). Everything runs on one strand; a
// connection is a shared Conn that its pending handlers hold, so closing one (reset conn_)
// turns its late handlers into no-ops. Timers carry a token for the same reason: a handler
// whose token is no longer current was cancelled, even if it had already been queued.
#include "psa/adapters/write/hl7_outbound.h"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <random>

#include "net/client_tls.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/adapters/write/hl7_out_message.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"

namespace psa::adapters::write {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using DStatus = DeliveryOutcome::Status;

std::string_view deliveryStatusName(DStatus status) {
  switch (status) {
    case DStatus::delivered:
      return "delivered";
    case DStatus::failed:
      return "failed";
    case DStatus::retryable:
      return "retryable";
    case DStatus::expired:
      return "expired";
    case DStatus::rejected:
      return "rejected";
  }
  return "unknown";
}

namespace {

using Strand = asio::strand<asio::any_io_executor>;

struct Conn {
  explicit Conn(const Strand& strand, size_t max_frame) : sock(strand), decoder(max_frame) {}
  tcp::socket sock;
  std::optional<ssl::stream<tcp::socket&>> tls;
  hl7::MllpDecoder decoder;
  std::vector<char> rbuf = std::vector<char>(16 * 1024);
  std::string out;  // the frame being written
};
using ConnPtr = std::shared_ptr<Conn>;

struct Job {
  WriteRequest request;
  Hl7Outbound::Callback done;
  std::optional<PreparedMessage> msg;
  int sends = 0;
  int tries = 0;
  std::string last_error;
};

struct AtomicStats {
  std::atomic<uint64_t> connects{0}, connect_failures{0}, sends{0}, delivered{0}, failed{0},
      timeouts{0}, stale_acks{0}, disconnects{0};
};

class Engine final : public Hl7Outbound, public std::enable_shared_from_this<Engine> {
 public:
  Engine(asio::any_io_executor ex, Hl7OutboundSettings s, ClockPtr clock)
      : strand_(asio::make_strand(ex)),
        s_(std::move(s)),
        clock_(clock ? std::move(clock) : Clock::system()),
        log_("hl7-out", s_.name),
        resolver_(strand_),
        deadline_(strand_),
        retry_timer_(strand_),
        rng_(std::random_device{}()) {}

  psa::Status setUpTls() {
    if (!s_.tls) {
      return {};
    }
    ctx_.emplace(ssl::context::tls_client);
    return net::configureClientTls(*ctx_, {s_.ca_file, s_.cert_file, s_.key_file});
  }

  void deliver(WriteRequest request, Callback done) override {
    asio::post(strand_,
               [self = shared_from_this(), r = std::move(request), d = std::move(done)]() mutable {
                 self->guard([&] {
                   if (self->stopped_) {
                     DeliveryOutcome o;
                     o.status = DStatus::retryable;
                     o.error = "target stopped";
                     d(std::move(o));
                     return;
                   }
                   Job job;
                   job.request = std::move(r);
                   job.done = std::move(d);
                   self->queue_.push_back(std::move(job));
                   if (self->queue_.size() == 1) {
                     self->startJob();
                   }
                 });
               });
  }

  void stop() override {
    asio::post(strand_, [self = shared_from_this()] {
      self->guard([&] {
        self->stopped_ = true;
        self->closeConnection();
        ++self->deadline_token_;
        ++self->retry_token_;
        self->deadline_.cancel();
        self->retry_timer_.cancel();
        self->resolver_.cancel();
        while (!self->queue_.empty()) {
          self->finish(DStatus::retryable, {}, "target stopped", /*next=*/false);
        }
      });
    });
  }

  Hl7OutboundStats stats() const override {
    return {stats_.connects.load(),   stats_.connect_failures.load(), stats_.sends.load(),
            stats_.delivered.load(),  stats_.failed.load(),           stats_.timeouts.load(),
            stats_.stale_acks.load(), stats_.disconnects.load()};
  }

  const Hl7OutboundSettings& settings() const override { return s_; }

 private:
  template <class F>
  void guard(F&& f) {
    try {
      f();
    } catch (...) {
      fatalInvariant("hl7_out.handler");
    }
  }

  bool expired(const Job& j) const { return clock_->nowMs() >= j.request.expires_at_ms; }

  void startJob() {
    if (queue_.empty() || stopped_) {
      return;
    }
    Job& j = queue_.front();
    if (!s_.write.enabled) {
      return finish(DStatus::rejected, {}, "writes are disabled on this target");
    }
    if (j.request.format != WriteFormat::hl7v2) {
      return finish(DStatus::rejected, {},
                    "format " + std::string(writeFormatName(j.request.format)) +
                        " is not taken by hl7-mllp-out (hl7v2 only)");
    }
    if (expired(j)) {
      return finish(DStatus::expired, {}, "expires_at passed before sending");
    }
    auto prepared = prepareOutbound(j.request.body, j.request.id, clock_->nowMs());
    if (!prepared) {
      return finish(DStatus::failed, {}, prepared.error().message);
    }
    j.msg = std::move(prepared).value();
    if (s_.write.dry_run) {
      return finish(DStatus::delivered, "dry-run", {});
    }
    attempt();
  }

  void attempt() {
    if (queue_.empty() || stopped_) {
      return;
    }
    Job& j = queue_.front();
    if (j.tries >= s_.max_tries) {
      return finish(DStatus::retryable, {},
                    "no answer after " + std::to_string(j.tries) + " tries: " + j.last_error);
    }
    if (j.sends == 0 && expired(j)) {
      return finish(DStatus::expired, {}, "expires_at passed before sending");
    }
    if (conn_ && connected_) {
      return send();
    }
    connect();
  }

  void connect() {
    closeConnection();
    auto conn = std::make_shared<Conn>(strand_, s_.max_ack_bytes);
    conn_ = conn;
    armDeadline(s_.connect_timeout, [this, conn] {
      if (conn == conn_) {
        resolver_.cancel();
        error_code ignored;
        conn->sock.close(ignored);  // the pending operation fails and reports
      }
    });
    resolver_.async_resolve(
        s_.host, std::to_string(s_.port),
        [self = shared_from_this(), conn](const error_code& ec, tcp::resolver::results_type eps) {
          self->guard([&] {
            if (conn != self->conn_) {
              return;
            }
            if (ec) {
              return self->connectFailed("cannot resolve " + self->s_.host + ": " + ec.message());
            }
            asio::async_connect(conn->sock, eps,
                                [self, conn](const error_code& ec2, const tcp::endpoint&) {
                                  self->guard([&] { self->onTcpConnected(conn, ec2); });
                                });
          });
        });
  }

  void onTcpConnected(const ConnPtr& conn, const error_code& ec) {
    if (conn != conn_) {
      return;
    }
    if (ec) {
      return connectFailed(
          "connecting to " + peer() + ": " +
          (ec == asio::error::bad_descriptor || ec == asio::error::operation_aborted
               ? std::string("no answer in time")
               : ec.message()));
    }
    error_code ignored;
    conn->sock.set_option(tcp::no_delay(true), ignored);
    if (!ctx_) {
      return onConnected(conn);
    }
    conn->tls.emplace(conn->sock, *ctx_);
    net::expectServerName(conn->tls->native_handle(),
                          s_.server_name.empty() ? s_.host : s_.server_name);
    conn->tls->async_handshake(
        ssl::stream_base::client, [self = shared_from_this(), conn](const error_code& ec2) {
          self->guard([&] {
            if (conn != self->conn_) {
              return;
            }
            if (ec2) {
              return self->connectFailed("TLS handshake with " + self->peer() + " failed: " +
                                         net::handshakeFailure(conn->tls->native_handle(), ec2));
            }
            self->onConnected(conn);
          });
        });
  }

  void onConnected(const ConnPtr& conn) {
    cancelDeadline();
    connected_ = true;
    ++stats_.connects;
    log_.info("connected", {{"peer", peer()}, {"tls", ctx_.has_value()}});
    read(conn);
    attempt();
  }

  void connectFailed(std::string why) {
    ++stats_.connect_failures;
    cancelDeadline();
    closeConnection();
    if (queue_.empty()) {
      return;
    }
    Job& j = queue_.front();
    ++j.tries;
    log_.warn("connect_failed",
              {{"peer", peer()}, {"request", j.request.id}, {"try", j.tries}, {"error", why}});
    j.last_error = std::move(why);
    retryLater();
  }

  void send() {
    Job& j = queue_.front();
    ++j.tries;
    ++j.sends;
    ++stats_.sends;
    in_flight_ = true;
    ConnPtr conn = conn_;
    conn->out.clear();
    hl7::mllpFrameTo(j.msg->text, conn->out);
    auto on_written = [self = shared_from_this(), conn](const error_code& ec, size_t) {
      self->guard([&] {
        if (conn != self->conn_ || !ec) {
          return;
        }
        self->connectionLost("sending to " + self->peer() + ": " + ec.message());
      });
    };
    if (conn->tls) {
      asio::async_write(*conn->tls, asio::buffer(conn->out), on_written);
    } else {
      asio::async_write(conn->sock, asio::buffer(conn->out), on_written);
    }
    armDeadline(s_.ack_timeout, [this] {
      if (!in_flight_ || queue_.empty()) {
        return;
      }
      ++stats_.timeouts;
      Job& job = queue_.front();
      log_.warn("ack_timeout", {{"request", job.request.id},
                                {"timeout_ms", static_cast<int64_t>(s_.ack_timeout.count())}});
      job.last_error =
          "no ACK from " + peer() + " within " + std::to_string(s_.ack_timeout.count()) + " ms";
      closeConnection();
      retryLater();
    });
  }

  void read(const ConnPtr& conn) {
    auto on_read = [self = shared_from_this(), conn](const error_code& ec, size_t n) {
      self->guard([&] { self->onRead(conn, ec, n); });
    };
    if (conn->tls) {
      conn->tls->async_read_some(asio::buffer(conn->rbuf), on_read);
    } else {
      conn->sock.async_read_some(asio::buffer(conn->rbuf), on_read);
    }
  }

  void onRead(const ConnPtr& conn, const error_code& ec, size_t n) {
    if (conn != conn_) {
      return;
    }
    if (ec) {
      return connectionLost("connection closed by " + peer());
    }
    if (!conn->decoder.feed(std::string_view(conn->rbuf.data(), n))) {
      return connectionLost("MLLP decoder not drained");
    }
    while (auto ev = conn->decoder.next()) {
      if (ev->type == hl7::MllpEvent::Type::frame) {
        onFrame(ev->data);
        if (conn != conn_) {
          return;  // the frame closed this connection
        }
      } else if (ev->fault == hl7::MllpFault::oversize) {
        return connectionLost("acknowledgement larger than " + std::to_string(s_.max_ack_bytes) +
                              " bytes");
      }
    }
    read(conn);
  }

  void onFrame(std::string_view frame) {
    if (!in_flight_ || queue_.empty()) {
      ++stats_.stale_acks;
      log_.warn("unexpected_ack", {{"peer", peer()}, {"bytes", frame.size()}});
      return;
    }
    Job& j = queue_.front();
    AckReading r = readAck(frame, j.msg->control_id);
    switch (r.verdict) {
      case AckVerdict::stale:
        ++stats_.stale_acks;
        // MSA-1 comes from the peer: logged only when it is one of the table 0008 codes.
        log_.warn("stale_ack",
                  {{"request", j.request.id},
                   {"code", r.code.size() == 2 && (r.code[0] == 'A' || r.code[0] == 'C') &&
                                    (r.code[1] == 'A' || r.code[1] == 'E' || r.code[1] == 'R')
                                ? std::string_view(r.code)
                                : std::string_view("other")}});
        return;
      case AckVerdict::invalid:
        log_.warn("bad_ack", {{"request", j.request.id}, {"bytes", frame.size()}});
        j.last_error = "acknowledgement from " + peer() + ": " + r.error;
        closeConnection();
        return retryLater();
      case AckVerdict::delivered:
        in_flight_ = false;
        cancelDeadline();
        failures_ = 0;
        return finish(DStatus::delivered, r.control_id, {});
      case AckVerdict::failed:
        in_flight_ = false;
        cancelDeadline();
        failures_ = 0;
        return finish(DStatus::failed, {}, r.error);
    }
  }

  void connectionLost(std::string why) {
    const bool was_in_flight = in_flight_;
    cancelDeadline();
    closeConnection();
    if (!was_in_flight || queue_.empty()) {
      log_.info("disconnected", {{"peer", peer()}});
      return;  // the next request reconnects
    }
    ++stats_.disconnects;
    Job& j = queue_.front();
    log_.warn("connection_lost", {{"peer", peer()}, {"request", j.request.id}});
    j.last_error = std::move(why);
    retryLater();
  }

  void closeConnection() {
    in_flight_ = false;
    connected_ = false;
    if (conn_) {
      error_code ignored;
      conn_->sock.shutdown(tcp::socket::shutdown_both, ignored);
      conn_->sock.close(ignored);
      conn_.reset();
    }
  }

  void retryLater() {
    const auto base =
        std::min<int64_t>(s_.retry_max.count(), s_.retry_min.count() << std::min(failures_, 20));
    ++failures_;
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const auto delay = std::chrono::milliseconds(
        std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(base) * jitter(rng_))));
    const uint64_t token = ++retry_token_;
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait([self = shared_from_this(), token](const error_code&) {
      self->guard([&] {
        if (token == self->retry_token_) {
          self->attempt();
        }
      });
    });
  }

  template <class F>
  void armDeadline(std::chrono::milliseconds after, F on_expiry) {
    const uint64_t token = ++deadline_token_;
    deadline_.expires_after(after);
    deadline_.async_wait(
        [self = shared_from_this(), token, f = std::move(on_expiry)](const error_code&) {
          self->guard([&] {
            if (token == self->deadline_token_) {
              f();
            }
          });
        });
  }

  void cancelDeadline() {
    ++deadline_token_;
    deadline_.cancel();
  }

  void finish(DStatus status, std::string pms_ref, std::string error, bool next = true) {
    Job j = std::move(queue_.front());
    queue_.pop_front();
    DeliveryOutcome o;
    o.status = status;
    o.pms_ref = std::move(pms_ref);
    o.error = std::move(error);
    o.attempts = j.sends;
    o.control_id = j.msg ? j.msg->control_id : std::string();
    if (status == DStatus::delivered) {
      ++stats_.delivered;
    } else if (status == DStatus::failed) {
      ++stats_.failed;
    }
    log_.info(
        "outcome",
        {{"request", j.request.id}, {"status", deliveryStatusName(status)}, {"attempts", j.sends}});
    if (j.done) {
      j.done(std::move(o));
    }
    if (next && !queue_.empty()) {
      asio::post(strand_, [self = shared_from_this()] { self->guard([&] { self->startJob(); }); });
    }
  }

  std::string peer() const {
    return (s_.host.find(':') != std::string::npos ? "[" + s_.host + "]" : s_.host) + ":" +
           std::to_string(s_.port);
  }

  Strand strand_;
  Hl7OutboundSettings s_;
  ClockPtr clock_;
  log::Logger log_;
  std::optional<ssl::context> ctx_;
  tcp::resolver resolver_;
  asio::steady_timer deadline_;  // connect or ACK deadline
  asio::steady_timer retry_timer_;
  uint64_t deadline_token_ = 0;
  uint64_t retry_token_ = 0;
  std::minstd_rand rng_;
  ConnPtr conn_;
  bool connected_ = false;
  bool in_flight_ = false;
  bool stopped_ = false;
  int failures_ = 0;  // consecutive, for the back-off
  std::deque<Job> queue_;
  AtomicStats stats_;
};

}  // namespace

Result<std::shared_ptr<Hl7Outbound>> Hl7Outbound::create(asio::any_io_executor executor,
                                                         Hl7OutboundSettings settings,
                                                         ClockPtr clock) {
  if (settings.host.empty() || settings.port == 0) {
    return Error(Errc::invalid_argument, "hl7-mllp-out: expected connect HOST:PORT");
  }
  auto engine =
      std::make_shared<Engine>(std::move(executor), std::move(settings), std::move(clock));
  PSA_TRY(engine->setUpTls());
  return std::shared_ptr<Hl7Outbound>(std::move(engine));
}

}  // namespace psa::adapters::write
