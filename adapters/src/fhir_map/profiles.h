// The rules beyond the R4 structure table: US Core 3.1.1 cardinalities where a profile applies,
// and the FHIRPath invariants of the base resources that the mapper's output can break,
// written out in C++ (the agent carries no FHIRPath engine).
#pragma once

#include <string>
#include <vector>

#include "psa/adapters/fhir_map/validate.h"
#include "psa/store/json.h"

namespace psa::adapters::fhir_map {

/// Appends the violations of resource `r` (of type `type`, shown as `path`) against the US
/// Core profile for its type, if one applies, and the invariants listed in profiles.cpp.
void checkProfiles(const json::Value& r, const std::string& type, const std::string& path,
                   std::vector<Violation>& out, int entry);

}  // namespace psa::adapters::fhir_map
