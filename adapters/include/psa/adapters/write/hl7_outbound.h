// `hl7-mllp-out`: the HL7 v2 write-back target. Keeps one MLLP connection (TCP or TLS) to the
// PMS's inbound interface and delivers write requests one at a time:
//   - the request's `hl7v2` body is prepared once (prepareOutbound: MSH-7 set when empty,
//     MSH-10 derived from the request id when empty) and every retry resends those bytes, so
//     a PMS that dedupes on MSH-10 applies the message once;
//   - MSA-1 AA/CA -> delivered, pms_ref = MSA-2; AE/AR/CE/CR -> failed with the ERR text;
//   - no ACK within ack_timeout, a dropped connection or a broken ACK -> close, reconnect
//     with capped back-off and jitter, resend; after max_tries such tries -> retryable (the
//     outbound queue calls deliver() again later with the same request);
//   - an ACK whose MSA-2 is not the sent MSH-10 is stale: logged and ignored.
// Requests given to deliver() queue in order; one message is in flight at a time.
//
// Not registered as an adapter type yet: the outbound queue and the agent wiring come next.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "psa/adapters/write/write_request.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::adapters::write {

/// `"write": {"enabled": false, "dry_run": false}` of every write-capable adapter type.
struct WriteSwitch {
  bool enabled = false;
  bool dry_run = false;  ///< validate and report delivered with pms_ref "dry-run"
};

/// The schema of the `write` object (shared by the write-capable adapter types).
schema::ObjectSchemaPtr writeSwitchSchema();

struct Hl7OutboundSettings {
  std::string name;
  std::string vendor;
  std::string host;  ///< without brackets
  uint16_t port = 0;
  std::chrono::milliseconds ack_timeout{30000};
  std::chrono::milliseconds connect_timeout{10000};  ///< TCP connect plus TLS handshake
  std::chrono::milliseconds retry_min{500};          ///< first back-off; doubles per failure
  std::chrono::milliseconds retry_max{30000};        ///< cap of the back-off
  int max_tries = 10;  ///< connects and sends without an answer per deliver() call
  bool tls = false;
  std::filesystem::path ca_file;  ///< empty: the system trust store
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::string server_name;  ///< default: host
  size_t max_ack_bytes = 1u << 20;
  WriteSwitch write;
};

/// The schema of one `hl7-mllp-out` adapter object (commonAdapterFields() first):
/// connect (HOST:PORT, required), ack_timeout_s (30), connect_timeout_s (10), retry_min_ms
/// (500), retry_max_s (30), max_tries (10), tls {ca_file, cert_file, key_file, server_name},
/// write {enabled, dry_run}.
schema::ObjectSchemaPtr hl7OutboundSchema();

/// Settings from an adapter object validated against hl7OutboundSchema() (defaults applied
/// here). Relative file names resolve against `state_dir`. Errors: Errc::invalid_argument.
Result<Hl7OutboundSettings> parseHl7OutboundSettings(const json::Value& config,
                                                     const std::filesystem::path& state_dir);

/// The outcome of one deliver() call.
struct DeliveryOutcome {
  enum class Status : uint8_t {
    delivered,  ///< the PMS accepted it (AA/CA), or dry run
    failed,     ///< the PMS refused it (AE/AR/CE/CR) or the body cannot be sent: final
    retryable,  ///< no answer after max_tries, or stopped: deliver again later
    expired,    ///< expires_at passed before it could be sent (nothing sent since)
    rejected,   ///< writes are disabled on this target
  };
  Status status = Status::retryable;
  std::string pms_ref;     ///< delivered: MSA-2 (or "dry-run")
  std::string error;       ///< PHI-free
  int attempts = 0;        ///< messages sent in this call
  std::string control_id;  ///< MSH-10 as sent
};

std::string_view deliveryStatusName(DeliveryOutcome::Status status);

/// Counters since creation (read from any thread).
struct Hl7OutboundStats {
  uint64_t connects = 0;
  uint64_t connect_failures = 0;  ///< resolve, connect or TLS handshake failed
  uint64_t sends = 0;
  uint64_t delivered = 0;
  uint64_t failed = 0;
  uint64_t timeouts = 0;  ///< sends without an answer in time
  uint64_t stale_acks = 0;
  uint64_t disconnects = 0;  ///< connections lost while a message was in flight
};

class Hl7Outbound {
 public:
  using Callback = std::function<void(DeliveryOutcome)>;

  /// Sets up TLS (reads the files) but does not connect: the first deliver() does.
  /// Errors: Errc::io / Errc::invalid_argument (TLS files).
  static Result<std::shared_ptr<Hl7Outbound>> create(boost::asio::any_io_executor executor,
                                                     Hl7OutboundSettings settings,
                                                     ClockPtr clock = {});
  virtual ~Hl7Outbound() = default;

  /// Queues `request` (format hl7v2); `done` runs once, on the target's strand, with the
  /// outcome. Thread-safe.
  virtual void deliver(WriteRequest request, Callback done) = 0;
  /// Closes the connection; queued and in-flight requests complete as retryable. Thread-safe.
  virtual void stop() = 0;
  virtual Hl7OutboundStats stats() const = 0;
  virtual const Hl7OutboundSettings& settings() const = 0;
};

}  // namespace psa::adapters::write
