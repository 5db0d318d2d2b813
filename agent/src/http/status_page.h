// The technician's read-only status page (`GET /` of the local HTTP endpoint): one HTML
// document rendered on the server from the status document, the last `check` report and the
// traffic history, complete without JavaScript. Pure functions; thread-safe; PHI-free as long
// as their inputs are (the status document and check report carry no payloads).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/status_page_assets.h"
#include "http/traffic_history.h"
#include "psa/store/json.h"

namespace psa::agent::http {

/// The whole page: server-rendered HTML (complete and readable with JavaScript off) plus a
/// small inline script that re-fetches the page every few seconds and swaps in the same
/// elements (so the words are always the server's, the same the CLI prints). `status` is the
/// status document (buildStatus / buildOfflineStatus); `checks` is checkReportJson() plus "at",
/// `{"pending":true}`, or null (not run yet); `history` oldest first; ages are relative to
/// `now_ms`; the script polls every `refresh_s` seconds. Never fails: missing members are shown
/// as missing.
std::string renderStatusPage(const json::Value& status, const json::Value* checks,
                             const std::vector<TrafficHistory::Point>& history, int64_t now_ms,
                             int refresh_s = kStatusPageRefreshSeconds);

/// `s` safe in HTML text and in double- or single-quoted attribute values (& < > " '). The one
/// escape every dynamic string of the page goes through.
std::string htmlEscape(std::string_view s);

/// The Content-Security-Policy header value the page works under: nothing but its own inline
/// style and script (pinned by their SHA-256) and fetches of its own origin.
std::string statusPageCsp();

}  // namespace psa::agent::http
