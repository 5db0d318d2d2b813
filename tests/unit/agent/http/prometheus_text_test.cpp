// PrometheusText (agent/src/http/prometheus_text.h): escaping, number formats, families written
// once with all their samples, histograms as cumulative buckets.
#include "http/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "psa/store/fatal.h"

namespace psa::agent::http {
namespace {

TEST(PrometheusText, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(escapeLabelValue(R"(a\b"c)"
                             "\nd"),
            R"(a\\b\"c\nd)");
  EXPECT_EQ(escapeHelp("back\\slash \"quoted\"\nnext"), "back\\\\slash \"quoted\"\\nnext");
  PrometheusText out;
  out.family("x_total", MetricType::counter, "Help with \\ and\nnewline.")
      .sample({{"name", "say \"hi\"\\\n"}}, 3);
  EXPECT_EQ(out.str(),
            "# HELP x_total Help with \\\\ and\\nnewline.\n"
            "# TYPE x_total counter\n"
            "x_total{name=\"say \\\"hi\\\"\\\\\\n\"} 3\n");
}

TEST(PrometheusText, NumbersAreFormattedAsPrometheusParsesThem) {
  EXPECT_EQ(formatSampleValue(0), "0");
  EXPECT_EQ(formatSampleValue(1'000'000), "1000000");
  EXPECT_EQ(formatSampleValue(12'345'678'901'234.0), "12345678901234");
  EXPECT_EQ(formatSampleValue(-7), "-7");
  EXPECT_EQ(formatSampleValue(0.25), "0.25");
  EXPECT_EQ(formatSampleValue(0.1), "0.1");
  EXPECT_EQ(formatSampleValue(250 / 1e6), "0.00025");
  EXPECT_EQ(formatSampleValue(500 / 1e6), "0.0005");
  EXPECT_EQ(formatSampleValue(1e-9), "1e-09");
  EXPECT_EQ(formatSampleValue(1.5e20), "1.5e+20");
  EXPECT_EQ(formatSampleValue(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(formatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatSampleValue(std::nan("")), "NaN");
}

TEST(PrometheusText, NamesAreValidated) {
  EXPECT_TRUE(validMetricName("pms_agent_up"));
  EXPECT_TRUE(validMetricName("job:rate5m"));
  EXPECT_FALSE(validMetricName(""));
  EXPECT_FALSE(validMetricName("1abc"));
  EXPECT_FALSE(validMetricName("a-b"));
  EXPECT_FALSE(validMetricName("a b"));
  EXPECT_TRUE(validLabelName("adapter"));
  EXPECT_FALSE(validLabelName("__name__"));
  EXPECT_FALSE(validLabelName("a:b"));
  EXPECT_FALSE(validLabelName("9"));
}

TEST(PrometheusText, FamilyIsWrittenOnceWithAllItsSamples) {
  PrometheusText out;
  out.family("a_total", MetricType::counter, "A.").sample({{"x", "1"}}, 1);
  out.family("b", MetricType::gauge, "B.").sample({}, 2);
  out.family("a_total", MetricType::counter, "A.").sample({{"x", "2"}}, 3);
  out.family("empty", MetricType::gauge, "Never sampled.");
  EXPECT_EQ(out.str(),
            "# HELP a_total A.\n"
            "# TYPE a_total counter\n"
            "a_total{x=\"1\"} 1\n"
            "a_total{x=\"2\"} 3\n"
            "# HELP b B.\n"
            "# TYPE b gauge\n"
            "b 2\n");
}

TEST(PrometheusText, HistogramHasCumulativeBucketsSumAndCount) {
  BucketHistogram h{250, 1000};
  for (const uint64_t us : {100, 250, 900, 5000}) {
    h.record(us);
  }
  PrometheusText out;
  out.family("d_seconds", MetricType::histogram, "D.").histogram({{"k", "v"}}, h.snapshot(), 1e6);
  EXPECT_EQ(out.str(),
            "# HELP d_seconds D.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{k=\"v\",le=\"0.00025\"} 2\n"
            "d_seconds_bucket{k=\"v\",le=\"0.001\"} 3\n"
            "d_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{k=\"v\"} 0.00625\n"
            "d_seconds_count{k=\"v\"} 4\n");
}

TEST(PrometheusTextDeathTest, BadNameOrTypeClashIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(PrometheusText().family("bad-name", MetricType::gauge, "x"),
              ::testing::ExitedWithCode(kExitFatalInvariant), "");
  EXPECT_EXIT(
      {
        PrometheusText out;
        out.family("a", MetricType::gauge, "x");
        out.family("a", MetricType::counter, "x");
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "");
}

}  // namespace
}  // namespace psa::agent::http
