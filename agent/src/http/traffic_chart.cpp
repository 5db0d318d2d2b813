// An SVG polyline per series over a fixed one-hour x axis; the y axis scales to the busiest
// interval. Numbers only: nothing here needs escaping.
#include "http/traffic_chart.h"

#include <algorithm>
#include <cstdio>

#include "cli_support.h"

namespace psa::agent::http {
namespace {

constexpr int64_t kSpanMs = 3600 * 1000;
constexpr int64_t kRecentMs = 5 * 60 * 1000;
constexpr double kWidth = 600;
constexpr double kHeight = 140;
constexpr double kTop = 8;  // room so a peak's line is not cut by the border

std::string polyline(const std::vector<TrafficHistory::Point>& points, int64_t start, uint64_t peak,
                     uint64_t TrafficHistory::Point::*field, const char* cls) {
  std::string coords;
  char buf[48];
  for (const auto& p : points) {
    const double x = static_cast<double>(p.at_ms - start) / kSpanMs * kWidth;
    const double y =
        kHeight - static_cast<double>(p.*field) / static_cast<double>(peak) * (kHeight - kTop);
    std::snprintf(buf, sizeof buf, "%s%.1f,%.1f", coords.empty() ? "" : " ", x, y);
    coords += buf;
  }
  return std::string("<polyline class=\"") + cls + "\" fill=\"none\" stroke-width=\"2\" " +
         "stroke-linejoin=\"round\" vector-effect=\"non-scaling-stroke\" points=\"" + coords +
         "\"/>";
}

}  // namespace

void renderTrafficChart(std::string& out, const std::vector<TrafficHistory::Point>& history,
                        int64_t now_ms) {
  const int64_t start = now_ms - kSpanMs;
  std::vector<TrafficHistory::Point> shown;
  uint64_t peak = 1;
  uint64_t in_hour = 0, out_hour = 0, in_recent = 0, out_recent = 0;
  for (const auto& p : history) {
    if (p.at_ms < start || p.at_ms > now_ms) {
      continue;
    }
    shown.push_back(p);
    peak = std::max({peak, p.in, p.out});
    in_hour += p.in;
    out_hour += p.out;
    if (p.at_ms > now_ms - kRecentMs) {
      in_recent += p.in;
      out_recent += p.out;
    }
  }
  out +=
      "<section class=\"card wide\" data-part=\"traffic\"><h2>Records in and out, last hour"
      "</h2><svg viewBox=\"0 0 600 140\" preserveAspectRatio=\"none\" role=\"img\" "
      "aria-label=\"records stored and acknowledged per interval over the last hour\">";
  for (int i = 1; i < 4; ++i) {
    const std::string y = std::to_string(static_cast<int>(kTop + (kHeight - kTop) * i / 4));
    out += "<line x1=\"0\" x2=\"600\" y1=\"" + y + "\" y2=\"" + y +
           "\" stroke=\"#e3e8ee\" stroke-width=\"1\" vector-effect=\"non-scaling-stroke\"/>";
  }
  if (!shown.empty()) {
    out += polyline(shown, start, peak, &TrafficHistory::Point::in, "line-in");
    out += polyline(shown, start, peak, &TrafficHistory::Point::out, "line-out");
  }
  out +=
      "</svg><div class=\"axis\"><span>60 min ago</span><span>30 min ago</span><span>now"
      "</span></div>";
  if (shown.empty()) {
    out += "<p class=\"empty\">no figures yet: the chart fills in over the first minutes</p>";
  } else {
    out += "<p class=\"legend\"><span><span class=\"key-in\">━ in</span> " + humanCount(in_hour) +
           " stored (" + humanCount(in_recent) +
           " in the last 5 min)</span><span><span "
           "class=\"key-out\">━ out</span> " +
           humanCount(out_hour) + " acknowledged by the cloud (" + humanCount(out_recent) +
           " in the last 5 min)</span><span class=\"when\">top of chart: " + humanCount(peak) +
           " per interval</span></p>";
  }
  out += "</section>";
}

}  // namespace psa::agent::http
