// renderMetrics (agent/src/http/metrics.h): the status document's figures under Prometheus
// names, each family once, and never the document's free text (PHI).
#include "http/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "agent_context.h"
#include "metrics_fixture.h"
#include "test_store.h"
#include "test_support.h"

namespace psa::agent::http {
namespace {

using testing::expectFamiliesWrittenOnce;
using testing::queueFigures;
using testing::statusDocument;

std::vector<std::string> missingLines(const std::string& text,
                                      const std::vector<std::string>& expected) {
  std::vector<std::string> missing;
  for (const std::string& e : expected) {
    if (text.find("\n" + e + "\n") == std::string::npos) {
      missing.push_back(e);
    }
  }
  return missing;
}

MetricsInput realisticInput(const std::string& phi) {
  MetricsInput in;
  in.status = statusDocument(queueFigures(), phi);
  BucketHistogram commit_us{1000, 10000};
  commit_us.record(800);
  commit_us.record(4000);
  BucketHistogram group{1, 10};
  group.record(1);
  group.record(3);
  in.writer = {commit_us.snapshot(), group.snapshot()};
  in.process.rss_bytes = 12'345'678;
  in.process.cpu_seconds = 1.5;
  in.process.open_handles = 17;
  in.drain_rate_per_s = 2.5;
  in.intake_rate_per_s = 3;
  return in;
}

TEST(Metrics, StatusDocumentRendersTheExpectedLines) {
  const std::string text = "\n" + renderMetrics(realisticInput("x"));
  const std::string mllp = R"(adapter="cerner-adt",type="hl7-mllp")";
  const std::string file = R"(adapter="lab-drop",type="file-drop")";
  EXPECT_EQ(
      missingLines(text,
                   {
                       "pms_agent_adapter_received_records_total{" + mllp + "} 12",
                       "pms_agent_adapter_accepted_records_total{" + mllp + "} 9",
                       "pms_agent_adapter_rejected_records_total{" + mllp + "} 2",
                       "pms_agent_adapter_duplicate_records_total{" + mllp + "} 1",
                       "pms_agent_adapter_received_bytes_total{" + mllp + "} 4096",
                       "pms_agent_adapter_sent_bytes_total{" + mllp + "} 512",
                       "pms_agent_adapter_acks_total{" + mllp + ",code=\"AA\"} 10",
                       "pms_agent_adapter_acks_total{" + mllp + ",code=\"AE\"} 2",
                       "pms_agent_adapter_acks_total{" + mllp + ",code=\"AR\"} 0",
                       "pms_agent_adapter_events_total{" + mllp + ",event=\"framing_errors\"} 1",
                       "pms_agent_adapter_healthy{" + mllp + "} 1",
                       "pms_agent_adapter_state{" + mllp + ",state=\"listening\"} 1",
                       "pms_agent_adapter_last_record_timestamp_seconds{" + mllp + "} 1789992000",
                       "pms_agent_adapter_last_error_timestamp_seconds{" + mllp + "} 1789991940.5",
                       "pms_agent_adapter_open_connections{" + mllp + "} 2",
                       // file-drop: received is the sum of its outcomes (5 + 1 + 1)
                       "pms_agent_adapter_received_records_total{" + file + "} 7",
                       "pms_agent_adapter_accepted_records_total{" + file + "} 5",
                       "pms_agent_adapter_duplicate_records_total{" + file + "} 1",
                       "pms_agent_adapter_received_bytes_total{" + file + "} 2048",
                       "pms_agent_adapter_events_total{" + file + ",event=\"files_ingested\"} 3",
                       "pms_agent_queue_up 1",
                       "pms_agent_queue_pending_records 7",
                       "pms_agent_queue_leased_records 2",
                       "pms_agent_queue_retry_records 1",
                       "pms_agent_queue_dead_records 3",
                       "pms_agent_queue_pending_bytes 7000",
                       "pms_agent_queue_database_bytes 65536",
                       "pms_agent_queue_budget_bytes 1073741824",
                       "pms_agent_queue_oldest_pending_age_seconds 90.5",
                       "pms_agent_queue_dedupe_entries 48",
                       "pms_agent_queue_kind_pending_records{kind=\"patient\"} 5",
                       "pms_agent_queue_kind_pending_records{kind=\"appointment\"} 2",
                       "pms_agent_queue_kind_pending_bytes{kind=\"patient\"} 5000",
                       "pms_agent_queue_kind_dead_records{kind=\"appointment\"} 1",
                       "pms_agent_queue_appended_records_total 50",
                       "pms_agent_queue_delivered_records_total 40",
                       "pms_agent_queue_duplicate_records_total 2",
                       "pms_agent_queue_budget_state{state=\"ok\"} 1",
                       "pms_agent_queue_budget_state{state=\"full\"} 0",
                       "pms_agent_cloud_connected 1",
                       "pms_agent_cloud_state{state=\"connected\"} 1",
                       "pms_agent_cloud_state{state=\"backoff\"} 0",
                       "pms_agent_cloud_in_flight_records 3",
                       "pms_agent_cloud_published_records_total 40",
                       "pms_agent_cloud_resent_records_total 2",
                       "pms_agent_cloud_acked_records_total 35",
                       "pms_agent_cloud_dead_lettered_records_total 1",
                       "pms_agent_cloud_retried_records_total 4",
                       "pms_agent_cloud_puback_errors_total{reason_code=\"0x87\"} 1",
                       "pms_agent_cloud_puback_errors_total{reason_code=\"0x97\"} 4",
                       "pms_agent_cloud_connects_total 2",
                       "pms_agent_cloud_reconnects_total 1",
                       "pms_agent_cloud_watchdog_trips_total 1",
                       "pms_agent_cloud_store_errors_total 0",
                       "pms_agent_cloud_drain_records_per_second 2.5",
                       "pms_agent_intake_records_per_second 3",
                       "pms_agent_store_commit_duration_seconds_bucket{le=\"0.001\"} 1",
                       "pms_agent_store_commit_duration_seconds_bucket{le=\"0.01\"} 2",
                       "pms_agent_store_commit_duration_seconds_bucket{le=\"+Inf\"} 2",
                       "pms_agent_store_commit_duration_seconds_sum 0.0048",
                       "pms_agent_store_commit_duration_seconds_count 2",
                       "pms_agent_store_commit_group_records_bucket{le=\"1\"} 1",
                       "pms_agent_store_commit_group_records_sum 4",
                       "pms_agent_store_commits_total 2",
                       "pms_agent_process_resident_memory_bytes 12345678",
                       "pms_agent_process_cpu_seconds_total 1.5",
                       "pms_agent_process_open_fds 17",
                       "pms_agent_process_start_time_seconds 1789984800",
                       "pms_agent_uptime_seconds 7200",
                       "pms_agent_log_messages_total{level=\"error\"} 3",
                       "pms_agent_log_messages_total{level=\"warn\"} 7",
                   }),
      std::vector<std::string>{})
      << text;
  EXPECT_NE(text.find("\npms_agent_build_info{version=\"1.2.3\",commit=\""), std::string::npos);
  expectFamiliesWrittenOnce(text);
}

TEST(Metrics, PhiInErrorsAndDeadLetterReasonsNeverAppears) {
  const std::string marker = psa::test::uniqueMarker();
  const MetricsInput in = realisticInput(marker);
  ASSERT_NE(json::serialize(in.status).find(marker), std::string::npos);
  EXPECT_EQ(renderMetrics(in).find(marker), std::string::npos);
}

TEST(Metrics, MissingPartsAreLeftOut) {
  MetricsInput in;
  in.status = testing::parsed(
      R"({"version":"1.2.3","adapters":[{"name":"a","type":"rest-poll","state":"failed",)"
      R"("healthy":false,"last_error":"not started"}],"queue":{"error":"locked"},)"
      R"("cloud":{"configured":false,"state":"not configured","connected":false}})");
  in.process.open_handles = -1;
  const std::string text = "\n" + renderMetrics(in);
  EXPECT_EQ(missingLines(text, {"pms_agent_adapter_healthy{adapter=\"a\",type=\"rest-poll\"} 0",
                                "pms_agent_queue_up 0", "pms_agent_cloud_configured 0",
                                "pms_agent_cloud_state{state=\"not configured\"} 1",
                                "pms_agent_cloud_state{state=\"connected\"} 0"}),
            std::vector<std::string>{})
      << text;
  for (const char* absent :
       {"pms_agent_adapter_received_records_total", "pms_agent_queue_pending_records",
        "pms_agent_cloud_drain_records_per_second", "pms_agent_store_commit",
        "pms_agent_process_open_fds"}) {
    EXPECT_EQ(text.find(absent), std::string::npos) << absent;
  }
  expectFamiliesWrittenOnce(text);
}

TEST(Metrics, TwoNamesOfOneFigureMakeOneSeries) {
  // "accepted" (MLLP) and "records" (files, APIs) are one family; an adapter reporting both
  // must not produce a duplicate series (Prometheus refuses the whole scrape).
  MetricsInput in;
  in.status = testing::parsed(
      R"({"adapters":[{"name":"a","type":"rest-poll","state":"polling","healthy":true,)"
      R"("counters":{"accepted":4,"records":4,"bytes_in":10,"bytes":10}}]})");
  const std::string text = "\n" + renderMetrics(in);
  const std::string series = "\npms_agent_adapter_accepted_records_total{adapter=\"a\"";
  const size_t first = text.find(series);
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find(series, first + 1), std::string::npos) << text;
  const std::string bytes = "\npms_agent_adapter_received_bytes_total{adapter=\"a\"";
  EXPECT_EQ(text.find(bytes, text.find(bytes) + 1), std::string::npos) << text;
  expectFamiliesWrittenOnce(text);
}

TEST(Metrics, BrokerLimitsOnceAnnounced) {
  MetricsInput in;
  in.status = testing::parsed(
      R"({"cloud":{"configured":true,"state":"connected","connected":true,"broker":null}})");
  EXPECT_EQ(renderMetrics(in).find("pms_agent_cloud_broker_"), std::string::npos);
  in.status = testing::parsed(
      R"({"cloud":{"configured":true,"state":"connected","connected":true,"broker":)"
      R"({"receive_maximum":20,"maximum_packet_size":32768,"maximum_qos":1,)"
      R"("retain_available":false}}})");
  const std::string text = "\n" + renderMetrics(in);
  EXPECT_EQ(missingLines(text, {"pms_agent_cloud_broker_receive_maximum 20",
                                "pms_agent_cloud_broker_maximum_packet_bytes 32768",
                                "pms_agent_cloud_broker_retain_available 0"}),
            std::vector<std::string>{})
      << text;
  expectFamiliesWrittenOnce(text);
}

TEST(Metrics, CollectTakesTheStatusDocumentAndTheStoreHistograms) {
  psa::test::TempDir dir;
  psa::test::TestStore queue(dir.path());
  store::Record r;
  r.source = "lab-drop";
  r.vendor = "lab";
  r.kind = store::Kind::clinical;
  r.format = std::string(store::format::kHl7v2);
  r.payload = Sensitive<std::string>("MSH|^~\\&|");
  std::vector<store::Record> records;
  records.push_back(std::move(r));
  queue.append(std::move(records));
  AgentContext ctx;
  ctx.store = &queue.store();
  ctx.status = [] { return testing::parsed(R"({"version":"9.9.9"})"); };

  const MetricsInput in = collectMetrics(ctx);
  EXPECT_EQ(in.status.getString("version"), "9.9.9");
  EXPECT_GE(in.writer.commit_us.count, 1u);
  EXPECT_GE(in.writer.group_records.sum, 1u);
  EXPECT_GT(in.process.rss_bytes, 0u);
  EXPECT_NE(renderMetrics(in).find("\npms_agent_store_commits_total "), std::string::npos);
}

}  // namespace
}  // namespace psa::agent::http
