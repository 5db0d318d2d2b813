// Write-back requests (design.md "Write-back"): the payload of a signed document the cloud
// publishes on P/down/{kind}, and the result the agent answers on P/down/result.
//
// Everything here is outside input. parseWriteRequest() checks every field strictly and
// reports the first problem naming the field, never its value (a body, an id of a resource
// or an If-Match tag may carry PHI): the caller turns the error into a `rejected` result
// with reason "bad_request" and the error text. validateBodyFor() checks that the body is
// something the request's format promises (reason "bad_body").
//
// The envelope ({"payload","sig","key_id"}, Ed25519) is verified before this, with the same
// keys as remote config (agent/signed_document.h); agent_id and expiry against the clock
// are checked by the caller, which knows this agent's id and the time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::adapters::write {

using store::Kind;

enum class WriteOp : uint8_t { create, update, cancel, remove, send };
enum class WriteFormat : uint8_t { hl7v2, fhir_json, vendor_json, csv };
enum class WriteStatus : uint8_t { accepted, delivered, failed, rejected, expired, cancelled };

/// "create", "update", "cancel", "delete", "send" (contract spelling).
std::string_view writeOpName(WriteOp op);
std::optional<WriteOp> parseWriteOp(std::string_view text);
/// "hl7v2", "fhir+json", "vendor+json", "csv".
std::string_view writeFormatName(WriteFormat format);
std::optional<WriteFormat> parseWriteFormat(std::string_view text);
/// "accepted", "delivered", "failed", "rejected", "expired", "cancelled".
std::string_view writeStatusName(WriteStatus status);

/// Result reasons of the checks here (stable; part of P/down/result).
inline constexpr std::string_view kReasonBadRequest = "bad_request";
inline constexpr std::string_view kReasonBadBody = "bad_body";

/// True for a canonical ULID: 26 characters of Crockford base32 (upper case, no I L O U),
/// the first at most '7' (48-bit time).
bool isUlid(std::string_view text);

struct WriteLimits {
  size_t max_payload_bytes = 2u << 20;  ///< the whole payload JSON
  size_t max_body_bytes = 1u << 20;     ///< the decoded `body` string
};

/// One write request, as the cloud sent it.
struct WriteRequest {
  std::string id;  ///< ULID: the idempotency key
  std::string agent_id;
  int64_t issued_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::string target;  ///< adapter name
  WriteOp op = WriteOp::create;
  Kind kind = Kind::other;
  WriteFormat format = WriteFormat::hl7v2;
  std::optional<std::string> resource;     ///< "Appointment" or a vendor collection
  std::optional<std::string> resource_id;  ///< the PMS's id of the resource (update, cancel...)
  std::optional<std::string> if_match;     ///< version precondition (FHIR ETag)
  std::string body;                        ///< the message or resource as text
};

/// Parses and checks a write request payload (JSON object):
///   id           ULID (isUlid)
///   agent_id     1-128 printable characters, none of / + # (an MQTT topic level)
///   issued_at    RFC 3339
///   expires_at   RFC 3339, after issued_at
///   target       an adapter name (1-63 of a-z 0-9 - _ ., not starting with - or .)
///   op, format   the enums above
///   kind         one of the seven record kinds
///   resource, resource_id, if_match   null or absent, or a string of 1-256 printable
///                characters
///   body         a string of at most limits.max_body_bytes
/// Members not named here are ignored (the contract grows only additively); a duplicate member
/// is an error. Errors: Errc::invalid_input (Errc::limit for sizes), message
/// "write request: <field>: <what>" without the field's value.
Result<WriteRequest> parseWriteRequest(std::string_view payload_json,
                                       const WriteLimits& limits = {});

/// The `id` of a payload that may not parse as a whole, if it is a ULID ("" otherwise): a
/// rejected request is still answered under its id.
std::string requestIdOf(std::string_view payload_json);

/// Checks `body` against `format`:
///   hl7v2        parses with the HL7 parser; the first segment must be MSH with MSH-9 type
///                and trigger; errors carry the parser's HL7 error code and location
///   fhir+json    a JSON object whose "resourceType" is a resource type name
///   vendor+json  well-formed JSON (object or array)
///   csv          RFC 4180 with a header row and at least one data row, every row as wide
///                as the header, valid UTF-8
/// Errors: Errc::invalid_input, message "body: <what>" (positions and codes, never values).
Status validateBodyFor(WriteFormat format, std::string_view body);

/// One result on P/down/result.
struct WriteResult {
  std::string id;
  WriteStatus status = WriteStatus::accepted;
  std::string reason;   ///< "" -> null
  std::string error;    ///< "" -> null; PHI-free
  std::string target;   ///< "" -> null
  std::string pms_ref;  ///< "" -> null
  int attempts = 0;
  int64_t at_ms = 0;

  /// {"id":..,"status":..,"reason":..,"error":..,"target":..,"pms_ref":..,"attempts":N,
  ///  "at":"<RFC 3339>"}: compact, one line.
  std::string toJson() const;
};

}  // namespace psa::adapters::write
