#include "upgrade_args.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "psa/store/clock.h"
#include "psa/store/digest.h"

namespace psa::agent::upgrade {

namespace {

constexpr int64_t kDefaultDeadlineMs = 24LL * 3600 * 1000;
// Verification holds the package in memory once (Ed25519 signs the whole message).
constexpr uint64_t kMaxPackageBytes = 256ull << 20;
constexpr uint64_t kInstallMarginBytes = 64ull << 20;

bool isLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "HH:MM" -> minutes after midnight.
std::optional<int> parseClock(std::string_view s) {
  if (s.size() != 5 || s[2] != ':') {
    return std::nullopt;
  }
  int h = 0;
  int m = 0;
  if (std::from_chars(s.data(), s.data() + 2, h).ptr != s.data() + 2 ||
      std::from_chars(s.data() + 3, s.data() + 5, m).ptr != s.data() + 5 || h > 23 || m > 59) {
    return std::nullopt;
  }
  return h * 60 + m;
}

// The numeric parts and the pre-release suffix of a version.
struct Parts {
  std::vector<uint64_t> numbers;
  std::string suffix;
};

Parts split(std::string_view v) {
  Parts p;
  const size_t dash = v.find('-');
  if (dash != std::string_view::npos) {
    p.suffix = std::string(v.substr(dash + 1));
    v = v.substr(0, dash);
  }
  while (!v.empty()) {
    const size_t dot = v.find('.');
    const std::string_view part = v.substr(0, dot);
    uint64_t n = 0;
    std::from_chars(part.data(), part.data() + part.size(), n);
    p.numbers.push_back(n);
    v = dot == std::string_view::npos ? std::string_view() : v.substr(dot + 1);
  }
  return p;
}

std::string fmtBytes(uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

bool Window::contains(int minute) const {
  if (from_min == to_min) {
    return true;
  }
  return from_min < to_min ? minute >= from_min && minute < to_min
                           : minute >= from_min || minute < to_min;
}

bool isVersion(std::string_view v) {
  const size_t dash = v.find('-');
  const std::string_view core = v.substr(0, dash);
  if (core.empty() || core.front() == '.' || core.back() == '.' || v.size() > 64) {
    return false;
  }
  for (size_t i = 0; i < core.size(); ++i) {
    const char c = core[i];
    if (!(std::isdigit(static_cast<unsigned char>(c)) || (c == '.' && core[i - 1] != '.'))) {
      return false;
    }
  }
  if (dash == std::string_view::npos) {
    return true;
  }
  const std::string_view suffix = v.substr(dash + 1);
  return !suffix.empty() && std::all_of(suffix.begin(), suffix.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.';
  });
}

int compareVersions(std::string_view a, std::string_view b) {
  const Parts pa = split(a);
  const Parts pb = split(b);
  const size_t n = std::max(pa.numbers.size(), pb.numbers.size());
  for (size_t i = 0; i < n; ++i) {
    const uint64_t x = i < pa.numbers.size() ? pa.numbers[i] : 0;
    const uint64_t y = i < pb.numbers.size() ? pb.numbers[i] : 0;
    if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  if (pa.suffix == pb.suffix) {
    return 0;
  }
  if (pa.suffix.empty() || pb.suffix.empty()) {
    return pa.suffix.empty() ? 1 : -1;  // a release sorts after its pre-releases
  }
  return pa.suffix < pb.suffix ? -1 : 1;
}

std::variant<Args, Rejection> parseArgs(const json::Value& args, int64_t issued_at_ms) {
  std::vector<PathError> errors;
  auto bad = [&errors](std::string path, std::string message) {
    errors.push_back(PathError{"args." + std::move(path), std::move(message)});
  };
  Args out;
  if (!args.isObject()) {
    return Rejection{RejectReason::bad_args, "args must be an object", {}};
  }
  static const std::vector<std::string_view> kKnown = {
      "version",  "sha256",         "size",
      "sig",      "release_key_id", "min_agent_version",
      "deadline", "window",         "allow_downgrade",
      "url"};
  for (const auto& [key, value] : args.members()) {
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      bad(key, "unknown argument");
    }
  }
  auto text = [&](const char* key, bool required) -> std::string {
    const json::Value* v = args.find(key);
    if (v == nullptr) {
      if (required) {
        bad(key, "required");
      }
      return {};
    }
    if (!v->isString()) {
      bad(key, "expected a string");
      return {};
    }
    return v->asString();
  };
  out.version = text("version", true);
  if (!out.version.empty() && !isVersion(out.version)) {
    bad("version", "not a version (digits and dots, optional -suffix)");
  }
  out.sha256 = text("sha256", true);
  if (!out.sha256.empty() && (out.sha256.size() != 64 || !isLowerHex(out.sha256))) {
    bad("sha256", "expected 64 lower-case hex digits");
  }
  if (const json::Value* size = args.find("size"); size == nullptr) {
    bad("size", "required");
  } else if (!size->isInteger() || size->asInt() <= 0 ||
             static_cast<uint64_t>(size->asInt()) > kMaxPackageBytes) {
    bad("size", "expected a byte count between 1 and " + std::to_string(kMaxPackageBytes));
  } else {
    out.size = static_cast<uint64_t>(size->asInt());
  }
  if (const std::string sig = text("sig", true); !sig.empty()) {
    auto raw = base64Decode(sig);
    if (!raw || raw->size() != 64) {
      bad("sig", "expected the base64 of a 64-byte Ed25519 signature");
    } else {
      out.sig = std::move(*raw);
    }
  }
  out.release_key_id = text("release_key_id", true);
  if (!out.release_key_id.empty() &&
      (out.release_key_id.size() != 16 || !isLowerHex(out.release_key_id))) {
    bad("release_key_id", "expected a key id (16 lower-case hex digits)");
  }
  out.min_agent_version = text("min_agent_version", false);
  if (!out.min_agent_version.empty() && !isVersion(out.min_agent_version)) {
    bad("min_agent_version", "not a version");
  }
  out.deadline_ms = issued_at_ms + kDefaultDeadlineMs;
  if (const std::string deadline = text("deadline", false); !deadline.empty()) {
    if (!parseRfc3339(deadline, out.deadline_ms)) {
      bad("deadline", "expected an RFC 3339 UTC time");
    }
  }
  if (const json::Value* w = args.find("window"); w != nullptr) {
    if (!w->isObject()) {
      bad("window", "expected {\"from\":\"HH:MM\",\"to\":\"HH:MM\",\"tz\":\"local\"|\"UTC\"}");
    } else {
      Window window;
      const auto from = parseClock(w->getString("from"));
      const auto to = parseClock(w->getString("to"));
      const std::string tz = w->getString("tz", "local");
      if (!from) {
        bad("window.from", "expected HH:MM");
      }
      if (!to) {
        bad("window.to", "expected HH:MM");
      }
      if (tz != "local" && tz != "UTC") {
        bad("window.tz", "expected \"local\" or \"UTC\"");
      }
      for (const auto& [key, value] : w->members()) {
        if (key != "from" && key != "to" && key != "tz") {
          bad("window." + key, "unknown key");
        }
      }
      if (from && to) {
        window.from_min = *from;
        window.to_min = *to;
        window.utc = tz == "UTC";
        out.window = window;
      }
    }
  }
  if (const json::Value* d = args.find("allow_downgrade"); d != nullptr) {
    if (!d->isBool()) {
      bad("allow_downgrade", "expected true or false");
    } else {
      out.allow_downgrade = d->asBool();
    }
  }
  if (const json::Value* url = args.find("url"); url != nullptr && !url->isString()) {
    bad("url", "expected a string");
  }
  if (!errors.empty()) {
    std::string message =
        "invalid upgrade arguments: " + errors.front().path + ": " + errors.front().message;
    return Rejection{RejectReason::bad_args, std::move(message), std::move(errors)};
  }
  return out;
}

uint64_t neededBytes(uint64_t package_size) { return 2 * package_size + kInstallMarginBytes; }

std::optional<Refusal> checkBeforeDownload(const Args& args, const Host& host) {
  if (host.now_ms > args.deadline_ms) {
    return Refusal{std::string(kExpired),
                   "the upgrade's deadline " + formatRfc3339(args.deadline_ms) + " has passed"};
  }
  const int order = compareVersions(args.version, host.running_version);
  if (order < 0 && !args.allow_downgrade) {
    return Refusal{std::string(kDowngrade),
                   args.version + " is older than the running " + host.running_version +
                       " (a signed command with allow_downgrade may go back)"};
  }
  if (!args.min_agent_version.empty() &&
      compareVersions(host.running_version, args.min_agent_version) < 0) {
    return Refusal{std::string(kTooOld),
                   "the running " + host.running_version + " cannot upgrade to " + args.version +
                       " directly: it needs " + args.min_agent_version + " or newer first"};
  }
  if (args.window) {
    const int minute = args.window->utc ? host.utc_minute_of_day : host.local_minute_of_day;
    if (!args.window->contains(minute)) {
      return Refusal{std::string(kOutsideWindow),
                     "now is outside the upgrade window (minute " + std::to_string(minute) +
                         " of the day, " + (args.window->utc ? "UTC" : "local time") + ")"};
    }
  }
  if (host.free_bytes < neededBytes(args.size)) {
    return Refusal{std::string(kDiskSpace),
                   "the upgrade needs " + fmtBytes(neededBytes(args.size)) + " free beside the " +
                       "queue, the state directory's file system has " + fmtBytes(host.free_bytes)};
  }
  return std::nullopt;
}

std::optional<Refusal> verifyPackage(std::string_view package, const Args& args,
                                     const SigningKeys& release_keys,
                                     const SigningKeys& config_keys) {
  if (package.size() != args.size) {
    return Refusal{std::string(kSha256Mismatch),
                   "the package has " + std::to_string(package.size()) + " bytes, the command " +
                       "announced " + std::to_string(args.size) + " (truncated or wrong chunks)"};
  }
  if (sha256Hex(package) != args.sha256) {
    return Refusal{std::string(kSha256Mismatch),
                   "the package's SHA-256 is not the one the command announced"};
  }
  if (!release_keys.has(args.release_key_id)) {
    if (config_keys.has(args.release_key_id)) {
      return Refusal{std::string(kBadSignature),
                     "key " + args.release_key_id +
                         " is a config-signing key, not a release key (cloud.release_keys)"};
    }
    return Refusal{std::string(kBadSignature),
                   "key " + args.release_key_id + " is not one of this agent's release keys" +
                       (release_keys.empty() ? " (cloud.release_keys is not configured)" : "")};
  }
  if (!release_keys.verify(args.release_key_id, package, args.sig)) {
    return Refusal{
        std::string(kBadSignature),
        "the package's signature does not verify with release key " + args.release_key_id};
  }
  return std::nullopt;
}

std::optional<Refusal> checkPackage(const Result<PackageFacts>& facts, const Args& args) {
  const std::string reason(kBadPackage);
  if (!facts) {
    return Refusal{reason, facts.error().message};
  }
  if (facts->name != thisPackageName()) {
    return Refusal{reason, "the package is \"" + facts->name.substr(0, 80) + "\", not \"" +
                               thisPackageName() + "\""};
  }
  if (facts->platform != thisPackagePlatform()) {
    return Refusal{reason, "the package is built for " + facts->platform.substr(0, 40) +
                               ", this agent runs on " + thisPackagePlatform()};
  }
  if (facts->version != args.version) {
    return Refusal{reason, "the package holds version " + facts->version.substr(0, 40) +
                               ", the command announced " + args.version};
  }
  return std::nullopt;
}

}  // namespace psa::agent::upgrade
