// The status page's "records in/out over the last hour" card: an inline SVG chart drawn on the
// server from the traffic history (no script needed, no assets loaded). Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "http/traffic_history.h"

namespace psa::agent::http {

/// Appends the traffic card (a `data-part="traffic"` section) to `out`: both series over the
/// hour before `now_ms` (older points are left out), with the totals in words.
void renderTrafficChart(std::string& out, const std::vector<TrafficHistory::Point>& history,
                        int64_t now_ms);

}  // namespace psa::agent::http
