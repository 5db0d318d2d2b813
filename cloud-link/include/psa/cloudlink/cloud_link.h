// CloudLink: the MQTT 5 / mutual-TLS session to the Practice Studio cloud (design.md
// "Contract: MQTT topics and envelope"). It leases records from the store in order, publishes
// each to P/up/{kind} with QoS 1 and the contract's user properties, and releases a record
// only when the broker acknowledged it with a success reason code (or, in receipt mode, when
// the cloud's receipt names it). It keeps the retained P/status (Last Will: offline), receives
// P/config/set and P/cmd/+ for the agent, and reconnects with back-off and jitter.
//
// Threads: all link state lives on one Asio strand of the io_context given to create(), and is
// touched only there; there is no lock. Every public method may be called from any thread: it
// posts its work to the strand and returns (status() waits for the strand's answer, or answers
// inline when called on the strand). Callbacks (ControlSink, the status provider, `done`
// callbacks) run on the strand and must not block. libmosquitto's thread and the store's
// threads only post to the strand.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/cloudlink/broker_limits.h"
#include "psa/store/clock.h"
#include "psa/store/queue_reader.h"
#include "psa/store/result.h"

namespace psa::cloudlink {

/// When a record counts as delivered (`cloud.confirm`).
enum class Confirm {
  broker,   ///< the broker's PUBACK (success reason code) releases it
  receipt,  ///< it stays leased until the cloud names its msg-id on P/receipt
};

std::string_view confirmName(Confirm confirm);
/// "broker" / "receipt"; nullopt otherwise.
std::optional<Confirm> parseConfirm(std::string_view text);

/// Everything the link needs; the agent maps its `cloud` config section onto this. There is
/// deliberately no option to disable certificate or host name verification.
struct CloudLinkOptions {
  std::string url;                  ///< "mqtts://host[:port]" (port defaults to 8883)
  /// Instead of `url`: the endpoints of one broker cluster. The link starts at a random one and
  /// moves to the next after each failed attempt or lost connection (same back-off, same client
  /// id and session, same msg-ids on resend). Each endpoint's certificate is verified against
  /// `ca_file` for its own host name.
  std::vector<std::string> urls;
  std::filesystem::path ca_file;    ///< PEM CA(s) that must sign the broker certificate
  std::filesystem::path cert_file;  ///< PEM client certificate (chain) for mutual TLS
  std::filesystem::path key_file;   ///< PEM private key of cert_file
  /// MQTT user name and password, for brokers that want them beside the client certificate.
  /// The password comes from a file readable only by the service account (checked on every
  /// connection attempt, never logged).
  std::string username;
  std::filesystem::path password_file;
  bool username_from_certificate = false;  ///< user name = cert_file's subject common name
  std::string tenant;               ///< topic prefix ps/{tenant}/{agent_id}
  std::string agent_id;
  std::string client_id;            ///< MQTT client id; empty = agent_id

  size_t max_inflight = 100;                  ///< records published and not yet PUBACKed (1..65535)
  Confirm confirm = Confirm::broker;
  std::chrono::seconds keepalive{30};         ///< MQTT keepalive (5..65535 s)
  std::chrono::seconds session_expiry{7 * 24 * 3600};  ///< persistent session (clean start off)
  std::chrono::milliseconds receipt_timeout{std::chrono::seconds(120)};  ///< receipt mode: resend after
  size_t max_unreceipted = 10000;             ///< receipt mode: PUBACKed records awaiting a receipt
  /// Watchdog: connected, records in flight, and no PUBACK for this long -> the link is dead
  /// (half-open TCP, stalled broker): drop it and reconnect.
  std::chrono::milliseconds puback_timeout{std::chrono::seconds(30)};
  /// No CONNACK this long after the TCP connection opened (stalled TLS handshake) -> retry.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds backoff_initial{std::chrono::seconds(1)};   ///< reconnect back-off
  std::chrono::milliseconds backoff_max{std::chrono::seconds(300)};
  /// A connection that lasted at least this long resets the back-off to backoff_initial.
  std::chrono::milliseconds backoff_reset_after{std::chrono::seconds(10)};
  std::chrono::milliseconds retry_initial{std::chrono::seconds(1)};    ///< per-record retry after an error PUBACK
  std::chrono::milliseconds retry_max{std::chrono::seconds(300)};
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(5)};    ///< stop(): wait for PUBACKs
  std::chrono::seconds status_interval{300};  ///< republish P/status; 0 = only on connect
  size_t max_control_bytes = 1u << 20;        ///< incoming config/cmd/receipt payload limit
  size_t max_control_queue = 1000;            ///< outgoing status/result/audit messages held while offline
};

