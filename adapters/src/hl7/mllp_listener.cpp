#include "hl7/mllp_listener.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>

#include "hl7/listen_socket.h"
#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"
#include "psa/store/os/per_thread.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/system_error.h"
#include "psa/store/os/tcp_listeners.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::hl7 {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

// Per-connection read buffer: small while a connection idles or trickles, grown when a read
// fills it (bursts, big messages), so 512 idle connections cost little.
constexpr size_t kReadMin = 4 * 1024;
constexpr size_t kReadMax = 64 * 1024;
constexpr size_t kMaxJunkBytes = 64 * 1024;  // non-MLLP bytes before the connection is closed
constexpr auto kStopGrace = std::chrono::seconds(25);
constexpr auto kAcceptRetry = std::chrono::milliseconds(200);
// A listener that could not bind retries: 1 s, doubling, at most a minute apart (a local port,
// no fleet in lockstep to spread: no jitter). A failure that repeats itself is logged again
// after kBindFailureLogEvery at the earliest.
constexpr auto kBindRetryFirst = std::chrono::seconds(1);
constexpr auto kBindRetryMax = std::chrono::seconds(60);
constexpr auto kBindFailureLogEvery = std::chrono::minutes(10);
constexpr const char* kType = "hl7-mllp";

// ACK latency in microseconds: log-linear buckets (16 per power of two, <= 6.25 % error).
class LatencyHistogram {
 public:
  void record(uint64_t us) {
    buckets_[index(us)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // Upper bound of the bucket holding the p-quantile (0 < p <= 1); 0 if empty.
  uint64_t percentile(double p) const {
    const uint64_t total = count();
    if (total == 0) {
      return 0;
    }
    const auto rank = static_cast<uint64_t>(p * static_cast<double>(total - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load(std::memory_order_relaxed);
      if (seen >= rank) {
        return upper(i);
      }
    }
    return upper(kBuckets - 1);
  }

 private:
  static constexpr size_t kSub = 16;
  static constexpr size_t kBuckets = 61 * kSub;
  static size_t index(uint64_t v) {
    if (v < kSub) {
      return static_cast<size_t>(v);
    }
    const int msb = 63 - __builtin_clzll(v);
    const size_t sub = static_cast<size_t>((v >> (msb - 4)) & (kSub - 1));
    return static_cast<size_t>(msb - 3) * kSub + sub;
  }
  static uint64_t upper(size_t i) {
    if (i < kSub) {
      return i;
    }
    const int msb = static_cast<int>(i / kSub) + 3;
    const uint64_t sub = i % kSub;
    return ((kSub + sub) << (msb - 4)) + ((uint64_t{1} << (msb - 4)) - 1);
  }
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
};

// At most `per_second` warn lines per second from one listener (a flood of bad connections
// must not flood the log); the rest are counted and reported with the next line allowed.
class LogBudget {
 public:
  explicit LogBudget(int per_second) : per_second_(per_second) {}
  // True if a line may be written; `suppressed` gets the lines dropped since the last one.
  bool take(uint64_t& suppressed) {
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    if (now - window_ >= std::chrono::seconds(1)) {
      window_ = now;
      used_ = 0;
    }
    if (used_ >= per_second_) {
      ++dropped_;
      return false;
    }
    ++used_;
    suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  int per_second_;
  int used_ = 0;
  uint64_t dropped_ = 0;
  TimePoint window_{};
};

enum AckCode : size_t { kAA, kAE, kAR, kCA, kCE, kCR, kAckCodes };
constexpr std::array<const char*, kAckCodes> kAckNames = {"AA", "AE", "AR", "CA", "CE", "CR"};

// MSA-1 of a prepared ACK (its bytes, as built by AckBuilder).
std::optional<AckCode> ackCodeOf(std::string_view ack) {
  if (ack.size() < 4) {
    return std::nullopt;
  }
  const char fs = ack[3];
  const std::string pattern = std::string("\rMSA") + fs;
  const size_t at = ack.find(pattern);
  if (at == std::string_view::npos || at + pattern.size() + 2 > ack.size()) {
    return std::nullopt;
  }
  const std::string_view code = ack.substr(at + pattern.size(), 2);
  for (size_t k = 0; k < kAckCodes; ++k) {
    if (code == kAckNames[k]) {
      return static_cast<AckCode>(k);
    }
  }
  return std::nullopt;
}

// First 12 hex digits of SHA-256 of a control id: correlates log lines without content.
std::string hashedId(std::string_view control_id) { return sha256Hex(control_id).substr(0, 12); }

std::string endpointText(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6()) {
    if (addr.to_v6().is_v4_mapped()) {
      return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string() + ":" +
             std::to_string(ep.port());
    }
    return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  }
  return addr.to_string() + ":" + std::to_string(ep.port());
}

// The peer's address without the port (IPv4-mapped IPv6 as IPv4): the key of the per-peer
// connection count.
std::string addressText(const asio::ip::address& addr) {
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

int64_t steadyNs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

class SessionBase {
 public:
  explicit SessionBase(std::string peer) : peer_(std::move(peer)) {
    progress_ns.store(steadyNs(SteadyClock::now()), std::memory_order_relaxed);
  }
  virtual ~SessionBase() = default;
  /// Stop reading; finish the acknowledgements of what was received, then close.
  virtual void stop() = 0;
  /// Close now.
  virtual void forceClose() = 0;
  /// Chosen to make room for a new connection: like stop() (whatever was received is still
  /// answered, so nothing acknowledged is lost), then close.
  virtual void evict() = 0;

  /// "10.0.0.5:51234".
  const std::string& peer() const { return peer_; }

  // Published by the session's strand for the listener's eviction choice (any thread reads):
  // when it last made progress (opened, a whole frame arrived, an ACK went out), and whether a
  // message of it awaits its commit or its ACK (such a connection is never evicted).
  std::atomic<int64_t> progress_ns{0};
  std::atomic<bool> busy{false};

 protected:
  const std::string peer_;
};

// State shared by the listener and its sessions (sessions may outlive the listener object).
struct Shared {
  Shared(MllpSettings s, store::RecordSink& k, ClockPtr c)
      : settings(std::move(s)),
        sink(k),
        clock(c ? std::move(c) : Clock::system()),
        acks(AckOptions{settings.ack_mode, clock, defaultControlIds()}),
        log("mllp", settings.name) {
    limits.max_message_bytes = settings.max_message_bytes;
  }

  MllpSettings settings;
  store::RecordSink& sink;
  ClockPtr clock;
  AckBuilder acks;
  log::Logger log;
  Limits limits;
  std::unique_ptr<ssl::context> tls;

  // Counters (status).
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_refused{0};  // allow list
  std::atomic<uint64_t> connections_over_limit{0};       // refused: every connection busy
  std::atomic<uint64_t> connections_over_peer_limit{0};  // refused: the peer's are all busy
  std::atomic<uint64_t> connections_evicted{0};          // closed to make room, longest idle
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> dead_letters{0};
  std::atomic<uint64_t> store_refused{0};
  std::atomic<uint64_t> framing_errors{0};
  std::atomic<uint64_t> oversize{0};
  std::atomic<uint64_t> keepalives{0};
  std::atomic<uint64_t> missing_end_cr{0};
  std::atomic<uint64_t> tls_failures{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> idle_timeouts_mid_frame{0};  // of them: a frame begun, never finished
  std::atomic<uint64_t> write_timeouts{0};
  std::atomic<uint64_t> acks_suppressed{0};  // MSH-15 NE/ER/SU said not to send
  std::array<std::atomic<uint64_t>, kAckCodes> ack_counts{};
  LatencyHistogram latency;
  std::atomic<int64_t> last_message_ms{0};
  LogBudget warn_budget{20};

  mutable std::mutex err_mu;
  std::string last_error;
  int64_t last_error_ms = 0;

  // Session registry and stop bookkeeping. A connection chosen for eviction stays registered
  // until it has closed, but no longer counts against the limits.
  struct Entry {
    std::weak_ptr<SessionBase> session;
    std::string address;  // addressText() of the peer
    bool evicting = false;
  };
  std::mutex reg_mu;
  std::map<uint64_t, Entry> sessions;
  std::map<std::string, size_t> per_peer;  // registered, not evicting, by address
  size_t evicting = 0;
  uint64_t next_session = 1;
  bool stopping = false;
  bool stopped = false;
  std::vector<std::function<void()>> stop_waiters;

  void setError(std::string text) {
    std::lock_guard lock(err_mu);
    last_error = std::move(text);
    last_error_ms = clock->nowMs();
  }

  // warn() through the log budget.
  void warn(std::string_view event, std::initializer_list<log::Field> fields) {
    uint64_t suppressed = 0;
    if (!warn_budget.take(suppressed)) {
      return;
    }
    log.warn(event, fields);
    if (suppressed > 0) {
      log.warn("log_lines_suppressed", {{"count", suppressed}});
    }
  }

  void unregister(uint64_t id) {
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard lock(reg_mu);
      if (auto it = sessions.find(id); it != sessions.end()) {
        if (it->second.evicting) {
          --evicting;
        } else if (auto p = per_peer.find(it->second.address);
                   p != per_peer.end() && --p->second == 0) {
          per_peer.erase(p);
        }
        sessions.erase(it);
      }
      if (stopping && !stopped && sessions.empty()) {
        stopped = true;
        waiters.swap(stop_waiters);
      }
    }
    for (auto& w : waiters) {
      w();
    }
  }
};

// One received message (or framing event that needs an answer), in arrival order.
struct Slot {
  uint64_t id = 0;
  bool ready = false;        // the answer is known (commit done, or nothing to commit)
  bool close_after = false;  // no answer possible (MSH-15 forbids a reject): close instead
  bool send_reject = true;   // MSH-15 allows an AR/CR for this message
  std::string ack;           // the answer (unframed); empty: send nothing
  std::string header;        // MSH segment, for a reject built after a failed commit
  TimePoint received{};
};

template <bool kTls>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<kTls>> {
  using Stream = std::conditional_t<kTls, ssl::stream<tcp::socket>, tcp::socket>;

 public:
  // Plain TCP.
  Session(std::shared_ptr<Shared> shared, tcp::socket socket, uint64_t id,
          std::string peer) requires(!kTls)
      : SessionBase(std::move(peer)),
        sh_(std::move(shared)),
        stream_(std::move(socket)),
        timer_(stream_.get_executor()),
        id_(id),
        decoder_(sh_->settings.max_message_bytes) {}
  // TLS.
  Session(std::shared_ptr<Shared> shared, tcp::socket socket, uint64_t id,
          std::string peer) requires(kTls)
      : SessionBase(std::move(peer)),
        sh_(std::move(shared)),
        stream_(std::move(socket), *sh_->tls),
        timer_(stream_.get_executor()),
        id_(id),
        decoder_(sh_->settings.max_message_bytes) {}

  ~Session() override { sh_->connections_open.fetch_sub(1, std::memory_order_relaxed); }

  void start() {
    auto self = this->shared_from_this();
    asio::post(stream_.get_executor(),
               [self] { guardInvariant("mllp.session_start", [&] { self->onStart(); }); });
  }

  void stop() override {
    auto self = this->shared_from_this();
    asio::post(stream_.get_executor(),
               [self] { guardInvariant("mllp.session_stop", [&] { self->onStop(); }); });
  }

  void evict() override {
    auto self = this->shared_from_this();
    asio::post(stream_.get_executor(), [self] {
      guardInvariant("mllp.session_evict", [&] {
        if (!self->closed_ && !self->pending_.empty()) {
          self->sh_->log.debug("evicted_connection_finishing",
                               {{"peer", self->peer_},
                                {"unanswered", static_cast<uint64_t>(self->pending_.size())}});
        }
        self->onStop();
      });
    });
  }

  void forceClose() override {
    auto self = this->shared_from_this();
    asio::post(stream_.get_executor(), [self] {
      guardInvariant("mllp.session_close", [&] {
        if (!self->closed_) {
          self->sh_->log.warn("connection_forced_closed",
                              {{"peer", self->peer_},
                               {"unanswered", static_cast<uint64_t>(self->pending_.size())}});
        }
        self->closeNow();
      });
    });
  }

 private:
  tcp::socket& sock() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  void onStart() {
    if (closed_) {
      return;  // stopped before it started
    }
    const auto now = SteadyClock::now();
    progress(now);
    buf_size_ = kReadMin;
    buf_ = std::make_unique<char[]>(buf_size_);
    error_code ec;
    sock().set_option(tcp::no_delay(true), ec);
    sh_->log.debug("connection_opened", {{"peer", peer_}, {"tls", kTls}});
    if constexpr (kTls) {
      handshaking_ = true;
      handshake_deadline_ = now + sh_->settings.handshake_timeout;
      auto self = this->shared_from_this();
      stream_.async_handshake(ssl::stream_base::server, [self](const error_code& e) {
        guardInvariant("mllp.tls_handshake", [&] { self->onHandshake(e); });
      });
    } else {
      doRead();
    }
    armTimer(now);
  }

  void onHandshake(const error_code& ec) {
    handshaking_ = false;
    if (closed_) {
      finishIfDone();
      return;
    }
    if (ec) {
      sh_->tls_failures.fetch_add(1, std::memory_order_relaxed);
      std::string why = ec.message();
      if constexpr (kTls) {
        const long verify = SSL_get_verify_result(stream_.native_handle());
        if (verify != X509_V_OK) {
          why = std::string("client certificate: ") + X509_verify_cert_error_string(verify);
        }
      }
      sh_->warn("tls_handshake_failed", {{"peer", peer_}, {"error", why}});
      closeNow();
      return;
    }
    if constexpr (kTls) {
      if (X509* cert = SSL_get_peer_certificate(stream_.native_handle())) {
        char cn[256] = {0};
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        X509_free(cert);
        sh_->log.debug("tls_client", {{"peer", peer_}, {"cn", std::string_view(cn)}});
      }
    }
    progress(SteadyClock::now());
    if (stopping_) {
      closeNow();
      return;
    }
    doRead();
  }

  void onStop() {
    stopping_ = true;
    if (closed_) {
      return;
    }
    if (handshaking_) {
      closeNow();
      return;
    }
    // No new reads; a read already outstanding may still deliver bytes, which are handled
    // normally. Close once every received message is answered.
    input_done_ = true;
    finishIfDone();
  }

  // ---- reading --------------------------------------------------------------------------

  void doRead() {
    if (reading_ || input_done_ || closed_ || handshaking_) {
      return;
    }
    if (pending_.size() >= sh_->settings.max_pipeline) {
      return;  // resumed when answers go out
    }
    reading_ = true;
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(buf_.get(), buf_size_),
                            [self](const error_code& ec, size_t n) {
                              guardInvariant("mllp.read", [&] { self->onRead(ec, n); });
                            });
  }

  void onRead(const error_code& ec, size_t n) {
    reading_ = false;
    if (closed_) {
      finishIfDone();
      return;
    }
    if (ec) {
      endOfInput(ec);
      return;
    }
    // Bytes alone are no progress (a sender trickling a frame that never ends is idle); a whole
    // frame is (handleChunk).
    const auto now = SteadyClock::now();
    sh_->bytes_in.fetch_add(n, std::memory_order_relaxed);
    handleChunk(std::string_view(buf_.get(), n), now);
    if (n == buf_size_ && buf_size_ < kReadMax) {
      buf_size_ *= 2;  // the decoder copied what it keeps: the old buffer is free
      buf_ = std::make_unique<char[]>(buf_size_);
    }
    if (decoder_.pendingJunk() > kMaxJunkBytes) {
      sh_->framing_errors.fetch_add(1, std::memory_order_relaxed);
      sh_->warn("not_mllp", {{"peer", peer_},
                             {"junk_bytes", static_cast<uint64_t>(decoder_.pendingJunk())},
                             {"action", "closing the connection"}});
      input_done_ = true;
    }
    pumpWrites();
    doRead();
    finishIfDone();
    publishBusy();
  }

  void endOfInput(const error_code& ec) {
    input_done_ = true;
    const bool normal = ec == asio::error::eof || ec == ssl::error::stream_truncated ||
                        ec == asio::error::connection_reset || ec == asio::error::operation_aborted;
    if (!normal) {
      sh_->log.debug("read_error", {{"peer", peer_}, {"error", ec}});
    }
    if (auto ev = decoder_.finish()) {
      // Appends nothing to a batch: only faults (or a frame missing its final CR) come here.
      handleFinalEvent(*ev);
    }
    pumpWrites();
    finishIfDone();
    publishBusy();
  }

  struct Pending {
    store::AppendBatch batch;
    std::vector<uint64_t> record_slots;
    std::vector<uint64_t> dead_slots;
  };

  void handleChunk(std::string_view chunk, TimePoint received) {
    if (auto st = decoder_.feed(chunk); !st) {
      // Cannot happen: every chunk is drained before the next read.
      sh_->log.error("decoder_not_drained", {{"peer", peer_}});
      closeNow();
      return;
    }
    Pending work;
    const int64_t received_ms = sh_->clock->nowMs();
    while (auto ev = decoder_.next()) {
      if (ev->type == MllpEvent::Type::frame) {
        progress(received);
        onFrame(*ev, received, received_ms, work);
      } else {
        onFault(*ev, received);
      }
    }
    if (!work.batch.records.empty() || !work.batch.dead.empty()) {
      commit(std::move(work));
    }
  }

  // A start block never arrived after the last frame, or the stream ended in one.
  void handleFinalEvent(const MllpEvent& ev) {
    if (ev.type == MllpEvent::Type::frame) {
      // The end block arrived but not its CR: the frame is whole. Process it.
      Pending work;
      onFrame(ev, SteadyClock::now(), sh_->clock->nowMs(), work);
      if (!work.batch.records.empty() || !work.batch.dead.empty()) {
        commit(std::move(work));
      }
      return;
    }
    onFault(ev, SteadyClock::now());
  }

  Slot& newSlot(TimePoint received) {
    busy.store(true, std::memory_order_relaxed);
    Slot& s = pending_.emplace_back();
    s.id = next_slot_++;
    s.received = received;
    return s;
  }

  void onFault(const MllpEvent& ev, TimePoint received) {
    sh_->framing_errors.fetch_add(1, std::memory_order_relaxed);
    const std::string_view fault = mllpFaultName(ev.fault);
    if (ev.fault == MllpFault::oversize) {
      // Answer it (AR/CR 207, with MSH-10 if the head has it); the frame is discarded.
      sh_->oversize.fetch_add(1, std::memory_order_relaxed);
      Issue issue;
      issue.code = ErrorCode::application_internal_error;
      issue.errc = Errc::limit;
      issue.text = "message larger than " + std::to_string(sh_->settings.max_message_bytes) +
                   " bytes (max_message_bytes); not accepted";
      Slot& s = newSlot(received);
      s.ack = sh_->acks.buildReject(ev.data, issue);
      s.ready = true;
      sh_->warn("framing_fault", {{"peer", peer_},
                                  {"fault", fault},
                                  {"limit", static_cast<uint64_t>(ev.bytes)},
                                  {"offset", ev.offset},
                                  {"action", "rejected (AR 207), frame discarded"}});
      return;
    }
    sh_->warn("framing_fault", {{"peer", peer_},
                                {"fault", fault},
                                {"bytes", static_cast<uint64_t>(ev.bytes)},
                                {"offset", ev.offset},
                                {"action", ev.fault == MllpFault::junk_before_start
                                               ? "skipped"
                                               : "partial frame discarded, not acknowledged"}});
  }

  void onFrame(const MllpEvent& ev, TimePoint received, int64_t received_ms, Pending& work) {
    if (ev.fault == MllpFault::missing_end_cr) {
      sh_->missing_end_cr.fetch_add(1, std::memory_order_relaxed);
    }
    if (ev.data.empty()) {
      sh_->keepalives.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    sh_->messages.fetch_add(1, std::memory_order_relaxed);
    ++messages_;
    const MllpSettings& cfg = sh_->settings;
    Slot& slot = newSlot(received);
    store::Record rec;
    rec.source = cfg.name;
    rec.vendor = cfg.vendor;
    rec.format = std::string(store::format::kHl7v2);
    rec.received_at_ms = received_ms;
    std::string payload(ev.data);

    Message& msg = os::perThread<Message>();
    std::vector<Issue>& issues = os::perThread<std::vector<Issue>>();
    issues.clear();
    if (auto st = msg.parse(payload, sh_->limits); !st) {
      const Issue& failure = msg.failure();
      slot.ack = sh_->acks.buildReject(payload, failure);
      slot.header = payload.substr(0, std::min<size_t>(payload.size(), 512));
      store::DeadLetterInput dead;
      dead.reason = failure.describe();
      rec.kind = store::Kind::other;
      rec.payload = Sensitive<std::string>(std::move(payload));
      dead.record = std::move(rec);
      sh_->warn("message_rejected", {{"peer", peer_}, {"reason", dead.reason}});
      work.batch.dead.push_back(std::move(dead));
      work.dead_slots.push_back(slot.id);
      return;
    }
    slot.header = std::string(msg.segmentText(0));
    slot.send_reject = sh_->acks.shouldSend(msg, Outcome::reject);
    rec.kind = cfg.classifier.classify(msg);
    validate(msg, cfg.rules, issues);
    const Outcome outcome = outcomeFor(issues);
    if (outcome != Outcome::accept) {
      if (sh_->acks.shouldSend(msg, outcome)) {
        sh_->acks.buildTo(slot.ack, msg, outcome, issues);
      } else {
        sh_->acks_suppressed.fetch_add(1, std::memory_order_relaxed);
      }
      store::DeadLetterInput dead;
      dead.reason = issues.front().describe();
      if (issues.size() > 1) {
        dead.reason += " (+" + std::to_string(issues.size() - 1) + " more)";
      }
      sh_->warn("message_rejected", {{"peer", peer_},
                                     {"control_id_hash", hashedId(msg.controlId())},
                                     {"reason", dead.reason}});
      rec.payload = Sensitive<std::string>(std::move(payload));
      dead.record = std::move(rec);
      work.batch.dead.push_back(std::move(dead));
      work.dead_slots.push_back(slot.id);
      return;
    }
    if (sh_->acks.shouldSend(msg, Outcome::accept)) {
      sh_->acks.buildTo(slot.ack, msg, Outcome::accept);
    } else {
      sh_->acks_suppressed.fetch_add(1, std::memory_order_relaxed);
    }
    if (cfg.dedupe) {
      rec.dedupe_identity = Sensitive<std::string>(dedupeIdentity(msg));
    }
    rec.payload = Sensitive<std::string>(std::move(payload));
    work.batch.records.push_back(std::move(rec));
    work.record_slots.push_back(slot.id);
  }

  // ---- committing -----------------------------------------------------------------------

  void commit(Pending work) {
    ++commits_outstanding_;
    busy.store(true, std::memory_order_relaxed);  // before the store can complete it
    auto self = this->shared_from_this();
    auto record_slots = std::make_shared<std::vector<uint64_t>>(std::move(work.record_slots));
    auto dead_slots = std::make_shared<std::vector<uint64_t>>(std::move(work.dead_slots));
    sh_->sink.append(std::move(work.batch),
                     [self, record_slots, dead_slots](Result<store::AppendResult> result) {
                       // Store writer thread: hand over to the session's strand at once.
                       asio::post(self->stream_.get_executor(),
                                  [self, record_slots, dead_slots, r = std::move(result)]() {
                                    guardInvariant("mllp.committed", [&] {
                                      self->onCommitted(r, *record_slots, *dead_slots);
                                    });
                                  });
                     });
  }

  Slot* slotById(uint64_t id) {
    if (pending_.empty() || id < pending_.front().id) {
      return nullptr;
    }
    const uint64_t k = id - pending_.front().id;
    return k < pending_.size() ? &pending_[k] : nullptr;
  }

  void onCommitted(const Result<store::AppendResult>& result,
                   const std::vector<uint64_t>& record_slots,
                   const std::vector<uint64_t>& dead_slots) {
    --commits_outstanding_;
    if (result) {
      const auto& appended = result.value().records;
      for (size_t k = 0; k < record_slots.size(); ++k) {
        Slot* s = slotById(record_slots[k]);
        if (s == nullptr) {
          continue;
        }
        s->ready = true;
        if (k < appended.size() && appended[k].duplicate) {
          sh_->duplicates.fetch_add(1, std::memory_order_relaxed);
        } else {
          sh_->accepted.fetch_add(1, std::memory_order_relaxed);
        }
      }
      for (uint64_t id : dead_slots) {
        if (Slot* s = slotById(id)) {
          s->ready = true;
        }
      }
      sh_->dead_letters.fetch_add(dead_slots.size(), std::memory_order_relaxed);
      if (!record_slots.empty()) {
        sh_->last_message_ms.store(sh_->clock->nowMs(), std::memory_order_relaxed);
      }
    } else {
      // Nothing of the batch is stored: every message in it gets "retry later".
      const Error& err = result.error();
      Issue issue;
      issue.code = ErrorCode::application_internal_error;
      issue.errc = err.is(Errc::full) ? Errc::full : Errc::unavailable;
      if (err.is(Errc::full)) {
        issue.text = "receiver queue full; message not accepted, retry later";
      } else if (err.is(Errc::closed)) {
        issue.text = "receiver shutting down; message not accepted, retry later";
      } else {
        issue.text = "receiver storage error; message not accepted, retry later";
      }
      const size_t n = record_slots.size() + dead_slots.size();
      sh_->store_refused.fetch_add(n, std::memory_order_relaxed);
      sh_->setError("store refused " + std::to_string(n) + " message(s): " + err.message);
      sh_->warn("store_refused", {{"peer", peer_},
                                  {"messages", static_cast<uint64_t>(n)},
                                  {"error", err.code},
                                  {"answer", "AR/CR retry later"}});
      auto refuse = [&](uint64_t id) {
        Slot* s = slotById(id);
        if (s == nullptr) {
          return;
        }
        s->ready = true;
        if (s->send_reject) {
          s->ack = sh_->acks.buildReject(s->header, issue);
        } else {
          s->ack.clear();
          s->close_after = true;  // the sender asked for no reject: dropping the line tells it
        }
      };
      for (uint64_t id : record_slots) {
        refuse(id);
      }
      for (uint64_t id : dead_slots) {
        refuse(id);
      }
    }
    pumpWrites();
    doRead();
    finishIfDone();
    publishBusy();
  }

  // ---- writing --------------------------------------------------------------------------

  void pumpWrites() {
    if (writing_ || closed_) {
      return;
    }
    write_buf_.clear();
    write_times_.clear();
    bool close_after = false;
    while (!pending_.empty() && pending_.front().ready) {
      Slot& s = pending_.front();
      if (!s.ack.empty()) {
        mllpFrameTo(s.ack, write_buf_);
        write_times_.push_back(s.received);
        if (auto code = ackCodeOf(s.ack)) {
          sh_->ack_counts[*code].fetch_add(1, std::memory_order_relaxed);
        }
      }
      close_after = s.close_after;
      pending_.pop_front();
      if (close_after) {
        break;
      }
    }
    if (close_after) {
      input_done_ = true;
      close_after_write_ = true;
    }
    if (write_buf_.empty()) {
      if (close_after_write_) {
        closeNow();
      }
      return;
    }
    writing_ = true;
    write_started_ = SteadyClock::now();
    auto self = this->shared_from_this();
    asio::async_write(stream_, asio::buffer(write_buf_), [self](const error_code& ec, size_t n) {
      guardInvariant("mllp.write", [&] { self->onWrite(ec, n); });
    });
  }

  void onWrite(const error_code& ec, size_t n) {
    writing_ = false;
    if (closed_) {
      finishIfDone();
      return;
    }
    if (ec) {
      sh_->log.debug("write_failed", {{"peer", peer_}, {"error", ec}});
      closeNow();
      return;
    }
    const auto now = SteadyClock::now();
    progress(now);
    sh_->bytes_out.fetch_add(n, std::memory_order_relaxed);
    for (const auto& t : write_times_) {
      sh_->latency.record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - t).count()));
    }
    if (write_buf_.capacity() > 256 * 1024) {
      std::string().swap(write_buf_);
    }
    if (close_after_write_) {
      closeNow();
      return;
    }
    pumpWrites();
    doRead();
    finishIfDone();
    publishBusy();
  }

  // ---- ending ---------------------------------------------------------------------------

  void finishIfDone() {
    if (!closed_) {
      if (input_done_ && pending_.empty() && !writing_) {
        closeNow();  // every received message is answered
      }
      return;
    }
    if (!reading_ && !writing_ && !handshaking_ && commits_outstanding_ == 0 && !unregistered_) {
      unregistered_ = true;
      pending_.clear();
      sh_->log.debug("connection_closed", {{"peer", peer_}, {"messages", messages_}});
      sh_->unregister(id_);
    }
  }

  void closeNow() {
    if (!closed_) {
      closed_ = true;
      input_done_ = true;
      error_code ec;
      sock().shutdown(tcp::socket::shutdown_both, ec);
      sock().close(ec);
      timer_.cancel();
    }
    finishIfDone();
  }

  // Progress: the connection opened or finished its handshake, a whole frame arrived, or an ACK
  // went out. Idleness (idle timeout, eviction) counts from the last progress.
  void progress(TimePoint now) {
    last_activity_ = now;
    progress_ns.store(steadyNs(now), std::memory_order_relaxed);
  }

  void publishBusy() {
    busy.store(!pending_.empty() || writing_ || commits_outstanding_ > 0,
               std::memory_order_relaxed);
  }

  // One timer per connection, re-armed lazily: activity only updates timestamps.
  void armTimer(TimePoint now) {
    const auto& cfg = sh_->settings;
    // Re-check at least every write_timeout (and idle_timeout): a write that starts or an
    // answer that goes out after this arming is noticed in time.
    auto recheck = std::min<SteadyClock::duration>(std::chrono::seconds(60), cfg.write_timeout);
    if (cfg.idle_timeout.count() > 0) {
      recheck = std::min<SteadyClock::duration>(recheck, cfg.idle_timeout);
    }
    TimePoint next = now + recheck;
    if (handshaking_) {
      next = std::min(next, handshake_deadline_);
    }
    if (writing_) {
      next = std::min(next, write_started_ + cfg.write_timeout);
    } else if (pending_.empty() && cfg.idle_timeout.count() > 0) {
      next = std::min(next, last_activity_ + cfg.idle_timeout);
    }
    timer_.expires_at(next);
    auto self = this->shared_from_this();
    timer_.async_wait(
        [self](const error_code& ec) { guardInvariant("mllp.timer", [&] { self->onTimer(ec); }); });
  }

  void onTimer(const error_code& ec) {
    if (ec || closed_) {
      return;
    }
    const auto now = SteadyClock::now();
    const auto& cfg = sh_->settings;
    if (handshaking_ && now >= handshake_deadline_) {
      sh_->tls_failures.fetch_add(1, std::memory_order_relaxed);
      sh_->warn("tls_handshake_timeout", {{"peer", peer_}});
      closeNow();
      return;
    }
    if (writing_ && now - write_started_ >= cfg.write_timeout) {
      sh_->write_timeouts.fetch_add(1, std::memory_order_relaxed);
      sh_->warn("write_timeout", {{"peer", peer_}, {"hint", "the sender does not read its ACKs"}});
      closeNow();
      return;
    }
    if (!writing_ && !handshaking_ && pending_.empty() && cfg.idle_timeout.count() > 0 &&
        now - last_activity_ >= cfg.idle_timeout) {
      // Also a sender that began a frame and trickles bytes that never complete it: nothing of
      // it was acknowledged, so nothing is lost.
      sh_->idle_timeouts.fetch_add(1, std::memory_order_relaxed);
      const auto partial = static_cast<uint64_t>(decoder_.buffered());
      if (partial > 0) {
        sh_->idle_timeouts_mid_frame.fetch_add(1, std::memory_order_relaxed);
      }
      sh_->log.info("idle_timeout", {{"peer", peer_},
                                     {"idle_s", static_cast<int64_t>(cfg.idle_timeout.count())},
                                     {"partial_frame_bytes", partial}});
      closeNow();
      return;
    }
    armTimer(now);
  }

  std::shared_ptr<Shared> sh_;
  Stream stream_;
  asio::steady_timer timer_;
  uint64_t id_;
  MllpDecoder decoder_;
  std::unique_ptr<char[]> buf_;
  size_t buf_size_ = 0;
  std::deque<Slot> pending_;
  uint64_t next_slot_ = 0;
  std::string write_buf_;
  std::vector<TimePoint> write_times_;
  uint64_t messages_ = 0;
  size_t commits_outstanding_ = 0;
  bool handshaking_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool input_done_ = false;
  bool closed_ = false;
  bool stopping_ = false;
  bool close_after_write_ = false;
  bool unregistered_ = false;
  TimePoint last_activity_{};  // the last progress()
  TimePoint write_started_{};
  TimePoint handshake_deadline_{};
};

// "No such file or directory" and friends before OpenSSL turns them into "asio.ssl error".
std::optional<std::string> unreadable(const std::filesystem::path& file) {
  std::ifstream f(file, std::ios::binary);
  if (!f) {
    return os::errnoText(errno);
  }
  return std::nullopt;
}

std::unique_ptr<ssl::context> makeServerTls(const MllpTlsSettings& t, std::string& error) {
  for (const auto& [key, file] :
       {std::pair<const char*, const std::filesystem::path*>{"tls.cert_file", &t.cert_file},
        {"tls.key_file", &t.key_file},
        {"tls.client_ca_file", &t.client_ca_file}}) {
    if (file->empty()) {
      continue;
    }
    if (auto why = unreadable(*file)) {
      error = std::string(key) + " " + file->string() + ": " + *why;
      return nullptr;
    }
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(),
                                t.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  error_code ec;
  ctx->use_certificate_chain_file(os::pathToUtf8(t.cert_file), ec);
  if (ec) {
    error = "tls.cert_file " + t.cert_file.string() + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(os::pathToUtf8(t.key_file), ssl::context::pem, ec);
  if (ec) {
    error = "tls.key_file " + t.key_file.string() + ": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    error = "tls.key_file " + t.key_file.string() + " does not match tls.cert_file";
    return nullptr;
  }
  if (!t.client_ca_file.empty()) {
    ctx->load_verify_file(os::pathToUtf8(t.client_ca_file), ec);
    if (ec) {
      error = "tls.client_ca_file " + t.client_ca_file.string() + ": " + ec.message();
      return nullptr;
    }
    if (STACK_OF(X509_NAME)* names =
            SSL_load_client_CA_file(os::pathToUtf8(t.client_ca_file).c_str())) {
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

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
        setListenOptions(*acc, ec);
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
          hint = " (" + listenAccessDeniedMeaning() + ")";
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
    std::shared_ptr<SessionBase> base;
    if (sh_->tls) {
      auto s = std::make_shared<Session<true>>(sh_, std::move(socket), admission.id, peer);
      base = s;
      registerSession(admission.id, base, address);
      s->start();
    } else {
      auto s = std::make_shared<Session<false>>(sh_, std::move(socket), admission.id, peer);
      base = s;
      registerSession(admission.id, base, address);
      s->start();
    }
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

Result<SourcePtr> makeMllpListener(MllpSettings settings, SourceContext& ctx) {
  auto shared = std::make_shared<Shared>(std::move(settings), ctx.sink, ctx.clock);
  if (shared->settings.tls) {
    std::string error;
    shared->tls = makeServerTls(*shared->settings.tls, error);
    if (!shared->tls) {
      return Error(Errc::io, error);
    }
  }
  return SourcePtr(std::make_shared<MllpListener>(std::move(shared), ctx.io));
}

namespace {

// The listening sockets that can have taken a connection to `ep` (the same address, or a
// wildcard; a wildcard endpoint was probed on loopback), else every one on its port; one per
// process.
std::vector<os::TcpListener> holdersOf(const ListenEndpoint& ep,
                                       const std::vector<os::TcpListener>& all) {
  const bool wildcard = ep.host == "0.0.0.0" || ep.host == "::";
  std::vector<os::TcpListener> out;
  for (const auto& l : all) {
    const bool match = l.address == ep.host || l.address == "0.0.0.0" || l.address == "::" ||
                       (wildcard && (l.address == "127.0.0.1" || l.address == "::1"));
    const bool seen = std::any_of(out.begin(), out.end(), [&](const os::TcpListener& o) {
      return o.pid == l.pid && o.user == l.user;
    });
    if (match && !seen) {
      out.push_back(l);
    }
  }
  if (out.empty() && !all.empty()) {
    out.push_back(all.front());
  }
  return out;
}

bool isThisProgram(const os::TcpListener& l) {
  return l.pid == os::currentProcessId() ||
         (l.pid >= 0 && !l.process.empty() && l.process == os::currentProcessName());
}

// "nc (pid 4242)", "pid 4242", "a process of user bob".
std::string holderText(const os::TcpListener& l) {
  if (l.pid < 0) {
    return "a process of user " + (l.user.empty() ? std::string("unknown") : l.user);
  }
  return l.process.empty() ? "pid " + std::to_string(l.pid)
                           : l.process + " (pid " + std::to_string(l.pid) + ")";
}

// Something accepted a connection on `ep`: the agent, or another program?
CheckResult listenerHolderCheck(const std::string& name, const ListenEndpoint& ep,
                                const std::filesystem::path& state_dir) {
  using Level = CheckResult::Level;
  auto all = os::tcpListenersOnPort(ep.port);
  if (!all) {
    return {Level::warn, name,
            "something listens on " + ep.text + " but which process could not be told (" +
                all.error().message + ") ▸ with the agent stopped, another program holds it"};
  }
  const std::vector<os::TcpListener> holders = holdersOf(ep, *all);
  if (holders.empty()) {  // it went away since the connection was made
    return {Level::warn, name, "something listened on " + ep.text + " a moment ago, gone now"};
  }
  for (const auto& h : holders) {
    if (h.pid >= 0 && !isThisProgram(h)) {
      return {Level::fail, name,
              ep.text + " is held by " + holderText(h) +
                  ", not the agent ▸ stop that program or change listen (the agent takes the "
                  "port as soon as it is free)"};
    }
  }
  const os::TcpListener& h = holders.front();
  if (h.pid < 0 && h.user.empty()) {
    return {Level::warn, name,
            "something listens on " + ep.text +
                " but the OS does not say which process ▸ with the agent stopped, another "
                "program holds it"};
  }
  if (h.pid >= 0) {
    return {Level::ok, name,
            "listening on " + ep.text + " (" + (h.process.empty() ? "" : h.process + " ") + "pid " +
                std::to_string(h.pid) + ")"};
  }
  // Another account's process, which only root may look into: the agent's account owns the
  // state dir.
  const std::string agent_user = os::describeSecretFile(state_dir).owner;
  if (!agent_user.empty() && h.user == agent_user) {
    return {Level::ok, name,
            "listening on " + ep.text + " (" + holderText(h) +
                ", the agent's account; run as root to see the process)"};
  }
  return {
      Level::fail, name,
      ep.text + " is held by " + holderText(h) + ", not the agent's account (" +
          (agent_user.empty() ? std::string("the owner of ") + state_dir.string() : agent_user) +
          ") ▸ run as root to see the process; stop it or change listen"};
}

}  // namespace

std::vector<CheckResult> checkMllpListener(const MllpSettings& settings,
                                           const std::filesystem::path& state_dir) {
  std::vector<CheckResult> out;
  const std::string name = "adapter " + settings.name;
  if (settings.tls) {
    std::string error;
    if (!makeServerTls(*settings.tls, error)) {
      out.push_back({CheckResult::Level::fail, name, error});
    } else {
      out.push_back(
          {CheckResult::Level::ok, name,
           std::string("TLS certificate and key usable") +
               (settings.tls->client_ca_file.empty() ? "" : "; client certificates required")});
    }
  }
  for (const auto& ep : settings.listen) {
    std::string host = ep.host;
    if (host == "0.0.0.0") {
      host = "127.0.0.1";
    } else if (host == "::") {
      host = "::1";
    }
    MllpClientOptions opts;
    opts.host = host;
    opts.port = ep.port;
    opts.timeout = std::chrono::milliseconds(1000);
    if (ep.port != 0 && MllpClient::connect(opts)) {
      out.push_back(listenerHolderCheck(name, ep, state_dir));
      continue;
    }
    asio::io_context io;
    error_code ec;
    const auto addr = asio::ip::make_address(ep.host, ec);
    tcp::acceptor acc(io);
    if (!ec) {
      acc.open(addr.is_v6() ? tcp::v6() : tcp::v4(), ec);
    }
    if (!ec) {
      setListenOptions(acc, ec);
    }
    if (!ec && addr.is_v6()) {
      acc.set_option(asio::ip::v6_only(true), ec);
    }
    if (!ec) {
      acc.bind(tcp::endpoint(addr, ep.port), ec);
    }
    if (!ec) {
      out.push_back({CheckResult::Level::warn, name,
                     "nothing listens on " + ep.text +
                         " but the port is free ▸ is the agent running? (" +
                         serviceStatusCommand() + ")"});
    } else if (ec == asio::error::access_denied) {
      out.push_back({CheckResult::Level::fail, name,
                     ep.text + ": permission denied ▸ " + listenAccessDeniedMeaning()});
    } else if (ec == boost::system::errc::address_not_available) {
      out.push_back(
          {CheckResult::Level::fail, name, ep.text + ": address not on this host ▸ fix listen"});
    } else {
      // In use, yet no connection was taken (held on another address, a full backlog).
      std::string who = "another program";
      if (auto all = os::tcpListenersOnPort(ep.port); all && !all->empty()) {
        who = holderText(all->front());
      }
      out.push_back({CheckResult::Level::fail, name,
                     ep.text + ": " + ec.message() + " ▸ " + who +
                         " holds the port; change listen or stop it"});
    }
  }
  return out;
}

}  // namespace psa::adapters::hl7
