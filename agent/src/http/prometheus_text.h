// A writer for the Prometheus text exposition format 0.0.4 (what `GET /metrics` answers): metric
// families with their `# HELP` and `# TYPE` lines, samples with escaped label values, numbers as
// Prometheus parses them. A family collects its samples wherever they are added and is written
// once, all together (Prometheus and promtool reject a family split in two). Pure; not
// thread-safe (build one per scrape).
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/store/bucket_histogram.h"

namespace psa::agent::http {

enum class MetricType { counter, gauge, histogram };

/// (name, value) pairs in the order written. Names must be valid label names
/// (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, never `le`); values are any UTF-8 text
/// and are escaped here. Values must come from a bounded set (names, kinds, states, codes).
using Labels = std::vector<std::pair<std::string, std::string>>;

/// One metric family; get it from PrometheusText::family().
class MetricFamily {
 public:
  MetricFamily(std::string name, MetricType type, std::string help)
      : name_(std::move(name)), type_(type), help_(std::move(help)) {}

  /// Adds the sample `name{labels} value` of a counter or gauge family.
  void sample(const Labels& labels, double value);
  /// Adds the `_bucket`, `_sum` and `_count` samples of a histogram family from `h`, whose
  /// bounds and sum are divided by `per_unit` (1e6 turns microseconds into seconds).
  void histogram(const Labels& labels, const HistogramSnapshot& h, double per_unit = 1.0);

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  /// The HELP and TYPE lines and every sample; "" if the family has no sample.
  std::string text() const;

 private:
  void line(std::string_view suffix, const Labels& labels, const std::string* le, double value);

  std::string name_;
  MetricType type_;
  std::string help_;
  std::string samples_;
};

/// A whole exposition document.
class PrometheusText {
 public:
  /// The family `name`, declared here on first use; later calls return the same family and
  /// must give the same type. Names follow the Prometheus rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`)
  /// and are constants of our code: a bad name or a type clash is a bug and ends the process
  /// (fatalInvariant). The reference stays valid as long as this object.
  MetricFamily& family(std::string_view name, MetricType type, std::string_view help);
  /// The document: the families in the order first declared, empty ones left out.
  std::string str() const;

 private:
  std::deque<MetricFamily> families_;
};

/// `v` as Prometheus parses it: integers without exponent or fraction, other values in the
/// shortest form that reads back the same, `+Inf`, `-Inf` and `NaN`.
std::string formatSampleValue(double v);
/// A label value with `\`, `"` and line feeds escaped (without the quotes).
std::string escapeLabelValue(std::string_view v);
/// HELP text with `\` and line feeds escaped.
std::string escapeHelp(std::string_view v);
/// True for a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
bool validMetricName(std::string_view name);
/// True for a label name we may use (`[a-zA-Z_][a-zA-Z0-9_]*`, no leading `__`).
bool validLabelName(std::string_view name);

}  // namespace psa::agent::http