/// The broker endpoints `options` names: `urls`, or `url` alone.
std::vector<std::string> brokerUrls(const CloudLinkOptions& options);

/// Checks options without touching the network or files: URL, ids usable as topic levels,
/// ranges. Errors: Errc::invalid_argument naming the option.
Status validateOptions(const CloudLinkOptions& options);

/// Receives what the cloud sends the agent. Implemented by the agent. Called on the link's
/// strand; must not block (post heavy work elsewhere), may call the link back (e.g. status()). Payloads are outside input: verify the
/// signature before acting on them.
class ControlSink {
 public:
  virtual ~ControlSink() = default;
  /// A document arrived on P/config/set.
  virtual void onConfigDocument(std::string payload) = 0;
  /// A document arrived on P/cmd/{name}. `name` is one topic level of [A-Za-z0-9._-].
  virtual void onCommand(std::string name, std::string payload) = 0;
  /// A package chunk arrived on P/upgrade/chunk (design.md "Upgrade"). A sink that takes no
  /// upgrades ignores it: chunks are only ever used for a version a signed command announced.
  virtual void onUpgradeChunk(std::string /*payload*/) {}

  /// A write-back request arrived on P/down/{kind} (`kind` one of the seven record kinds).
  /// libmosquitto has already sent its PUBACK: the agent's `accepted` result on P/down/result
  /// is what acknowledges it. Default: ignored (an agent without write-back).
  virtual void onWriteRequest(std::string kind, std::string payload) {
    (void)kind;
    (void)payload;
  }
};

enum class LinkState {
  stopped,     ///< not started, or stopped
  connecting,  ///< TCP/TLS/MQTT handshake in progress
  connected,   ///< CONNACK received; publishing
  backoff,     ///< waiting before the next attempt (see next_retry_ms)
  stopping,    ///< stop() in progress
};

std::string_view linkStateName(LinkState state);

/// A snapshot for `pms-agent status`. Counters are since the link was created.
struct LinkStatus {
  LinkState state = LinkState::stopped;
  bool connected = false;
  std::string url;
  std::string confirm;
  std::string last_error;        ///< in words ("TLS: hostname mismatch ..."); "" if none yet
  int64_t last_error_at_ms = 0;  ///< Unix ms
  int64_t since_ms = 0;          ///< when the current state began (Unix ms)
  int64_t next_retry_ms = 0;     ///< next connection attempt (Unix ms) while in backoff, else 0
  bool session_present = false;  ///< the broker resumed our persistent session
  uint64_t in_flight = 0;        ///< records published and awaiting PUBACK
  uint64_t awaiting_receipt = 0;  ///< receipt mode: PUBACKed, awaiting the cloud's receipt
  uint64_t published = 0;        ///< record PUBLISH packets sent (resends included)
  uint64_t resent = 0;           ///< of those, records sent before (same msg-id)
  uint64_t chunked = 0;  ///< of those, records sent in chunks (over the broker's packet limit)
  uint64_t chunks_published = 0;  ///< chunk PUBLISH packets of those records
  uint64_t aliased = 0;           ///< record PUBLISH packets that sent a topic alias, not the topic
  uint64_t acked = 0;            ///< records released from the store as delivered
  uint64_t dead_lettered = 0;    ///< records moved to the dead-letter table by a PUBACK code
  uint64_t retried = 0;          ///< records put back for a later retry (error PUBACK, receipt timeout)
  std::map<int, uint64_t> reason_codes;  ///< PUBACK error reason code -> count
  double drain_rate = 0;         ///< records/s released over the last ~5 s
  uint64_t connects = 0;         ///< successful connections (CONNACK success)
  uint64_t reconnects = 0;       ///< connection attempts after the first one
  uint64_t watchdog_trips = 0;   ///< connections dropped as stalled
  uint64_t receipts = 0;         ///< receipt documents accepted
  uint64_t receipts_invalid = 0;  ///< receipt documents rejected (malformed, too big)
  uint64_t control_received = 0;  ///< config/cmd documents handed to the ControlSink
  uint64_t status_published = 0;  ///< P/status documents the broker acknowledged
  uint64_t control_rejected = 0;  ///< config/cmd messages dropped (too big, bad name, no sink)
  uint64_t store_errors = 0;     ///< lease/ack/nack/release calls the store failed
  int broker_receive_maximum = 0;  ///< from CONNACK (0 = not connected yet)
  BrokerLimits broker;             ///< everything the last successful CONNACK announced

