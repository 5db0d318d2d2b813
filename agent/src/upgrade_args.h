// The `upgrade` command's arguments (design.md "Upgrade") and the checks that come before any
// download, in the contract's order: `downgrade`, `too_old`, `outside_window`, `disk_space`.
// Outside input: every problem is a reason and a sentence, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "package_facts.h"
#include "psa/agent/signed_document.h"
#include "psa/store/json.h"

namespace psa::agent::upgrade {

/// A local or UTC time-of-day window, minutes after midnight; `to` < `from` crosses midnight.
struct Window {
  int from_min = 0;
  int to_min = 0;
  bool utc = false;  ///< "tz": "UTC"; default "local"
  bool contains(int minute_of_day) const;
};

struct Args {
  std::string version;            ///< the package's version ("1.4.2")
  std::string sha256;             ///< lower-case hex of the package bytes
  uint64_t size = 0;              ///< package bytes
  std::string sig;                ///< raw 64-byte Ed25519 signature of the package bytes
  std::string release_key_id;     ///< fingerprint of the release key (signed_document.h)
  std::string min_agent_version;  ///< empty: any running version may upgrade
  int64_t deadline_ms = 0;        ///< default: issued_at + 24 h
  std::optional<Window> window;   ///< absent: any time
  bool allow_downgrade = false;
};

/// Parses and checks the command's `args` object. Errors are path errors ("args.sha256: ...")
/// under RejectReason::bad_args.
std::variant<Args, Rejection> parseArgs(const json::Value& args, int64_t issued_at_ms);

/// Orders dotted versions numerically ("1.10.0" > "1.9.3"); a pre-release suffix
/// ("1.4.0-rc1") sorts before its release. Returns <0, 0 or >0.
int compareVersions(std::string_view a, std::string_view b);

/// True for "1", "1.4", "1.4.2", "1.4.2-rc1" (digits and dots, optional -suffix of [0-9A-Za-z.]).
bool isVersion(std::string_view v);

/// The reasons of the contract (P/cmd/result `reason`).
inline constexpr std::string_view kDowngrade = "downgrade";
inline constexpr std::string_view kTooOld = "too_old";
inline constexpr std::string_view kOutsideWindow = "outside_window";
inline constexpr std::string_view kDiskSpace = "disk_space";
inline constexpr std::string_view kExpired = "expired";
inline constexpr std::string_view kSha256Mismatch = "sha256_mismatch";
inline constexpr std::string_view kBadSignature = "bad_signature";
inline constexpr std::string_view kBadPackage = "bad_package";

struct Refusal {
  std::string reason;   ///< one of the constants above
  std::string message;  ///< for people: what and what would fix it
};

/// What the pre-download checks need to know about this agent and host.
struct Host {
  std::string running_version;
  int64_t now_ms = 0;
  int local_minute_of_day = 0;  ///< now, in the host's time zone
  int utc_minute_of_day = 0;
  uint64_t free_bytes = 0;  ///< on the file system of the state directory
};

/// Bytes the upgrade needs free beside the store: the download, the verified copy the helper
/// installs from, and a margin for the package manager.
uint64_t neededBytes(uint64_t package_size);

/// The checks before any download, in the contract's order; nullopt when the upgrade may go on.
/// A deadline already past is `expired`.
std::optional<Refusal> checkBeforeDownload(const Args& args, const Host& host);

/// The checks of the downloaded bytes, in the contract's order: size and SHA-256 against the
/// command (`sha256_mismatch`), then the detached signature by a release key
/// (`bad_signature`, also when `release_key_id` names a config-signing key: a stolen config
/// key must not ship code). nullopt when the package is the one the cloud signed.
std::optional<Refusal> verifyPackage(std::string_view package, const Args& args,
                                     const SigningKeys& release_keys,
                                     const SigningKeys& config_keys);

/// The last check before install (`bad_package`): `facts` (readPackageFacts of the verified
/// file) must name this product, this OS's package platform and the announced version.
std::optional<Refusal> checkPackage(const Result<PackageFacts>& facts, const Args& args);

}  // namespace psa::agent::upgrade
