// HL7 v2 -> FHIR R4 normalisation (issue 16), following the HL7 V2-to-FHIR implementation
// guide: one message becomes one `transaction` Bundle whose entries PUT resources with stable
// ids, with references between them consistent (Observation -> DiagnosticReport -> Patient).
//
// The mapping is data: the tables in adapters/src/fhir_map/hl7_tables.cpp list, per message
// type, which segment becomes which resource, each field's target element and type conversion
// (CX -> Identifier, XPN -> HumanName, XAD -> Address, XTN -> ContactPoint, CWE -> CodeableConcept,
// TS -> dateTime/instant, DT -> date, code tables for gender and statuses), the references and
// the defaults a trigger event implies for required elements (SIU^S12 -> Appointment.status
// booked, an ORU without OBR-25 -> DiagnosticReport.status final, ...). The tables are constant
// data: nothing is loaded or allocated until a message is normalised.
//
// Resource ids: the first 16 bytes (32 hex digits) of HMAC-SHA256(site key, resource type +
// source identity), the identity being e.g. the MRN and its assigning authority: the same
// patient from two feeds gets the same id, and an id reveals nothing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "psa/store/json.h"
#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::adapters::fhir_map {

/// The version of the mapping tables, published in `normalized-from` ("hl7v2;map=...").
inline constexpr std::string_view kMappingVersion = "psa-v2-fhir-1";

struct MapOptions {
  /// HMAC key for resource ids (the site's policy key; at least 16 bytes).
  std::string id_key;
  /// UTC offset ("+01:00", "-05:00", "Z") for HL7 times that carry none and whose MSH-7 carries
  /// none either. Empty: such times keep only their date (a dateTime) or are left out (an
  /// instant), never given a guessed zone.
  std::string default_zone;
};

/// A normalised message.
struct Normalized {
  json::Value bundle;  ///< a FHIR R4 Bundle of type transaction
  store::Kind kind = store::Kind::other;
  std::string normalized_from;  ///< "hl7v2;map=psa-v2-fhir-1;type=ADT^A01"
};

/// True when the tables map messages of this type and trigger event ("ADT", "A01").
bool hl7Mapped(std::string_view type, std::string_view trigger);

/// Maps one HL7 v2 message. Errors (never throws): Errc::invalid_input (does not parse, or a
/// segment the mapping needs is missing, e.g. no PID), Errc::not_found (message type or event
/// without a mapping), Errc::invalid_argument (id_key too short). Messages name segments and
/// fields, never values. Thread-safe.
Result<Normalized> mapHl7v2(std::string_view message, const MapOptions& options);

/// An HL7 TS/DTM ("20240105083000-0500") as a FHIR dateTime ("2024-01-05T08:30:00-05:00"),
/// or with `instant` an instant (seconds and zone required). A time without its own zone takes
/// `zone`; with none, a dateTime keeps only its date and an instant is nullopt. nullopt for
/// text that is not a TS.
std::optional<std::string> hl7Time(std::string_view ts, std::string_view zone, bool instant);

}  // namespace psa::adapters::fhir_map
