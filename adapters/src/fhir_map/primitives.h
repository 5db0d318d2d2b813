// The FHIR R4 primitive data types' lexical rules (the regexes of the specification, written
// out as small scanners: no std::regex on outside input).
#pragma once

#include <string_view>

#include "psa/store/json.h"

namespace psa::adapters::fhir_map {

/// True when `type` names a FHIR primitive ("string", "dateTime", ...).
bool isPrimitiveType(std::string_view type);

/// Checks a JSON value against primitive `type`. Returns nullptr when it fits, else the rule
/// it breaks ("not a valid dateTime"). Never mentions the value.
const char* checkPrimitive(std::string_view type, const json::Value& value);

}  // namespace psa::adapters::fhir_map
