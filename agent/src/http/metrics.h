// The body of `GET /metrics`: the agent's health in the Prometheus text format, derived from the
// status document (the same figures `pms-agent status --json` prints) plus what only Prometheus
// wants (the store's commit histograms, rates, the build). PHI-free by construction: label
// values are adapter names and types, states, queue kinds, ACK and PUBACK codes and counter
// names of our code; no free text of the document (errors, dead-letter reasons) is read.
#pragma once

#include <string>

#include "psa/store/json.h"
#include "psa/store/os/process_info.h"
#include "psa/store/writer_metrics.h"

namespace psa::agent {
struct AgentContext;
}

namespace psa::agent::http {

struct MetricsInput {
  /// The status document (buildStatus(), same as `pms-agent status --json`).
  json::Value status;
  /// The store's commit histograms.
  store::WriterMetrics writer;
  /// This process's memory, CPU time and handles.
  os::ResourceUsage process;
  /// Records acknowledged per second over the last minute (filled by the caller).
  double drain_rate_per_s = 0;
  /// Records accepted per second over the last minute (filled by the caller).
  double intake_rate_per_s = 0;
};

/// The /metrics body. PHI-free; label values are adapter names, kinds, states, reason codes.
/// Pure and thread-safe; parts missing from `in.status` (no cloud link, a queue that could not
/// be read, an adapter that never started) are left out rather than reported as zero.
std::string renderMetrics(const MetricsInput& in);

/// Gathers everything but the two rates from the running agent. Thread-safe (the status
/// document and the store's histograms are); blocks briefly on the store's read connection, so
/// call it off the io threads, like the control handlers do.
MetricsInput collectMetrics(const AgentContext& ctx);

}  // namespace psa::agent::http
