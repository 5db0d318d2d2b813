// The Prometheus text format 0.0.4:
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
#include "http/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>

#include "psa/store/fatal.h"

namespace psa::agent::http {
namespace {

bool nameChar(char c, bool first, bool colon) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return alpha || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

bool validName(std::string_view name, bool colon) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    if (!nameChar(name[i], i == 0, colon)) {
      return false;
    }
  }
  return true;
}

std::string_view typeName(MetricType t) {
  switch (t) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string formatSampleValue(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  // Whole numbers (every counter) as integers: the shortest double form would print 1e+06.
  if (v == std::floor(v) && std::fabs(v) < 1e18) {
    return std::to_string(static_cast<int64_t>(v));
  }
  // Plain decimals where they stay short (what Prometheus' Go clients print: le="0.0005", not
  // "5e-04"), the shortest round-trip form either way.
  char buf[64];
  const bool plain = std::fabs(v) >= 1e-6 && std::fabs(v) < 1e18;
  const auto res = plain ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                         : std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

bool validMetricName(std::string_view name) { return validName(name, true); }

bool validLabelName(std::string_view name) {
  return validName(name, false) && name.substr(0, 2) != "__";
}

void MetricFamily::line(std::string_view suffix, const Labels& labels, const std::string* le,
                        double value) {
  samples_ += name_;
  samples_ += suffix;
  if (!labels.empty() || le != nullptr) {
    samples_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!validLabelName(k) || k == "le") {
        fatalInvariant("metrics.label_name");  // a constant of our code: a bug
      }
      samples_ += first ? "" : ",";
      samples_ += k + "=\"" + escapeLabelValue(v) + '"';
      first = false;
    }
    if (le != nullptr) {
      samples_ += (first ? "le=\"" : ",le=\"") + *le + '"';
    }
    samples_ += '}';
  }
  samples_ += ' ';
  samples_ += formatSampleValue(value);
  samples_ += '\n';
}

void MetricFamily::sample(const Labels& labels, double value) {
  if (type_ == MetricType::histogram) {
    fatalInvariant("metrics.histogram_sample");
  }
  line("", labels, nullptr, value);
}

void MetricFamily::histogram(const Labels& labels, const HistogramSnapshot& h, double per_unit) {
  if (type_ != MetricType::histogram) {
    fatalInvariant("metrics.not_a_histogram");
  }
  for (size_t i = 0; i < h.bounds.size() && i < h.cumulative.size(); ++i) {
    const std::string le = formatSampleValue(static_cast<double>(h.bounds[i]) / per_unit);
    line("_bucket", labels, &le, static_cast<double>(h.cumulative[i]));
  }
  const std::string inf = "+Inf";
  line("_bucket", labels, &inf, static_cast<double>(h.count));
  line("_sum", labels, nullptr, static_cast<double>(h.sum) / per_unit);
  line("_count", labels, nullptr, static_cast<double>(h.count));
}

std::string MetricFamily::text() const {
  if (samples_.empty()) {
    return {};
  }
  std::string out = "# HELP " + name_ + ' ' + escapeHelp(help_) + '\n';
  out += "# TYPE " + name_ + ' ' + std::string(typeName(type_)) + '\n';
  return out + samples_;
}

MetricFamily& PrometheusText::family(std::string_view name, MetricType type,
                                     std::string_view help) {
  for (MetricFamily& f : families_) {
    if (f.name() == name) {
      if (f.type() != type) {
        fatalInvariant("metrics.family_type");
      }
      return f;
    }
  }
  if (!validMetricName(name)) {
    fatalInvariant("metrics.family_name");
  }
  return families_.emplace_back(std::string(name), type, std::string(help));
}

std::string PrometheusText::str() const {
  std::string out;
  for (const MetricFamily& f : families_) {
    out += f.text();
  }
  return out;
}

}  // namespace psa::agent::http
