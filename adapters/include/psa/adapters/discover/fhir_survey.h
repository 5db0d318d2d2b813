// `pms-agent discover fhir`: asks a FHIR R4 server what it offers, through the fhir-poll
// adapter's own HTTP client, auth strategies, rate limits and 429/Retry-After handling: the SMART
// document, the CapabilityStatement, whether our credentials get a token (and the scopes
// granted), counts per resource type via `_summary=count`, the paging style, and an estimate of
// the initial load at the vendor's documented rate limit. The report is structure and counts
// only: no resource content is kept or printed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "psa/adapters/discover/fhir_capabilities.h"
#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::adapters::discover {

struct FhirSurveyOptions {
  std::string base_url;
  std::string vendor = "generic";
  std::string name = "fhir";
  json::Value auth;                ///< the adapter's `auth` object (null: none)
  std::string ca_file;             ///< "" = system trust store
  std::string group_id;            ///< Bulk Group id, when the site knows it
  std::filesystem::path base_dir;  ///< resolves relative key and secret files
  bool counts = true;              ///< ask `_summary=count` per resource type
  int64_t page_size = 200;         ///< for the estimate and the suggestion
};

/// What one resource type answered.
struct FhirTypeProbe {
  std::optional<int64_t> count;  ///< nullopt: the server gave no total
  std::string note;              ///< why there is no count ("HTTP 400", "no Bundle.total")
};

struct FhirSurvey {
  std::optional<SmartConfiguration> smart;
  std::string smart_error;
  std::optional<FhirCapabilities> caps;
  std::string caps_error;
  std::string auth_type = "none";
  std::string auth_describe;
  std::string token;  ///< "issued", "refused", "not tried", "not exercised"
  std::string token_error;
  std::string granted_scope;
  std::vector<std::pair<std::string, FhirTypeProbe>> types;  ///< searchable types, in order
  std::string paging;  ///< pagingStyle() of a probe search, "" if none answered
  uint64_t requests = 0;
  uint64_t throttled = 0;
  double mean_latency_ms = 0;

  /// The CapabilityStatement was read (the minimum for a useful report).
  bool analysed() const { return caps.has_value(); }
  json::Value report(const FhirSurveyOptions& o) const;
  std::string summary(const FhirSurveyOptions& o) const;
  /// One fhir-poll adapter object that `pms-agent config validate` accepts.
  json::Value suggestion(const FhirSurveyOptions& o) const;
  /// "search", "history", "bulk" or "patient-search" for this server and vendor.
  std::string suggestedSync(const FhirSurveyOptions& o) const;
};

/// Runs the survey. Blocking (HTTP on the caller's thread). Errors: only a config problem that
/// stops every request (an unreadable ca_file, an unusable auth object); what the server
/// refuses is reported inside the survey.
Result<FhirSurvey> surveyFhir(const FhirSurveyOptions& options);

/// The fhir-poll defaults of `vendor` (its `sync` and documented `rate_limits`), as an adapter
/// object holding only `vendor` would get them.
json::Value fhirVendorDefaults(const std::string& vendor);

/// The auth object for a suggestion: inline secrets (client_secret, password, refresh_token,
/// customer_key, session_id) become `<name>_file` placeholders, relative file paths absolute.
json::Value suggestedAuth(const json::Value& auth, const std::filesystem::path& base_dir);

}  // namespace psa::adapters::discover
