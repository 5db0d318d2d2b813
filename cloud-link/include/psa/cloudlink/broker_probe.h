// The broker diagnostics of `pms-agent check`, each step with a short timeout: DNS, TCP, TLS
// handshake (chain, host name, expiry; our client certificate) and MQTT 5 authentication.
// The TLS step uses the link's own client context (tls_context.h), so `check` and the link
// can never disagree about a certificate. No libmosquitto: one blocking-with-deadline
// connection made by hand, so every failure can be named precisely. Runs in the CLI process;
// never disturbs the agent's own MQTT session (it connects with a different client id and a
// clean start). Blocking; call from one thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "psa/cloudlink/cloud_link.h"

namespace psa::cloudlink {

/// One line of the check: "broker tls" FAIL "certificate verify failed: … ▸ fix".
struct ProbeStep {
  enum class Level { ok, warn, fail };
  Level level = Level::ok;
  std::string name;
  std::string text;
};

struct ProbeOptions {
  std::chrono::milliseconds timeout{5000};  ///< per step
  int warn_days = 30;                       ///< certificates expiring sooner are a WARN
  std::string client_id;                    ///< for the MQTT CONNECT (not the agent's own)
  /// Skip the MQTT CONNECT (the running agent is connected, which proves authentication).
  bool skip_mqtt = false;
  std::string mqtt_skip_reason;
};

/// Our client certificate and key files (readable, matching, validity): one "client cert" step.
ProbeStep checkClientCertificate(const CloudLinkOptions& link, int warn_days);

/// DNS, TCP, TLS and MQTT steps against link.url with link's CA, certificate and key. Stops at
/// the first failing step (the later ones are reported as skipped).
std::vector<ProbeStep> probeBroker(const CloudLinkOptions& link, const ProbeOptions& options);

/// The name of an MQTT 5 CONNACK reason code ("not authorized").
std::string connackReasonName(int code);

}  // namespace psa::cloudlink
