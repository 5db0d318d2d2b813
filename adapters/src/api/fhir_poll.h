// Factories of the API adapter types (internal; registered by register.cpp).
#pragma once

#include <filesystem>
#include <vector>

#include "psa/adapters/source.h"
#include "psa/store/json.h"

namespace psa::adapters::api {

/// fhir-poll: `config` validated against fhirPollSchema() with the vendor profile applied.
Result<SourcePtr> makeFhirPollSource(const json::Value& config, SourceContext& ctx);
/// `pms-agent check` for fhir-poll: metadata (CapabilityStatement) and a token.
std::vector<CheckResult> checkFhirPoll(const json::Value& config,
                                       const std::filesystem::path& state_dir);

/// rest-poll (vendor APIs through a vendor profile).
Result<SourcePtr> makeRestPollSource(const json::Value& config, SourceContext& ctx);
std::vector<CheckResult> checkRestPoll(const json::Value& config,
                                       const std::filesystem::path& state_dir);

/// The vendor defaults of fhir-poll (sync strategy, documented rate limits) merged under the
/// adapter's own settings.
json::Value withFhirVendorDefaults(const json::Value& config);

}  // namespace psa::adapters::api