  /// Compact JSON object with the fields above (stable keys for `status --json`).
  std::string toJson() const;
};

/// The link. Create with create(); call start(); stop(done) before destroying it. The
/// QueueReader and io_context must outlive it; destroy it before closing the store.
class CloudLink {
 public:
  /// Validates `options` (see validateOptions) and builds the link; nothing is started.
  static Result<std::unique_ptr<CloudLink>> create(boost::asio::io_context& io,
                                                   store::QueueReader& reader,
                                                   CloudLinkOptions options,
                                                   ClockPtr clock = Clock::system());
  /// Hard stop if still running: drops the connection without waiting for PUBACKs (the store
  /// keeps every unacknowledged record). Any thread, the strand included (e.g. inside a stop()
  /// callback); whether or not the io_context still runs. Waits for a strand handler running
  /// right now on another thread to finish; handlers still queued then do nothing. Joins the
  /// MQTT thread (gives up after 3 s if it is stuck in a blocking connect; it then cleans up on
  /// its own). noexcept; no I/O waits.
  ~CloudLink();
  CloudLink(const CloudLink&) = delete;
  CloudLink& operator=(const CloudLink&) = delete;

  /// Where config documents and commands go. Set before start(); `sink` must outlive the link.
  /// Any thread (posted to the strand).
  void setControlSink(ControlSink* sink);
  /// Produces the JSON for the retained P/status on each connect and every status_interval
  /// (e.g. the agent's `status --json`; it should contain "state":"online"). Called on the
  /// link's strand. Default: {"state":"online","agent_id":...,"at":...}. Any thread (posted).
  void setStatusProvider(std::function<std::string()> provider);

  /// Starts connecting (asynchronously). Idempotent. Any thread (posted to the strand).
  void start();
  /// Graceful stop: stops leasing, waits up to drain_timeout for in-flight PUBACKs, commits
  /// their acks, publishes the Last Will (DISCONNECT 0x04: status offline), disconnects,
  /// returns every still-leased record to the store, then calls `done` on the link's strand
  /// (the link may be destroyed inside `done`). Any thread (posted); never blocks.
  void stop(std::function<void()> done = {});

  /// A snapshot, taken on the strand. Any thread: on the strand it answers inline; elsewhere
  /// it posts and blocks until the strand answers, so it needs a thread running the
  /// io_context (do not call it from a handler on the io_context's only thread). After the
  /// io_context has stopped it reads the state directly (no handler can run any more).
  LinkStatus status() const;

  using PublishCallback = std::function<void(Status)>;
  /// Retained P/status. Only the latest unsent status is kept while offline. Any thread.
  void publishStatus(std::string json);
  /// P/config/state, P/cmd/result, P/audit (QoS 1, not retained). Held in memory (up to
  /// max_control_queue) while offline and resent after a reconnect. `done` (optional) runs on
  /// the link's strand: ok on PUBACK success; Errc::unavailable with the reason on an error
  /// PUBACK; Errc::full if the queue is full; Errc::closed if the link stopped first. Any thread.
  void publishConfigState(std::string json, PublishCallback done = {});
  void publishCommandResult(std::string json, PublishCallback done = {});
  void publishAudit(std::string json, PublishCallback done = {});
  /// P/down/result (write-back results), as publishConfigState.
  void publishWriteResult(std::string json, PublishCallback done = {});

  struct Impl;

 private:
  explicit CloudLink(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

using CloudLinkPtr = std::unique_ptr<CloudLink>;

}  // namespace psa::cloudlink
