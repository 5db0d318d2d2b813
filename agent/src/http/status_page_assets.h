// The status page's static parts (style sheet and script), kept apart from the rendering code.
// They contain no data, so their hashes can pin them in the Content-Security-Policy.
#pragma once

namespace psa::agent::http {

/// The contents of the page's <style> element.
extern const char* const kStatusPageCss;
/// The contents of the page's <script> element: polls /status.json, refreshes the [data-part]
/// elements when it changed.
extern const char* const kStatusPageScript;
/// Default seconds between two polls (`http.refresh_s`; said on the page).
constexpr int kStatusPageRefreshSeconds = 5;

}  // namespace psa::agent::http
