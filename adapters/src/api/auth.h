// Auth strategies of the API adapters (pms-interfaces.md §0.1, §3, §4, §6, §8, §9): each is a
// reusable AuthStrategy built from an adapter's `auth` config object. Secrets live in memory
// only as long as needed and never reach a log line or an error message.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api_client.h"
#include "psa/adapters/api/jwt.h"
#include "psa/store/json.h"
#include "url.h"

namespace psa::adapters::api {

/// Durable storage for rotating secrets (DrChrono refresh tokens): the adapter backs it with
/// the store's sealed watermark table, committed with fsync before save() returns.
struct SecretVault {
  std::function<Result<std::optional<std::string>>(const std::string& key)> load;
  std::function<Status(const std::string& key, const std::string& value)> save;
};

/// An access token and when to stop using it.
struct CachedToken {
  std::string access_token;
  std::chrono::steady_clock::time_point refresh_at{};
  bool valid(std::chrono::steady_clock::time_point now) const {
    return !access_token.empty() && now < refresh_at;
  }
};

/// Parses an OAuth token answer: access_token (required), expires_in (number or string),
/// refresh_token (optional). Errors: Errc::invalid_input naming the missing member.
struct TokenAnswer {
  std::string access_token;
  int64_t expires_in_s = 3600;
  std::string refresh_token;
  std::string scope;  ///< the granted scopes, "" when the server does not say
};
Result<TokenAnswer> parseTokenAnswer(std::string_view body);

/// When to refresh a token that lives `expires_in_s`: 60 s early, or at 80 % for short ones.
std::chrono::seconds refreshMargin(int64_t expires_in_s);

/// Everything a strategy needs to reach a token endpoint: an ApiClient without auth that has
/// the adapter's token-call limits.
struct AuthDeps {
  std::shared_ptr<ApiClient> token_client;
  ClockPtr clock;
  std::filesystem::path state_dir;  ///< resolves relative key/secret file paths
  SecretVault vault;
};

/// Builds the strategy an adapter's `auth` object describes. `token_url_fallback` is used when
/// the object has no token_url (FHIR: from .well-known/smart-configuration). Types:
/// "none", "oauth2-client-credentials", "smart-backend", "oauth2-refresh",
/// "nextgen", "unity", "kareo". Errors: Errc::invalid_argument / Errc::io with the reason
/// (a missing key file, an unreadable secret file, a key that does not fit `alg`).
Result<AuthStrategyPtr> makeAuthStrategy(const json::Value& auth, AuthDeps deps,
                                         const std::string& token_url_fallback,
                                         const std::string& api_base);

/// Reads `name` or `name_file` (relative to state_dir) from an auth object; "" when neither.
Result<std::string> secretFrom(const json::Value& auth, const std::string& name,
                               const std::filesystem::path& state_dir);

/// The credentials of a Unity (Allscripts) session: the token for MagicJson bodies.
class UnityAuth;
/// Kareo RequestHeader values.
struct KareoCredentials {
  std::string customer_key;
  std::string user;
  std::string password;
  std::string client_version = "pms-agent";
};

/// The Unity token of a strategy built for type "unity" (fetching one if needed), for the
/// MagicJson body builder. Errors as AuthStrategy::apply.
Result<std::string> unityToken(AuthStrategy& auth);
/// The Unity token currently held ("" when none; never fetches one).
std::string unityCachedToken(AuthStrategy& auth);
/// The Unity Appname of the strategy.
std::string unityAppname(AuthStrategy& auth);
/// Kareo credentials of a strategy built for type "kareo".
const KareoCredentials* kareoCredentials(AuthStrategy& auth);

}  // namespace psa::adapters::api
