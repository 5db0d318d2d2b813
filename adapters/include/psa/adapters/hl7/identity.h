// De-duplication identity of an HL7 v2 message, for psa::store::Record::dedupe_identity.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "psa/adapters/hl7/message.h"

namespace psa::adapters::hl7 {

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
