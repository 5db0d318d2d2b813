// Delivery policy pieces of the cloud link that are pure functions (or nearly): what to do with
// a PUBACK reason code, reconnect back-off with jitter, broker URL parsing, and which TLS
// failure to show.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::cloudlink {

/// What a PUBACK reason code means for the record it acknowledges.
enum class PubackAction {
  delivered,    ///< < 0x80 (0x00 success, 0x10 no matching subscribers): release the record
  retry,        ///< transient (0x80 unspecified, 0x83 implementation specific, 0x97 quota
                ///< exceeded, 0x89 server busy, 0x91 packet id in use, unknown codes): back off
  dead_letter,  ///< the broker will never take this record as it is (0x87 not authorized,
                ///< 0x90 topic name invalid, 0x95 packet too large, 0x99 payload format
                ///< invalid, 0x9A retain / 0x9B QoS not supported)
};

/// The policy for one reason code. Unknown codes >= 0x80 retry: a record is never dropped on a
/// code we do not understand.
PubackAction classifyPuback(int reason_code);

/// "quota exceeded", "not authorized", ... ("reason 0xNN" for unknown codes).
std::string reasonName(int reason_code);

/// PHI-free text stored with a nack or dead letter: "puback 0x97 quota exceeded".
std::string pubackReason(int reason_code);

/// Exponential back-off with jitter: the n-th delay (n = failures so far, from 0) is uniform in
/// [d/2, d] with d = min(max, initial * 2^n). Not thread-safe.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
          uint64_t seed = std::random_device{}());

  /// The delay before the next attempt; counts one failure.
  std::chrono::milliseconds next();
  /// After a successful (stable) connection: the next delay starts at `initial` again.
  void reset() { failures_ = 0; }
  uint32_t failures() const { return failures_; }
  void setFailures(uint32_t n) { failures_ = n; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  uint32_t failures_ = 0;
  std::mt19937_64 rng_;
};

/// Where the broker is.
struct BrokerAddress {
  std::string host;  ///< DNS name or IP literal (without brackets)
  int port = 8883;
};

/// Parses "mqtts://host[:port]" ("[v6]:port" for IPv6). Only mqtts is accepted: TLS is
/// mandatory. Errors: Errc::invalid_argument naming what is wrong.
Result<BrokerAddress> parseBrokerUrl(std::string_view url);

/// The first endpoint a broker's Server Reference names (CONNACK or DISCONNECT 0x9C/0x9D).
/// MQTT 5 leaves its format open: brokers send "host", "host:port", "[v6]:port" or a
/// space-separated list of them, some with "mqtts://". Any other scheme is refused (TLS is
/// mandatory). Errors: Errc::invalid_argument.
Result<BrokerAddress> parseServerReference(std::string_view reference);

/// The last specific TLS failure per endpoint ("host:port"). Under TLS 1.3 the broker's alert
/// (e.g. it refused our certificate) sometimes arrives after the connection is gone, and the
/// attempt ends with only "TLS: protocol error" or "TLS: handshake failed"; between correct
/// messages that hides the cause. explain() adds the remembered cause to such a generic one.
/// Not thread-safe (the link calls it on its strand).
class TlsCauseMemory {
 public:
  /// The words to show for an attempt that ended with `words`; remembers a specific TLS cause.
  std::string explain(const std::string& endpoint, const std::string& words);
  /// A connection was established: what went wrong before no longer applies.
  void forget(const std::string& endpoint);

 private:
  std::map<std::string, std::string> last_cause_;
};

}  // namespace psa::cloudlink
