// `pms-agent discover api --vendor V --base-url URL`: asks a vendor REST API what the rest-poll
// profile of that vendor expects to find. It authenticates with the adapter's auth object, reads
// the FIRST page of each collection the profile knows (through the rest-poll engine's own page
// URLs, parsers, ApiClient, rate limits and Retry-After handling), and reports which collections
// answer, how many records a page held, whether there is a next page, the total where the API
// gives one, and the rate-limit headers seen. Structure and counts only: no record content.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::adapters::discover {

struct ApiSurveyOptions {
  std::string base_url;
  std::string vendor;  ///< a rest-poll profile name (drchrono, nextgen, athenahealth, ...)
  std::string name = "vendor-api";
  json::Value auth;  ///< the adapter's `auth` object (null: none)
  std::string ca_file;
  std::filesystem::path base_dir;  ///< resolves relative key and secret files
};

struct ApiCollectionProbe {
  std::string name;
  std::string kind;
  std::string per;  ///< fan-out parent ("" when listed on its own)
  bool answered = false;
  std::string note;  ///< why not ("HTTP 404", "not probed: ...")
  uint64_t page_items = 0;
  bool next_page = false;
  std::optional<int64_t> total;
};

struct ApiSurvey {
  std::string strategy;
  int64_t profile_page_size = 0;
  std::string auth_type = "none";
  std::string auth_describe;
  std::string token;  ///< "issued", "refused", "per request", "not exercised", "unusable"
  std::string token_error;
  std::vector<ApiCollectionProbe> collections;
  std::map<std::string, std::string> rate_headers;  ///< rate-limit headers seen (last value)
  std::vector<std::string> documented_limits;       ///< the profile's, as text
  uint64_t requests = 0;
  uint64_t throttled = 0;

  /// At least one collection answered.
  bool analysed() const;
  json::Value report(const ApiSurveyOptions& o) const;
  std::string summary(const ApiSurveyOptions& o) const;
  /// One rest-poll adapter object that `pms-agent config validate` accepts.
  json::Value suggestion(const ApiSurveyOptions& o) const;
};

/// Runs the survey (blocking HTTP on the caller's thread). Errors: Errc::invalid_argument for a
/// vendor without a rest-poll profile (naming the known ones), Errc::io for an unreadable
/// ca_file; what the server refuses is reported inside the survey.
Result<ApiSurvey> surveyApi(const ApiSurveyOptions& options);

}  // namespace psa::adapters::discover
