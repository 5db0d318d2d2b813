// HL7 v2 acknowledgements (ACK messages) in original and enhanced mode.
//
// The ACK for a message:
//   MSH|<MSH-2 of the message>|<MSH-5>|<MSH-6>|<MSH-3>|<MSH-4>|<now>||ACK^<trigger>^ACK|<new id>|
//       <MSH-11>|<MSH-12>[||||||<MSH-18>]
//   MSA|<code>|<MSH-10>[|<text>]
//   ERR|...            one per issue (v2.5+: ERR-2 location, ERR-3 code, ERR-4 severity);
//                      before v2.5 one ERR whose ERR-1 repeats SEG^seq^field^code&text&HL70357
// Echoed fields are copied byte for byte in the message's own delimiters. If those
// delimiters are unusable (see Delimiters::usable) the ACK uses |^~\& and re-encodes what it
// echoes. MSH-9 is ACK^<trigger>^ACK for v2.3.1+ (and unknown versions), ACK^<trigger> for
// v2.2/2.3, ACK for v2.1. MSH-7 is UTC, YYYYMMDDHHMMSS+0000.
//
// Modes: original -> MSA-1 AA/AE/AR, always sent. enhanced -> commit acknowledgement CA/CE/CR,
// sent according to MSH-15 (AL or empty: always; NE: never; ER: only CE/CR; SU: only CA).
// The agent is a store-and-forward relay: it sends the accept (commit) ACK only, never a
// separate application ACK (MSH-16).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "psa/adapters/hl7/issue.h"
#include "psa/adapters/hl7/message.h"
#include "psa/store/clock.h"

namespace psa::adapters::hl7 {

/// How acknowledgements are chosen (adapter config `ack_mode`).
enum class AckMode : uint8_t {
  automatic,  ///< enhanced when the message has MSH-15 or MSH-16, else original
  original,
  enhanced,
};

/// "auto", "original", "enhanced" (config spelling) -> AckMode; nullopt otherwise.
std::optional<AckMode> parseAckMode(std::string_view text);

/// The outcome being acknowledged.
enum class Outcome : uint8_t {
  accept,  ///< AA / CA: the message is durably stored
  error,   ///< AE / CE: content error (fix and resend)
  reject,  ///< AR / CR: unsupported type/event/processing id/version, unparseable, or the
           ///< receiver cannot take it now (store full); may be resent unchanged later
};

/// Reject for codes 200..207 (MSH-9/11/12 problems, receiver trouble), error for the rest,
/// accept when no issue has severity error.
Outcome outcomeFor(std::span<const Issue> issues);

/// Appends a new ACK control id (MSH-10) to `out`. Must be thread-safe if the builder is shared.
using ControlIdFn = std::function<void(std::string& out)>;

/// Unique ids "A" + 12 hex digits (process start, ms) + counter: 18 characters, unique within
/// and (practically) across restarts of the process.
ControlIdFn defaultControlIds();

struct AckOptions {
  AckMode mode = AckMode::automatic;
  /// MSH-7 time source; default Clock::system().
  ClockPtr clock;
  /// MSH-10 source; default defaultControlIds().
  ControlIdFn control_id;
};

/// Builds ACKs. Thread-safe if the clock and id function are (the defaults are).
class AckBuilder {
 public:
  explicit AckBuilder(AckOptions options = {});

  /// original or enhanced, as applied to `msg`.
  AckMode modeFor(const Message& msg) const;

  /// Whether an ACK for `outcome` should be sent at all (false only in enhanced mode with
  /// MSH-15 NE, ER on accept, or SU on error/reject).
  bool shouldSend(const Message& msg, Outcome outcome) const;

  /// The ACK for a parsed message. `issues` become ERR segments (at most 16); `text` is MSA-3
  /// (PHI-free, escaped here); when empty, an error/reject ACK uses the first issue's text.
  std::string build(const Message& msg, Outcome outcome, std::span<const Issue> issues = {},
                    std::string_view text = {}) const;
  /// As build(), appending to `out` (reuse a buffer on the hot path).
  void buildTo(std::string& out, const Message& msg, Outcome outcome,
               std::span<const Issue> issues = {}, std::string_view text = {}) const;

  /// Best-effort AR (original) / CR (enhanced, when MSH-15/16 can be read) for bytes that did
  /// not parse: delimiters |^~\&, and whatever of MSH-3..6, MSH-10, MSH-11, MSH-12 can be read
  /// from the first line is echoed (re-encoded). MSH-12 defaults to 2.5.1. Always to be sent.
  std::string buildReject(std::string_view raw, const Issue& failure) const;

 private:
  AckOptions options_;
};

}  // namespace psa::adapters::hl7
