// Per-patient search fan-out of fhir-poll (`"sync": "patient-search"`): for servers that refuse
// population searches (Epic, Cerner, athenahealth; pms-interfaces.md §0.2, tests/sim/README.md
// §5). Lists the patients (the Group's members, or a paged Patient search), then asks
// `Patient?_id={id}` and `{Type}?patient={id}` with `_lastUpdated=ge<wm>` for every configured
// type, following Bundle link[next].
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api_client.h"
#include "psa/adapters/api/fhir.h"
#include "psa/store/log.h"
#include "psa/store/record_sink.h"
#include "url.h"

namespace psa::adapters::api {

/// What the fan-out needs from its adapter (fhir_poll.cpp's FhirPollSource). All are called
/// on the adapter's worker thread.
struct FanoutHooks {
  /// GETs one Bundle page into `out` (retries, throttling and auth are the client's).
  std::function<Result<HttpResponse>(const std::string& url, const std::string& what,
                                     std::shared_ptr<FhirPage> out)>
      get_page;
  /// Makes the store record of one item of a page whose body is `text`.
  std::function<store::Record(std::string_view text, const FhirItem& item)> record_for;
  /// Commits records and watermarks in one durable transaction.
  std::function<Result<size_t>(store::AppendBatch)> commit;
  /// The adapter's committed watermark `key`.
  std::function<Result<std::optional<std::string>>(const std::string& key)> watermark;
  /// True once the adapter is stopping.
  std::function<bool()> stopped;
};

struct FanoutOptions {
  std::string adapter;  ///< watermark scope
  std::string base;     ///< FHIR base, no trailing slash
  std::vector<std::string> resources;
  std::string group_id;  ///< patients = this Group's members; empty: a paged Patient search
  int64_t page_size = 200;
  int64_t overlap_s = 2;
  Params search_params;
  std::shared_ptr<ApiClient> api;  ///< for the Group read and the server's Date
};

/// `wm` minus `overlap_s`, as an instant with millisecond precision; `wm` unchanged if
/// unparsable (shared by every fhir-poll strategy).
std::string minusOverlap(const std::string& wm, int64_t overlap_s);

/// One fan-out pass. Progress (run watermark, patient, type, next page) is committed with
/// each page's records, so a SIGKILL resumes at the page after the last durable one; the
/// next pass's `_lastUpdated` (one watermark per type, so a type added later is read in full)
/// is the server time the patient list was read at, minus `overlap_s`. Patients are visited in id
/// order, so a resumed pass skips those done even if the list changed meanwhile (a patient added
/// since has only changes after the watermark). Deletions are not seen: a search shows nothing for
/// a deleted resource (use bulk or history). Errors: the first failing call's, with the watermark
/// unchanged.
Status runPatientFanout(const FanoutOptions& opt, const FanoutHooks& hooks,
                        const log::Logger& logger);

}  // namespace psa::adapters::api
