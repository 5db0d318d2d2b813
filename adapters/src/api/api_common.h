// Pieces both API adapter types build from their config: TLS transport, limiters, clients and
// the auth strategy.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api_client.h"
#include "auth.h"
#include "psa/adapters/api/http.h"
#include "psa/adapters/source.h"
#include "psa/store/json.h"

namespace psa::adapters::api {

/// `[{"requests": N, "per_s": W, "fixed": bool, "name": "..."}]` -> rules (invalid items skipped;
/// the schema validated them).
std::vector<LimitRule> parseLimitRules(const json::Value* list);

/// Resolves a config path against the state dir.
std::filesystem::path resolvePath(const std::filesystem::path& state_dir, const std::string& p);

struct ClientSet {
  HttpTransportPtr transport;
  std::shared_ptr<ApiClient> api;    ///< data calls, with auth
  std::shared_ptr<ApiClient> token;  ///< token calls, no auth
  AuthStrategyPtr auth;
  TransportOptions transport_options;  ///< what `transport` was built with (for a fresh one)
  RequestLimiterPtr token_limiter;     ///< the token calls' limiter

  /// Aborts every request in flight (Source::interrupt); any thread.
  void cancelAll() const;
  /// Adds the data client's HTTP counters to a status row (Source::fillStatus).
  void addCounters(std::map<std::string, uint64_t>& counters) const;
};

struct ClientParams {
  std::string adapter;
  std::string vendor;
  std::string api_base;             ///< for discovery and session URLs
  std::string token_url_fallback;
  std::vector<LimitRule> api_limits;
  std::vector<LimitRule> token_limits;
  std::filesystem::path state_dir;
  ClockPtr clock;
  std::shared_ptr<StopSignal> stop;
  SecretVault vault;
  RetryPolicy retry;
};

/// Builds transport, limiters, clients and auth from an adapter config (`ca_file`,
/// `tls_verify`, `timeout_s`, `max_attempts`, `auth`). Errors: Errc::invalid_argument / io.
Result<ClientSet> buildClients(const json::Value& config, const ClientParams& params);

/// The clients `pms-agent check` probes an adapter's endpoint with: the adapter's own settings,
/// but 2 attempts, a 10 s timeout unless `timeout_s` is configured, the system clock, and no
/// vault (check never rotates a refresh token: that would need the store).
Result<ClientSet> buildCheckClients(const json::Value& config,
                                    const std::filesystem::path& state_dir,
                                    std::string token_url_fallback = {});

}  // namespace psa::adapters::api
