// libFuzzer target: the discovery profilers (`pms-agent discover hl7` / `discover files`) on
// arbitrary bytes. Besides "no crash, no leak, no UB" it checks that every report is valid
// JSON, and that a marker planted in the input never reaches a report: whatever the bytes, the
// profilers print only codes and counts.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "psa/adapters/discover/file_survey.h"
#include "psa/adapters/discover/hl7_profile.h"
#include "psa/store/json.h"

namespace discover = psa::adapters::discover;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

constexpr std::string_view kMarker = "QQLEAKMARKQQ";

void checkReport(const psa::json::Value& report, const std::string& summary) {
  const std::string text = psa::json::serialize(report);
  check(psa::json::parse(text).ok());
  check(text.find(kMarker) == std::string::npos);
  check(summary.find(kMarker) == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  {
    discover::Hl7Profiler profiler;
    profiler.addFile(input);
    profiler.addMessage(input);
    // The same bytes with the marker spliced into the middle: as a field of a message.
    std::string planted(input.substr(0, size / 2));
    planted += kMarker;
    planted += input.substr(size / 2);
    profiler.addFile(planted);
    checkReport(profiler.report(), profiler.summary());
  }
  {
    // Column names are printed by design (as they are in the file); cell values never are.
    discover::FileSurvey survey;
    survey.addFile("sample_1.csv", input);
    const std::string s = survey.summary();
    const std::string r = psa::json::serialize(survey.report());
    check(psa::json::parse(r).ok());
    check(!s.empty());
  }
  return 0;
}
