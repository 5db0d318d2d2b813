// What an MLLP listener and its sessions share (internal to the hl7-mllp source): the state
// and counters of one listener (`Shared`, which sessions may outlive the listener object), the
// interface the listener sees of a session (`SessionBase`), and small helpers of both.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hl7/mllp_settings.h"
#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/message.h"
#include "psa/store/clock.h"
#include "psa/store/latency_histogram.h"
#include "psa/store/log.h"
#include "psa/store/log_budget.h"
#include "psa/store/record_sink.h"

namespace psa::adapters::hl7::mllp {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

enum AckCode : size_t { kAA, kAE, kAR, kCA, kCE, kCR, kAckCodes };
constexpr std::array<const char*, kAckCodes> kAckNames = {"AA", "AE", "AR", "CA", "CE", "CR"};

// MSA-1 of a prepared ACK (its bytes, as built by AckBuilder).
std::optional<AckCode> ackCodeOf(std::string_view ack);

/// "10.0.0.5:51234", "[::1]:2575" (IPv4-mapped IPv6 as IPv4).
std::string endpointText(const tcp::endpoint& ep);

// The peer's address without the port (IPv4-mapped IPv6 as IPv4): the key of the per-peer
// connection count.
std::string addressText(const asio::ip::address& addr);

inline int64_t steadyNs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// One connection, as the listener sees it (the Session template in mllp_session.cpp).
class SessionBase {
 public:
  explicit SessionBase(std::string peer) : peer_(std::move(peer)) {
    progress_ns.store(steadyNs(SteadyClock::now()), std::memory_order_relaxed);
  }
  virtual ~SessionBase() = default;
  /// Begin: the TLS handshake or the first read (on the session's strand).
  virtual void start() = 0;
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
  Shared(MllpSettings s, store::RecordSink& k, ClockPtr c);

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
  std::atomic<uint64_t> connections_refused{0};          // allow list
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
  // At most 20 warn lines a second from one listener (a flood of bad connections must not
  // flood the log); the rest are counted and reported with the next line allowed.
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

  /// Any thread: the last error of the status document.
  void setError(std::string text);
  /// log.warn() within the listener's budget of warn lines (warn_budget).
  void warn(std::string_view event, std::initializer_list<log::Field> fields);
  /// Any thread: the session `id` has closed; the last one of a stop calls the stop waiters.
  void unregister(uint64_t id);
};

}  // namespace psa::adapters::hl7::mllp
