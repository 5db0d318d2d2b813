// `promtool check metrics` (Debian's prometheus package) accepts the /metrics body of a realistic
// agent, lint included: the writer histograms come from a real store with records appended.
// POSIX only: runCommand starts promtool as a child process.
#include <gtest/gtest.h>

#include <filesystem>

#include "http/metrics.h"
#include "metrics_fixture.h"
#include "psa/store/clock.h"
#include "psa/store/os/process_info.h"
#include "status_document.h"
#include "test_store.h"
#include "test_support.h"

namespace psa::agent::http {
namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";

store::Record record(int i) {
  store::Record r;
  r.source = "cerner-adt";
  r.vendor = "cerner";
  r.kind = i % 2 ? store::Kind::patient : store::Kind::appointment;
  r.format = std::string(store::format::kHl7v2);
  r.payload = Sensitive<std::string>("MSH|^~\\&|record " + std::to_string(i));
  return r;
}

TEST(MetricsPromtool, RealisticOutputPassesCheckMetricsWithoutLintWarnings) {
  ASSERT_TRUE(std::filesystem::exists(kPromtool))
      << kPromtool << " is missing: apt-get install prometheus (promtool checks /metrics)";
  psa::test::TempDir dir;
  psa::test::TestStore queue(dir.path());
  for (int batch = 0; batch < 3; ++batch) {
    std::vector<store::Record> records;
    for (int i = 0; i <= batch; ++i) {
      records.push_back(record(batch * 10 + i));
    }
    queue.append(std::move(records));
  }
  const std::string marker = psa::test::uniqueMarker();
  MetricsInput in;
  in.status =
      testing::statusDocument(queueStatusJson(queue.store(), Clock::system()->nowMs()), marker);
  in.writer = queue.store().writerMetrics();
  in.process = os::resourceUsage();
  in.drain_rate_per_s = 0.25;
  in.intake_rate_per_s = 1.0 / 3.0;
  ASSERT_GE(in.writer.commit_us.count, 3u);
  const std::string body = renderMetrics(in);
  EXPECT_EQ(body.find(marker), std::string::npos);

  const auto check =
      psa::test::runCommand({kPromtool, "check", "metrics"}, std::chrono::seconds(60), {}, body);
  EXPECT_EQ(check.exit_code, 0) << check.output << "\n--- input:\n" << body;
  EXPECT_EQ(check.output, "") << "promtool lint warnings";
}

}  // namespace
}  // namespace psa::agent::http
