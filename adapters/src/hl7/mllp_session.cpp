// One MLLP connection of the hl7-mllp listener, plain or TLS (the Session template): bytes ->
// MllpDecoder -> frames -> parse, validate, classify -> one AppendBatch per read chunk ->
// RecordSink::append -> the ACKs, written strictly in arrival order once their batch is
// durable. Everything of a session runs on its own strand.
#include "hl7/mllp_session.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>

#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"
#include "psa/store/os/per_thread.h"

namespace psa::adapters::hl7::mllp {
namespace {

// Per-connection read buffer: small while a connection idles or trickles, grown when a read
// fills it (bursts, big messages), so 512 idle connections cost little.
constexpr size_t kReadMin = 4 * 1024;
constexpr size_t kReadMax = 64 * 1024;
constexpr size_t kMaxJunkBytes = 64 * 1024;  // non-MLLP bytes before the connection is closed

// First 12 hex digits of SHA-256 of a control id: correlates log lines without content.
std::string hashedId(std::string_view control_id) { return sha256Hex(control_id).substr(0, 12); }

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

  void start() override {
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
    sh_->sink.append(std::move(work.batch), [self, record_slots,
                                             dead_slots](Result<store::AppendResult> result) {
      // Store writer thread: hand over to the session's strand at once.
      asio::post(self->stream_.get_executor(), [self, record_slots, dead_slots,
                                                r = std::move(result)]() {
        guardInvariant("mllp.committed", [&] { self->onCommitted(r, *record_slots, *dead_slots); });
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

}  // namespace

std::shared_ptr<SessionBase> makeSession(std::shared_ptr<Shared> shared, tcp::socket socket,
                                         uint64_t id, std::string peer) {
  if (shared->tls) {
    return std::make_shared<Session<true>>(std::move(shared), std::move(socket), id,
                                           std::move(peer));
  }
  return std::make_shared<Session<false>>(std::move(shared), std::move(socket), id,
                                          std::move(peer));
}

}  // namespace psa::adapters::hl7::mllp
