// The broker diagnostics of `pms-agent check`, each step with a short timeout: DNS, TCP, TLS
// handshake (chain, host name, expiry; our client certificate) and MQTT 5 authentication. No
// libmosquitto: one blocking-with-deadline connection made by hand, so every failure can be
// named precisely. Runs in the CLI process; never disturbs the agent's own MQTT session (it
// connects with a different client id and a clean start).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "psa/adapters/source.h"
#include "psa/agent/config.h"

namespace psa::agent {

using CheckResult = adapters::CheckResult;

struct BrokerProbeOptions {
  std::chrono::milliseconds timeout{5000};  ///< per step
  int warn_days = 30;                       ///< certificates expiring sooner are a WARN
  /// Skip the MQTT CONNECT (the running agent is connected, which proves authentication).
  bool skip_mqtt = false;
  std::string mqtt_skip_reason;
};

/// Checks our client certificate and key files (readable, matching, validity).
std::vector<CheckResult> checkClientCertificate(const CloudSettings& cloud, int warn_days);

/// DNS, TCP, TLS and MQTT checks against cloud.url. Stops at the first failing step (the
/// later ones are reported as skipped). `client_id` is used for the MQTT probe.
std::vector<CheckResult> probeBroker(const CloudSettings& cloud, const std::string& client_id,
                                     const BrokerProbeOptions& options);

/// The name of an MQTT 5 CONNACK reason code ("not authorized").
std::string connackReasonName(int code);

}  // namespace psa::agent
