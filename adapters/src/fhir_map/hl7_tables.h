// The HL7 v2 -> FHIR R4 mapping as data (hl7_tables.cpp), and the type conversions the rows
// name (hl7_types.cpp). The engine (hl7_map.cpp) only walks these tables.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "psa/adapters/hl7/message.h"
#include "psa/store/json.h"
#include "psa/store/record.h"

namespace psa::adapters::fhir_map {

/// The data-type conversions of the V2-to-FHIR guide's datatype maps.
enum class Conv : uint8_t {
  string,      ///< ST/ID/IS -> string
  code,        ///< a value through code table `arg` -> code (unmapped: left out)
  coding,      ///< a value through code table `arg` -> Coding (system from the table)
  cx,          ///< CX -> Identifier (CX.5 SS -> system http://hl7.org/fhir/sid/us-ssn)
  ei,          ///< EI -> Identifier (EI.2 namespace as system; `arg`: v2-0203 type)
  ssn,         ///< ST -> Identifier with the us-ssn system (PID-19)
  xpn,         ///< XPN -> HumanName
  xad,         ///< XAD -> Address
  xtn,         ///< XTN -> ContactPoint (`arg`: the use when XTN.2 has none)
  cwe,         ///< CE/CWE -> CodeableConcept (`arg`: the system when CWE.3 has none)
  date,        ///< DT/TS -> date
  date_time,   ///< TS/DTM -> dateTime
  instant,     ///< TS/DTM -> instant (needs a zone)
  minutes,     ///< NM duration with SCH-10 units -> positiveInt minutes
  payor,       ///< IN1-3 (CX) with IN1-4 (name) -> Reference(Organization) by identifier
  plan_class,  ///< a CWE/ST -> Coverage.class with type `arg` (plan, group)
  obx_value,   ///< OBX-5 by OBX-2 (NM -> Quantity with OBX-6 units, ST/TX/FT -> string, ...)
  range_text,  ///< OBX-7 -> Observation.referenceRange.text
  xcn_actor,   ///< XCN -> Reference with a display name (a provider, not the patient)
};

/// One field of a segment: where it goes in the resource, and how it is converted.
/// `target` is a path below the resource: "birthDate", "period.start", "identifier[]" (append
/// one per repetition), "value" (obx_value appends the type: valueQuantity, valueString...).
struct FieldRule {
  int field;
  int component;  ///< 0: the whole repetition
  Conv conv;
  const char* target;
  const char* arg;  ///< code table, default system or use; "" for none
};

/// Where one resource of a message comes from.
struct ResourceRule {
  const char* resource;  ///< "Patient"
  const char* segment;   ///< "PID"
  bool each;             ///< one resource per occurrence (IN1, OBX) or only the first (PID)
  bool required;         ///< the message is not mapped without this segment
  const FieldRule* fields;
  size_t field_count;
};

/// A value the trigger event implies for an element (listed, never guessed): `force` sets it
/// whatever the message says (SIU^S15 cancels), otherwise it fills an absent element.
struct DefaultRule {
  const char* events;    ///< "S12 S13 S14" (trigger events of the message type); "*": all
  const char* resource;  ///< "Appointment"
  const char* target;    ///< "status"; a JSON literal value follows
  const char* value;     ///< JSON text: "\"booked\"" or an object
  bool force;
  const char* why;  ///< the source of the default (documentation only)
};

/// A reference between two resources of one message: `from.target` -> the `to` resource
/// (the first one; for "each" targets such as DiagnosticReport.result, every one of them).
struct RefRule {
  const char* from;
  const char* target;  ///< "subject", "result[]", "participant[].actor" (a new participant)
  const char* to;
};

/// One message type's mapping.
struct MessageMap {
  const char* type;    ///< "ADT"
  const char* events;  ///< "A01 A02 ..."
  store::Kind kind;
  const ResourceRule* resources;
  size_t resource_count;
  const DefaultRule* defaults;
  size_t default_count;
  const RefRule* refs;
  size_t ref_count;
};

const MessageMap* findMessageMap(std::string_view type, std::string_view trigger);

/// A code table row: HL7 code -> FHIR code (and display); tables are named by `Conv::code`'s
/// arg. Lookup is case-insensitive.
std::optional<std::string_view> mapCode(std::string_view table, std::string_view code);
/// The code system URI of a code table used with Conv::coding ("" when none).
std::string_view codeTableSystem(std::string_view table);
/// The FHIR system URI of a v2 coding system name (CWE.3: LN, I10, SCT, HL70203...), "" when
/// unknown.
std::string codingSystem(std::string_view name);

/// Context of one conversion.
struct ConvContext {
  const hl7::Message& msg;
  size_t segment;
  std::string_view zone;  ///< offset for times without one ("" = none)
};

/// Converts repetition `rep` (1-based) of field `rule.field` (component `rule.component`) of
/// the segment. nullopt when there is nothing to map.
std::optional<json::Value> convert(const ConvContext& ctx, const FieldRule& rule, int rep);

}  // namespace psa::adapters::fhir_map
