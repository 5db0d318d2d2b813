// De-duplication identity of an HL7 v2 message, for psa::store::Record::dedupe_identity.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "psa/adapters/hl7/message.h"

namespace psa::adapters::hl7 {

/// SHA-256 (OpenSSL) of `bytes`.
std::array<uint8_t, 32> sha256(std::string_view bytes);
/// SHA-256 of `bytes` as 64 lower-case hex digits.
std::string sha256Hex(std::string_view bytes);

/// The identity of a message for de-duplication: sender (MSH-3, MSH-4), control id (MSH-10)
/// and the SHA-256 of Message::content() (first to last segment byte, so framing and leading
/// or trailing line breaks do not matter). A sender's resend of the same message has the same
/// identity; the same control id with different content does not. Fields are length-prefixed
/// (raw bytes), so no two different triples collide:
///   "hl7v2:<len>:<MSH-3><len>:<MSH-4><len>:<MSH-10><64 hex>"
/// The result contains identifiers from the message: keep it in Sensitive<> (the store keeps
/// only a keyed HMAC of it). Precondition: msg.parsed().
std::string dedupeIdentity(const Message& msg);

}  // namespace psa::adapters::hl7
