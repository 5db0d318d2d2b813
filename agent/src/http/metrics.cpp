// /metrics from the status document. Each part of the document (adapters, queue, cloud, log,
// process) has one function below; names follow the Prometheus conventions (base units,
// `_total` for counters, `_seconds`, `_bytes`).
#include "http/metrics.h"

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <string_view>

#include "agent_context.h"
#include "build_info.h"
#include "http/prometheus_text.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/clock.h"

namespace psa::agent::http {
namespace {

constexpr auto kCounter = MetricType::counter;
constexpr auto kGauge = MetricType::gauge;

std::optional<double> number(const json::Value& obj, std::string_view key) {
  const json::Value* v = obj.find(key);
  if (v == nullptr || !v->isNumber()) {
    return std::nullopt;
  }
  return v->asNumber();
}

std::optional<double> boolean(const json::Value& obj, std::string_view key) {
  const json::Value* v = obj.find(key);
  if (v == nullptr || !v->isBool()) {
    return std::nullopt;
  }
  return v->asBool() ? 1.0 : 0.0;
}

// An RFC 3339 member as Unix seconds (null, absent or unreadable: none).
std::optional<double> unixSeconds(const json::Value& obj, std::string_view key) {
  const json::Value* v = obj.find(key);
  int64_t ms = 0;
  if (v == nullptr || !v->isString() || !parseRfc3339(v->asString(), ms)) {
    return std::nullopt;
  }
  return static_cast<double>(ms) / 1000.0;
}

// Adds `value` to the family when the document has it.
void put(PrometheusText& out, std::string_view name, MetricType type, std::string_view help,
         const Labels& labels, std::optional<double> value) {
  if (value) {
    out.family(name, type, help).sample(labels, *value);
  }
}

// ---- adapters

// Adapter counters with a family of their own (the names the adapters use: hl7/mllp_listener,
// file/file_drop_ingest, api/poller). Every other counter goes to pms_agent_adapter_events_total
// with its name as the `event` label.
struct CounterFamily {
  std::string_view counter;
  std::string_view family;
  std::string_view help;
  double per_unit = 1.0;
};
constexpr CounterFamily kReceived = {
    "messages", "pms_agent_adapter_received_records_total",
    "Messages or records the adapter received (accepted, duplicate or rejected)."};
constexpr std::array<CounterFamily, 10> kAdapterCounters = {{
    kReceived,
    {"accepted", "pms_agent_adapter_accepted_records_total",
     "Records the adapter handed to the queue (duplicates excluded)."},
    {"records", "pms_agent_adapter_accepted_records_total",
     "Records the adapter handed to the queue (duplicates excluded)."},
    {"duplicates", "pms_agent_adapter_duplicate_records_total",
     "Records the queue recognised as already received."},
    {"duplicate_records", "pms_agent_adapter_duplicate_records_total",
     "Records the queue recognised as already received."},
    {"dead_letters", "pms_agent_adapter_rejected_records_total",
     "Records rejected as bad input and kept as dead letters."},
    {"bytes_in", "pms_agent_adapter_received_bytes_total", "Bytes the adapter read."},
    {"bytes", "pms_agent_adapter_received_bytes_total", "Bytes the adapter read."},
    {"bytes_out", "pms_agent_adapter_sent_bytes_total", "Bytes the adapter wrote (ACKs)."},
    {"commit_us", "pms_agent_adapter_commit_wait_seconds_total",
     "Time the adapter waited for the queue to commit its records.", 1e6},
}};
constexpr std::string_view kAckPrefix = "ack_";

void adapterMetrics(PrometheusText& out, const json::Value& a) {
  const Labels labels = {{"adapter", a.getString("name")}, {"type", a.getString("type")}};
  put(out, "pms_agent_adapter_healthy", kGauge, "1 if the adapter is healthy, else 0.", labels,
      boolean(a, "healthy"));
  Labels state = labels;
  state.emplace_back("state", a.getString("state"));
  out.family("pms_agent_adapter_state", kGauge, "The adapter's current state (always 1).")
      .sample(state, 1);
  put(out, "pms_agent_adapter_last_record_timestamp_seconds", kGauge,
      "When the adapter last accepted a record (Unix time).", labels,
      unixSeconds(a, "last_message_at"));
  put(out, "pms_agent_adapter_last_error_timestamp_seconds", kGauge,
      "When the adapter last reported an error (Unix time).", labels,
      unixSeconds(a, "last_error_at"));
  if (const json::Value* detail = a.find("detail")) {
    put(out, "pms_agent_adapter_open_connections", kGauge, "Connections open now (listeners).",
        labels, number(*detail, "connections_open"));
  }
  const json::Value* counters = a.find("counters");
  if (counters == nullptr || !counters->isObject()) {
    return;
  }
  std::set<std::string_view> emitted;
  bool has_received = false;
  double received = 0;  // for adapters without a "messages" counter: the sum of the outcomes
  for (const auto& [name, value] : counters->members()) {
    if (!value.isNumber()) {
      continue;
    }
    const double v = value.asNumber();
    if (name.rfind(kAckPrefix, 0) == 0) {
      Labels code = labels;
      code.emplace_back("code", name.substr(kAckPrefix.size()));
      out.family("pms_agent_adapter_acks_total", kCounter, "HL7 ACKs sent, by acknowledgment code.")
          .sample(code, v);
      continue;
    }
    const auto* known =
        std::find_if(kAdapterCounters.begin(), kAdapterCounters.end(),
                     [&name = name](const CounterFamily& c) { return c.counter == name; });
    if (known == kAdapterCounters.end()) {
      Labels event = labels;
      event.emplace_back("event", name);
      out.family("pms_agent_adapter_events_total", kCounter,
                 "Other adapter counters, by the counter's name in the status document.")
          .sample(event, v);
      continue;
    }
    if (!emitted.insert(known->family).second) {
      continue;  // two names of one figure (accepted/records): one series, never two
    }
    out.family(known->family, kCounter, known->help).sample(labels, v / known->per_unit);
    has_received = has_received || name == kReceived.counter;
    if (name == "records" || name == "duplicates" || name == "duplicate_records" ||
        name == "dead_letters") {
      received += v;
    }
  }
  if (!has_received) {
    out.family(kReceived.family, kCounter, kReceived.help).sample(labels, received);
  }
}

// ---- queue

void queueMetrics(PrometheusText& out, const json::Value& q) {
  if (!q.isObject() || q.find("error") != nullptr) {
    out.family("pms_agent_queue_up", kGauge, "1 if the queue's figures could be read, else 0.")
        .sample({}, 0);
    return;
  }
  out.family("pms_agent_queue_up", kGauge, "1 if the queue's figures could be read, else 0.")
      .sample({}, 1);
  const Labels none;
  put(out, "pms_agent_queue_pending_records", kGauge,
      "Records not yet delivered (leased and waiting-for-retry ones included).", none,
      number(q, "pending"));
  put(out, "pms_agent_queue_leased_records", kGauge, "Records being delivered now.", none,
      number(q, "leased"));
  put(out, "pms_agent_queue_retry_records", kGauge, "Records waiting for a delivery retry.", none,
      number(q, "retry"));
  put(out, "pms_agent_queue_dead_records", kGauge, "Dead letters kept in the queue.", none,
      number(q, "dead"));
  put(out, "pms_agent_queue_retained_delivered_records", kGauge,
      "Delivered records kept for store.retain_delivered.", none, number(q, "delivered_retained"));
  put(out, "pms_agent_queue_pending_bytes", kGauge, "Payload bytes of the pending records.", none,
      number(q, "pending_bytes"));
  put(out, "pms_agent_queue_database_bytes", kGauge, "Size of the queue database on disk.", none,
      number(q, "db_bytes"));
  put(out, "pms_agent_queue_budget_bytes", kGauge, "The queue's disk budget (store.max_bytes).",
      none, number(q, "max_bytes"));
  put(out, "pms_agent_queue_oldest_pending_age_seconds", kGauge,
      "Age of the oldest pending record (0 when nothing is pending).", none,
      number(q, "oldest_pending_age_s").value_or(0));
  put(out, "pms_agent_queue_dedupe_entries", kGauge, "Identities in the duplicate index.", none,
      number(q, "dedupe_entries"));
  put(out, "pms_agent_queue_dedupe_max_entries", kGauge,
      "Most identities the duplicate index keeps.", none, number(q, "dedupe_max_entries"));
  if (const json::Value* kinds = q.find("by_kind"); kinds != nullptr && kinds->isObject()) {
    for (const auto& [kind, k] : kinds->members()) {
      const Labels labels = {{"kind", kind}};
      put(out, "pms_agent_queue_kind_pending_records", kGauge, "Pending records by record kind.",
          labels, number(k, "pending"));
      put(out, "pms_agent_queue_kind_pending_bytes", kGauge,
          "Payload bytes of the pending records by record kind.", labels, number(k, "bytes"));
      put(out, "pms_agent_queue_kind_dead_records", kGauge, "Dead letters by record kind.", labels,
          number(k, "dead"));
    }
  }
  put(out, "pms_agent_queue_appended_records_total", kCounter,
      "Records appended to the queue since the agent started.", none, number(q, "appended_total"));
  put(out, "pms_agent_queue_delivered_records_total", kCounter,
      "Records delivered (acknowledged by the cloud) since the agent started.", none,
      number(q, "delivered_total"));
  put(out, "pms_agent_queue_duplicate_records_total", kCounter,
      "Records refused as duplicates since the agent started.", none,
      number(q, "duplicates_total"));
  if (const json::Value* b = q.find("budget"); b != nullptr && b->isObject()) {
    const std::string current = b->getString("state");
    for (const std::string_view s : {"ok", "warn", "full"}) {
      out.family("pms_agent_queue_budget_state", kGauge,
                 "The disk budget's state: 1 for the current one (ok, warn, full).")
          .sample({{"state", std::string(s)}}, current == s ? 1 : 0);
    }
    put(out, "pms_agent_queue_intake_refusals_total", kCounter,
        "Times the queue refused records because it was full.", none, number(*b, "refused_total"));
  }
}

// ---- cloud link

void cloudMetrics(PrometheusText& out, const json::Value& c, double drain_rate) {
  const Labels none;
  put(out, "pms_agent_cloud_configured", kGauge, "1 if a cloud link is configured, else 0.", none,
      boolean(c, "configured"));
  put(out, "pms_agent_cloud_connected", kGauge, "1 while connected to the broker, else 0.", none,
      boolean(c, "connected"));
  const std::string current = c.getString("state");
  constexpr std::array kStates = {cloudlink::LinkState::stopped, cloudlink::LinkState::connecting,
                                  cloudlink::LinkState::connected, cloudlink::LinkState::backoff,
                                  cloudlink::LinkState::stopping};
  bool listed = false;
  MetricFamily& state =
      out.family("pms_agent_cloud_state", kGauge, "The cloud link's state: 1 for the current one.");
  for (const cloudlink::LinkState s : kStates) {
    const std::string name(cloudlink::linkStateName(s));
    listed = listed || name == current;
    state.sample({{"state", name}}, name == current ? 1 : 0);
  }
  if (!listed && !current.empty()) {
    state.sample({{"state", current}}, 1);  // "not configured"
  }
  put(out, "pms_agent_cloud_in_flight_records", kGauge, "Records published, awaiting PUBACK.", none,
      number(c, "in_flight"));
  put(out, "pms_agent_cloud_awaiting_receipt_records", kGauge,
      "Records PUBACKed, awaiting the cloud's receipt.", none, number(c, "awaiting_receipt"));
  if (const json::Value* b = c.find("broker"); b != nullptr && b->isObject()) {
    put(out, "pms_agent_cloud_broker_receive_maximum", kGauge,
        "The broker's Receive Maximum (caps the records in flight).", none,
        number(*b, "receive_maximum"));
    put(out, "pms_agent_cloud_broker_maximum_packet_bytes", kGauge,
        "The broker's Maximum Packet Size (0: none announced).", none,
        number(*b, "maximum_packet_size"));
    put(out, "pms_agent_cloud_broker_retain_available", kGauge,
        "1 if the broker keeps retained messages, else 0.", none, boolean(*b, "retain_available"));
  }
  struct Count {
    std::string_view key, family, help;
  };
  static constexpr std::array<Count, 16> kCounts = {{
      {"published", "pms_agent_cloud_published_records_total",
       "Record PUBLISH packets sent (resends included)."},
      {"resent", "pms_agent_cloud_resent_records_total", "Records published again (same msg-id)."},
      {"chunked", "pms_agent_cloud_chunked_records_total",
       "Records sent in chunks (larger than the broker's maximum packet)."},
      {"chunks_published", "pms_agent_cloud_chunks_published_total",
       "Chunk PUBLISH packets of chunked records."},
      {"aliased", "pms_agent_cloud_aliased_publishes_total",
       "Record PUBLISH packets that carried a topic alias instead of the topic."},
      {"acked", "pms_agent_cloud_acked_records_total",
       "Records released from the queue as delivered."},
      {"dead_lettered", "pms_agent_cloud_dead_lettered_records_total",
       "Records moved to the dead letters by a PUBACK reason code."},
      {"retried", "pms_agent_cloud_retried_records_total", "Records put back for a later retry."},
      {"connects", "pms_agent_cloud_connects_total", "Successful connections to the broker."},
      {"reconnects", "pms_agent_cloud_reconnects_total", "Connection attempts after the first."},
      {"watchdog_trips", "pms_agent_cloud_watchdog_trips_total", "Connections dropped as stalled."},
      {"store_errors", "pms_agent_cloud_store_errors_total",
       "Queue calls of the link that failed."},
      {"receipts", "pms_agent_cloud_receipts_total", "Receipt documents accepted."},
      {"receipts_invalid", "pms_agent_cloud_invalid_receipts_total", "Receipt documents rejected."},
      {"control_received", "pms_agent_cloud_control_messages_total",
       "Config and command documents received."},
      {"control_rejected", "pms_agent_cloud_rejected_control_messages_total",
       "Config and command messages dropped."},
  }};
  for (const Count& k : kCounts) {
    put(out, k.family, kCounter, k.help, none, number(c, k.key));
  }
  if (const json::Value* codes = c.find("reason_codes"); codes != nullptr && codes->isObject()) {
    for (const auto& [code, n] : codes->members()) {
      if (n.isNumber()) {
        out.family("pms_agent_cloud_puback_errors_total", kCounter,
                   "Error PUBACKs received, by MQTT reason code.")
            .sample({{"reason_code", code}}, n.asNumber());
      }
    }
  }
  if (c.getBool("configured")) {
    put(out, "pms_agent_cloud_drain_records_per_second", kGauge,
        "Records acknowledged per second over the last minute.", none, drain_rate);
  }
}

// ---- the agent itself

void processMetrics(PrometheusText& out, const MetricsInput& in) {
  const Labels none;
  const json::Value& s = in.status;
  out.family("pms_agent_build_info", kGauge, "The agent's version and commit (always 1).")
      .sample({{"version", s.getString("version", kAgentVersion)}, {"commit", kBuildId}}, 1);
  out.family("pms_agent_process_resident_memory_bytes", kGauge, "Resident memory (working set).")
      .sample(none, static_cast<double>(in.process.rss_bytes));
  out.family("pms_agent_process_cpu_seconds_total", kCounter, "User and system CPU time.")
      .sample(none, in.process.cpu_seconds);
  if (in.process.open_handles >= 0) {
    out.family("pms_agent_process_open_fds", kGauge, "Open file descriptors (handles on Windows).")
        .sample(none, static_cast<double>(in.process.open_handles));
  }
  put(out, "pms_agent_process_start_time_seconds", kGauge, "When the agent started (Unix time).",
      none, unixSeconds(s, "started_at"));
  put(out, "pms_agent_uptime_seconds", kGauge, "Seconds since the agent started.", none,
      number(s, "uptime_s"));
  put(out, "pms_agent_intake_records_per_second", kGauge,
      "Records accepted per second over the last minute.", none, in.intake_rate_per_s);
  if (const json::Value* log = s.find("log")) {
    put(out, "pms_agent_log_messages_total", kCounter, "Log lines written, by level.",
        {{"level", "error"}}, number(*log, "errors"));
    put(out, "pms_agent_log_messages_total", kCounter, "Log lines written, by level.",
        {{"level", "warn"}}, number(*log, "warnings"));
  }
  if (const json::Value* disk = s.find("disk")) {
    put(out, "pms_agent_disk_free_bytes", kGauge,
        "Free space of the file system holding the state directory.", none,
        number(*disk, "free_bytes"));
    put(out, "pms_agent_disk_size_bytes", kGauge,
        "Size of the file system holding the state directory.", none, number(*disk, "total_bytes"));
  }
  if (const json::Value* key = s.find("key_file")) {
    put(out, "pms_agent_key_file_ok", kGauge, "1 if the store key file is present and private.",
        none, boolean(*key, "ok"));
  }
}

void storeMetrics(PrometheusText& out, const store::WriterMetrics& w) {
  if (w.commit_us.bounds.empty()) {
    return;  // no store in the context
  }
  out.family("pms_agent_store_commit_duration_seconds", MetricType::histogram,
             "Time of one group commit, from BEGIN to COMMIT returning (fsync included).")
      .histogram({}, w.commit_us, 1e6);
  out.family("pms_agent_store_commit_group_records", MetricType::histogram,
             "Records appended or settled per group commit.")
      .histogram({}, w.group_records);
  out.family("pms_agent_store_commits_total", kCounter, "Group commits of the queue's writer.")
      .sample({}, static_cast<double>(w.commit_us.count));
}

}  // namespace

std::string renderMetrics(const MetricsInput& in) {
  PrometheusText out;
  processMetrics(out, in);
  if (const json::Value* adapters = in.status.find("adapters");
      adapters != nullptr && adapters->isArray()) {
    for (const json::Value& a : adapters->items()) {
      adapterMetrics(out, a);
    }
  }
  if (const json::Value* q = in.status.find("queue")) {
    queueMetrics(out, *q);
  }
  if (const json::Value* c = in.status.find("cloud")) {
    cloudMetrics(out, *c, in.drain_rate_per_s);
  }
  storeMetrics(out, in.writer);
  return out.str();
}

MetricsInput collectMetrics(const AgentContext& ctx) {
  MetricsInput in;
  in.status = ctx.status ? ctx.status() : buildStatus(ctx);
  if (ctx.store != nullptr) {
    in.writer = ctx.store->writerMetrics();
  }
  in.process = os::resourceUsage();
  return in;
}

}  // namespace psa::agent::http
