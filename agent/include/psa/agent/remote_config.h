// The part of the configuration the cloud may set (the `config` object of a signed config
// document), and how it combines with the local file.
//
// The cloud may set:
//   - live (applied at once): `adapters` (replaces the whole list), `agent.log_level`,
//     `cloud.status_interval_s`, `policy.rules` and `policy.default_ssn_mask` (the field
//     policy; a change is audited as `policy.changed`);
//   - tuning values that take effect at the next start (reported as `pending_restart`):
//     `agent.log_max_bytes`, `agent.log_keep`, `store.max_bytes`, `store.retain_delivered_s`,
//     `store.dedupe_window_s`, `store.dedupe_max_entries`, `cloud.max_inflight`,
//     `cloud.keepalive_s`, `cloud.receipt_timeout_s`, `cloud.puback_timeout_s`.
// Everything else in the file is local: a document that tries to change any of it (agent id,
// tenant, state dir, trust anchors `cloud.ca_file` / `cloud.config_signing_key`, the client
// identity and broker URL, paths, control socket...) is refused as `forbidden`. A local value
// repeated unchanged is accepted and ignored, so the cloud may send back the whole effective
// config.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "psa/adapters/source.h"
#include "psa/agent/config.h"
#include "psa/agent/signed_document.h"
#include "psa/store/json.h"

namespace psa::agent {

/// Dotted paths of the values the cloud may set that apply at once (besides `adapters`).
const std::vector<std::string>& remoteLiveValues();
/// Dotted paths of the tuning values the cloud may set that apply at the next start.
const std::vector<std::string>& remoteRestartValues();

/// Outcome of checking a remote `config` object against the running configuration.
struct OverlayCheck {
  std::vector<PathError> schema;     ///< unknown keys, wrong types (paths start with "config")
  std::vector<PathError> forbidden;  ///< attempts to change local-only values
  /// The settable parts only (what is persisted and merged); valid when both lists are empty.
  json::Value overlay = json::Value::object();
  /// Restart-time tuning values this document changes (dotted paths).
  std::vector<std::string> pending_restart;
};

/// Checks `config` (the document's `config` member) against `running_doc` (Config::doc of the
/// running configuration, defaults filled in). Never throws.
OverlayCheck checkOverlay(const json::Value& config, const json::Value& running_doc);

/// `base_doc` (a local file's document) with `overlay` (settable parts only) applied.
json::Value mergeOverlay(const json::Value& base_doc, const json::Value& overlay);

/// Validates base_doc + overlay as a whole configuration (parseConfig). Issue paths are the
/// file's paths ("adapters[0].listen"); `source_file` is kept in the resulting Config.
ConfigLoad buildEffectiveConfig(const json::Value& base_doc, const json::Value& overlay,
                                const std::filesystem::path& source_file,
                                const adapters::SourceRegistry& registry);

/// Order-insensitive JSON equality for objects (arrays compare in order).
bool sameJson(const json::Value& a, const json::Value& b);

/// The values that differ between two local documents and that only a restart can apply
/// (everything except `adapters` and the live values), as dotted paths. Empty if a live reload
/// can apply `next` over `running`.
std::vector<std::string> restartOnlyChanges(const json::Value& running_doc,
                                            const json::Value& next_doc);

}  // namespace psa::agent
