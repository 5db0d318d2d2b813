// libFuzzer target: the readers of what a FHIR server says about itself (`pms-agent discover
// fhir`): the CapabilityStatement, the SMART configuration and the paging style of a next
// link, on arbitrary bytes; then the survey's report, summary and suggestion rendered from
// whatever was read. Besides "no crash, no leak, no UB": every kept string is printable ASCII,
// the resource list is bounded, and every rendering is valid JSON.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "psa/adapters/discover/fhir_capabilities.h"
#include "psa/adapters/discover/fhir_survey.h"
#include "psa/store/json.h"

namespace discover = psa::adapters::discover;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void checkPrintable(const std::string& s) {
  for (char c : s) {
    check(c >= 0x20 && c < 0x7f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  discover::FhirSurvey survey;
  if (auto caps = discover::parseCapabilityStatement(input)) {
    check(caps->resources.size() <= discover::kMaxResourceTypes);
    checkPrintable(caps->software);
    checkPrintable(caps->fhir_version);
    checkPrintable(caps->token_url);
    for (const auto& r : caps->resources) {
      check(!r.type.empty());
      checkPrintable(r.type);
      if (r.search) {
        discover::FhirTypeProbe probe;
        if (r.read) {
          probe.count = static_cast<int64_t>(size);
        } else {
          probe.note = "HTTP 400";
        }
        survey.types.emplace_back(r.type, probe);
      }
    }
    survey.caps = std::move(caps).value();
  } else {
    check(!caps.error().message.empty());
  }
  if (auto smart = discover::parseSmartConfiguration(input)) {
    check(!smart->token_endpoint.empty());
    checkPrintable(smart->token_endpoint);
    survey.smart = std::move(smart).value();
  }
  checkPrintable(discover::pagingStyle(input));
  discover::FhirSurveyOptions o;
  o.base_url = "https://fhir.example/r4";
  for (const char* vendor : {"generic", "athenahealth"}) {
    o.vendor = vendor;
    check(psa::json::parse(psa::json::serialize(survey.report(o))).ok());
    check(psa::json::parse(psa::json::serialize(survey.suggestion(o))).ok());
    check(!survey.summary(o).empty());
  }
  return 0;
}
