// The `P/up/{kind}` envelope of the contract: MQTT 5 user properties and content type of a
// record, and the receipt document the cloud sends on `P/receipt`.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/store/digest.h"  // sha256Hex: the payload checksum of the contract
#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::cloudlink {

/// The MQTT 5 content-type property for a record `format` (design.md formats):
/// hl7v2 -> "x-application/hl7-v2+er7", fhir+json -> "application/fhir+json",
/// csv+json and vendor+json -> "application/json", vendor+xml -> "application/xml",
/// x12 -> "application/edi-x12", anything else (binary) -> "application/octet-stream".
std::string_view contentTypeFor(std::string_view format);

/// The user properties of one `up` message, in contract order: msg-id, source, vendor, kind,
/// format, received-at (RFC 3339 UTC), sha256 (hex of the payload). Reads the payload only to
/// hash it.
std::vector<std::pair<std::string, std::string>> userProperties(const store::Record& record);

/// Limits for parsing a receipt (outside input).
struct ReceiptLimits {
  size_t max_bytes = 1u << 20;  ///< whole payload
  size_t max_ids = 10000;       ///< entries in msg_ids
  size_t max_id_length = 64;    ///< one msg-id (ULIDs are 26)
};

/// Parses a receipt `{"msg_ids":["01H...", ...]}`. Other members are ignored. Errors
/// (Errc::invalid_input or Errc::limit, never throws): not JSON (with line/column), not an
/// object, missing or non-array msg_ids, an entry that is not a non-empty string of
/// [0-9A-Za-z_-], too many entries or bytes.
Result<std::vector<std::string>> parseReceipt(std::string_view payload,
                                              const ReceiptLimits& limits = {});

/// Serialises a receipt for `msg_ids` (used by the cloud simulator and tests).
std::string formatReceipt(const std::vector<std::string>& msg_ids);

}  // namespace psa::cloudlink
