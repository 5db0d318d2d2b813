// The message side of HL7 v2 write-back (`hl7-mllp-out`): preparing the cloud's `hl7v2` body
// for sending, and reading the PMS's acknowledgement. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::write {

/// The MSH-10 a request's message gets when its body leaves MSH-10 empty: the request id's
/// last 20 characters (4 characters of its time and its 80 random bits), within the
/// 20-character limit of MSH-10 in HL7 2.3-2.6. Stable: every retry sends the same id.
std::string controlIdFor(std::string_view request_id);

/// "YYYYMMDDHHMMSS+0000" (UTC), the MSH-7 form the agent writes.
std::string hl7Timestamp(int64_t unix_ms);

struct PreparedMessage {
  std::string text;        ///< segments each ended by CR, as sent over MLLP
  std::string control_id;  ///< MSH-10 as sent (decoded): what MSA-2 must echo
};

/// Prepares a body (already accepted by validateBodyFor(hl7v2)) for sending: segment
/// terminators become CR (blank lines and a byte order mark dropped), MSH-7 is set to
/// hl7Timestamp(now_ms) when empty (or the HL7 null ""), MSH-10 to controlIdFor(request_id)
/// likewise; everything else is kept byte for byte.
/// Prepare once per request and resend the result: MSH-7 and MSH-10 then stay stable.
/// Errors: Errc::invalid_input (the body does not parse or does not start with MSH).
Result<PreparedMessage> prepareOutbound(std::string_view body, std::string_view request_id,
                                        int64_t now_ms);

/// What an acknowledgement means for the message sent with a given MSH-10.
enum class AckVerdict : uint8_t {
  delivered,  ///< MSA-1 AA or CA
  failed,     ///< MSA-1 AE, AR, CE or CR: the PMS refused the message
  stale,      ///< MSA-2 is not the sent MSH-10 (an answer to an earlier send): ignore it
  invalid,    ///< does not parse, no MSA, or an unknown MSA-1: a broken peer; retry
};

struct AckReading {
  AckVerdict verdict = AckVerdict::invalid;
  std::string code;        ///< MSA-1
  std::string control_id;  ///< MSA-2 (decoded): the `pms_ref` of a delivered message
  /// failed: "AE: HL7 101 (Required field missing) at PID-3 severity E; <ERR-8>; <MSA-3>"
  /// (codes, locations and the PMS's own texts; control characters removed; at most
  /// kMaxAckErrorBytes). invalid: why, without content.
  std::string error;
};

inline constexpr size_t kMaxAckErrorBytes = 400;

/// Reads an ACK received after sending a message whose MSH-10 is `sent_control_id`.
AckReading readAck(std::string_view ack, std::string_view sent_control_id);

}  // namespace psa::adapters::write
