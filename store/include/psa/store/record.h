// Record: one unit of PMS data as it travels through the agent (adapter -> store -> cloud).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "psa/store/log.h"

namespace psa::store {

/// The data kinds of the MQTT contract (`P/up/{kind}`).
enum class Kind : uint8_t { patient = 0, appointment, clinical, billing, provider, inventory, other };

inline constexpr std::array<Kind, 7> kAllKinds = {Kind::patient,   Kind::appointment,
                                                  Kind::clinical,  Kind::billing,
                                                  Kind::provider,  Kind::inventory,
                                                  Kind::other};

/// "patient", "appointment", ... as used in topics and config.
std::string_view kindName(Kind kind);
/// Inverse of kindName(); nullopt for anything else.
std::optional<Kind> parseKind(std::string_view name);

/// Payload formats of the contract (`format` user property).
namespace format {
inline constexpr std::string_view kHl7v2 = "hl7v2";
inline constexpr std::string_view kFhirJson = "fhir+json";
inline constexpr std::string_view kCsvJson = "csv+json";
inline constexpr std::string_view kVendorJson = "vendor+json";
inline constexpr std::string_view kVendorXml = "vendor+xml";
inline constexpr std::string_view kX12 = "x12";
inline constexpr std::string_view kBinary = "binary";
}  // namespace format

/// One record. Adapters fill everything except msg_id; the store assigns msg_id (a ULID)
/// at append and returns it. The payload is PHI: it is sealed at rest and never logged.
struct Record {
  std::string msg_id;          ///< ULID, stable across resends; empty on input to append()
  std::string source;          ///< adapter name (config `adapters[].name`)
  std::string vendor;          ///< e.g. "cerner"
  Kind kind = Kind::other;
  std::string format;          ///< one of psa::store::format
  int64_t received_at_ms = 0;  ///< Unix ms when the agent received it; 0 = "now" at append
  Sensitive<std::string> payload;  ///< exact bytes as received
  /// Optional identity for de-duplication (e.g. sender + control id + content hash). Only a
  /// keyed HMAC of it is stored. An append whose identity was seen within the dedupe window
  /// returns the original msg_id and stores nothing.
  std::optional<Sensitive<std::string>> dedupe_identity;
};

}  // namespace psa::store
