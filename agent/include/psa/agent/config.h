// The agent's configuration file (design.md "Contract: configuration"): schema, loading and
// validation with every problem reported at once, each naming its JSON path and line.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "psa/adapters/policy/field_policy.h"
#include "psa/adapters/source.h"
#include "psa/agent/http_settings.h"
#include "psa/agent/platform_defaults.h"
#include "psa/store/json.h"
#include "psa/store/log.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"
#include "psa/store/sqlite_store.h"

namespace psa::agent {

/// The cloud link settings (`cloud` section).
struct CloudSettings {
  bool configured = false;  ///< false when the file has no `cloud` section (queue locally only)
  std::string url;          ///< mqtts://host:port (the first of `urls` when that is given)
  std::vector<std::string> urls;  ///< cloud.urls: the endpoints of a broker cluster; else empty
  std::string host;
  int port = 8883;
  std::filesystem::path ca_file;
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::string username;                 ///< MQTT user name; empty: none (or from the cert)
  std::filesystem::path password_file;  ///< MQTT password (first line); empty: none
  bool username_from_certificate = false;
  int max_inflight = 100;
  std::string confirm = "broker";  ///< "broker" or "receipt"
  std::vector<std::filesystem::path> config_signing_keys;
  /// Release keys (upgrade packages): trust anchors like config_signing_keys, local only.
  std::vector<std::filesystem::path> release_keys;
  int keepalive_s = 30;
  int session_expiry_s = 7 * 24 * 3600;
  int receipt_timeout_s = 120;
  int puback_timeout_s = 30;
  int status_interval_s = 300;
  int upgrade_health_timeout_s = 120;  ///< the upgrade helper's health check (upgrade_helper.h)
  int upgrade_health_settle_s = 10;
};

/// A fully validated configuration with defaults applied and relative paths resolved against
/// `agent.state_dir`. Immutable once built; shared as shared_ptr<const Config>.
struct Config {
  std::filesystem::path source_file;  ///< the file it came from
  json::Value doc;                    ///< the document with defaults filled in

  std::string agent_id;
  std::string tenant;
  std::filesystem::path state_dir;
  log::Level log_level = log::Level::info;
  std::filesystem::path log_file;  ///< empty: stderr only
  uint64_t log_max_bytes = 10u << 20;
  int log_keep = 5;

  store::StoreOptions store;
  CloudSettings cloud;
  std::filesystem::path control_socket;
  /// The status page and /metrics; absent: nothing of it is loaded.
  std::optional<HttpSettings> http;
  /// One validated object per adapter (defaults filled in), in file order.
  std::vector<json::Value> adapters;
  /// The minimum-necessary field policy (`policy` section; absent: the default SSN mask).
  adapters::policy::PolicySettings policy;

  /// Resolves a path from the config: absolute stays, relative joins state_dir.
  std::filesystem::path resolve(const std::string& path) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

/// Outcome of loading: a config, or every problem found.
struct ConfigLoad {
  ConfigPtr config;                   ///< null if there are issues
  std::vector<schema::Issue> issues;  ///< all problems, in document order
  std::string fatal;                  ///< unreadable file / not JSON (then issues may hold the parse error)
};

/// The schema of the whole file (top-level sections); adapter objects are validated against
/// the schema their `type` registers in `registry`.
const schema::ObjectSchema& configSchema();

/// Parses and validates a config document. Never throws.
ConfigLoad parseConfig(std::string_view text, const std::filesystem::path& source_file,
                       const adapters::SourceRegistry& registry);

/// Reads and validates a config file.
ConfigLoad loadConfig(const std::filesystem::path& file, const adapters::SourceRegistry& registry);

/// The effective config for display, secrets masked (`pms-agent config show`).
json::Value maskedConfig(const Config& config, const adapters::SourceRegistry& registry);

/// The config path from --config, else $PMS_AGENT_CONFIG, else platformDefaults().config_file.
std::filesystem::path configPath(const std::string& from_option);

}  // namespace psa::agent
