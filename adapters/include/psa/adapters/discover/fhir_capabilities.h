// `pms-agent discover fhir`: readers of what a FHIR server says about itself, the
// CapabilityStatement (`/metadata`, FHIR R4 capabilitystatement.html) and the SMART discovery
// document (`/.well-known/smart-configuration`, SMART App Launch 2.x). Both are outside input:
// the readers are strict about types, bounded (at most kMaxResourceTypes resources) and keep
// only structure (type names, interaction codes, URLs of endpoints), never a free text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/result.h"

namespace psa::adapters::discover {

inline constexpr size_t kMaxResourceTypes = 500;

/// One `rest[0].resource[]` entry.
struct FhirResourceCaps {
  std::string type;
  bool read = false;
  bool search = false;            ///< search-type
  bool history_type = false;      ///< history-type
  bool history_instance = false;  ///< history-instance
  bool last_updated = false;      ///< a `_lastUpdated` searchParam is declared
  bool patient_param = false;     ///< a `patient` searchParam (per-patient fan-out possible)
  bool export_op = false;         ///< an `export` operation (Patient/Group-level Bulk export)
};

struct FhirCapabilities {
  std::string fhir_version;  ///< "4.0.1"
  std::string software;      ///< software.name + " " + software.version (printable ASCII)
  std::vector<std::string> formats;
  std::vector<std::string> security;  ///< rest.security.service codes ("SMART-on-FHIR")
  std::string token_url;              ///< the oauth-uris extension's token, "" if absent
  bool history_system = false;
  bool export_system = false;   ///< rest.operation export
  bool export_group = false;    ///< Group declares export
  bool export_patient = false;  ///< Patient declares export
  std::vector<FhirResourceCaps> resources;
};

/// Parses a CapabilityStatement. Errors: Errc::invalid_input ("not a CapabilityStatement",
/// "rest[0].resource[3]: type is not a string"), Errc::limit (too many resource types or a
/// body beyond the JSON limits). Messages carry no text of the document.
Result<FhirCapabilities> parseCapabilityStatement(std::string_view text);

/// The members of a SMART configuration document the survey reports.
struct SmartConfiguration {
  std::string token_endpoint;
  std::vector<std::string> grant_types;
  std::vector<std::string> auth_methods;  ///< token_endpoint_auth_methods_supported
  std::vector<std::string> signing_algs;  ///< token_endpoint_auth_signing_alg_values_supported
  std::vector<std::string> capabilities;
  size_t scopes_supported = 0;  ///< how many scopes are listed (the list can be long)
  bool system_scopes = false;   ///< a system/... scope is listed (backend services)
};

/// Parses a SMART configuration document. Errors: Errc::invalid_input (not a JSON object, no
/// token_endpoint), Errc::limit.
Result<SmartConfiguration> parseSmartConfiguration(std::string_view text);

/// How a server pages, from a searchset's next link: the name of the query parameter that
/// carries its cursor ("_getpages", "pageContext", "cursor", "_page_token", "page", "_offset")
/// or "link-next" when the link has none of them. Never returns the cursor's value.
std::string pagingStyle(std::string_view next_url);

}  // namespace psa::adapters::discover
