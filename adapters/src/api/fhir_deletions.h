// What fhir-poll's search mode needs to find deletions, which a search never shows (tests/sim/
// README.md §3.8): a complete id listing per type for the periodic reconcile (reconcile.h), and
// the deletion entry it then carries.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "api_client.h"
#include "psa/adapters/api/fhir.h"
#include "url.h"

namespace psa::adapters::api {

/// GETs one Bundle page into `out` (FhirPollSource::getPage).
using GetBundlePage = std::function<Result<HttpResponse>(
    const std::string& url, const std::string& what, std::shared_ptr<FhirPage> out)>;

/// Every id of `type` the server lists now: `{base}/{type}?_elements=id&_count=N` plus
/// `extra`, every page (link[next] verbatim). Errors: the failing page's; Errc::closed when
/// `stopped` turns true.
Status listFhirIds(const GetBundlePage& get_page, const std::string& base, const std::string& type,
                   int64_t page_size, const Params& extra, const std::function<bool()>& stopped,
                   std::set<std::string>& ids);

/// `{"request":{"method":"DELETE","url":"Type/id"}}`: the shape of a Bulk `deleted` entry and
/// of a `_history` DELETE entry, so a consumer handles every deletion alike.
std::string fhirDeletionEntry(const std::string& type, const std::string& id);

}  // namespace psa::adapters::api
