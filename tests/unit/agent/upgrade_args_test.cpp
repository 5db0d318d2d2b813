// The upgrade command's arguments and the checks before and after the download
// (agent/src/upgrade_args.h): strict parsing with a path per problem, the contract's order of
// refusals, version order, windows across midnight, and the package verification with real
// Ed25519 keys (a config-signing key is never a release key). Also: cloud.release_keys is a
// local trust anchor the cloud cannot change.
#include "upgrade_args.h"

#include <gtest/gtest.h>

#include "config_cloud_support.h"
#include "psa/agent/remote_config.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"

namespace psa::agent::upgrade {
namespace {

constexpr int64_t kIssued = 1'796'601'600'000;  // 2026-12-07T00:00:00Z

struct Signed {
  std::string package = std::string(4096, 'p') + "package bytes";
  SigningKey release = std::move(SigningKey::generate()).value();
  SigningKey config = std::move(SigningKey::generate()).value();
  SigningKeys release_keys;
  SigningKeys config_keys;
  Signed() {
    EXPECT_TRUE(release_keys.addPem(release.publicPem()).ok());
    EXPECT_TRUE(config_keys.addPem(config.publicPem()).ok());
  }
  json::Value argsBy(const SigningKey& key, std::string_view bytes) const {
    json::Value a = json::Value::object();
    a.set("version", json::Value::string("1.5.0"));
    a.set("sha256", json::Value::string(sha256Hex(bytes)));
    a.set("size", json::Value::integer(static_cast<int64_t>(bytes.size())));
    a.set("sig", json::Value::string(base64Encode(key.sign(bytes))));
    a.set("release_key_id", json::Value::string(key.keyId()));
    return a;
  }
};

Args parsed(const json::Value& a) {
  auto r = parseArgs(a, kIssued);
  EXPECT_TRUE(std::holds_alternative<Args>(r))
      << (std::holds_alternative<Rejection>(r) ? std::get<Rejection>(r).message : "");
  return std::holds_alternative<Args>(r) ? std::get<Args>(r) : Args{};
}

Host host() {
  Host h;
  h.running_version = "1.4.2";
  h.now_ms = kIssued + 3'600'000;
  h.local_minute_of_day = 3 * 60;
  h.utc_minute_of_day = 3 * 60;
  h.free_bytes = 10ull << 30;
  return h;
}

TEST(UpgradeArgs, ParsesTheContractsArgumentsWithDefaults) {
  Signed s;
  const Args a = parsed(s.argsBy(s.release, s.package));
  EXPECT_EQ(a.version, "1.5.0");
  EXPECT_EQ(a.size, s.package.size());
  EXPECT_EQ(a.sig.size(), 64u);
  EXPECT_EQ(a.release_key_id, s.release.keyId());
  EXPECT_EQ(a.deadline_ms, kIssued + 24 * 3'600'000LL);  // 24 h after issued_at
  EXPECT_FALSE(a.window.has_value());
  EXPECT_FALSE(a.allow_downgrade);
  EXPECT_TRUE(a.min_agent_version.empty());

  json::Value full = s.argsBy(s.release, s.package);
  full.set("min_agent_version", json::Value::string("1.2.0"));
  full.set("deadline", json::Value::string("2026-12-08T06:00:00Z"));
  auto window = *json::parse(R"({"from":"22:30","to":"02:00","tz":"UTC"})");
  full.set("window", window);
  full.set("allow_downgrade", json::Value::boolean(true));
  const Args b = parsed(full);
  EXPECT_EQ(b.min_agent_version, "1.2.0");
  EXPECT_EQ(formatRfc3339(b.deadline_ms), "2026-12-08T06:00:00.000Z");
  ASSERT_TRUE(b.window.has_value());
  EXPECT_EQ(b.window->from_min, 22 * 60 + 30);
  EXPECT_EQ(b.window->to_min, 120);
  EXPECT_TRUE(b.window->utc);
  EXPECT_TRUE(b.allow_downgrade);
}

TEST(UpgradeArgs, EveryBadArgumentIsRefusedWithItsPath) {
  Signed s;
  const struct {
    const char* key;
    const char* value;  // JSON; nullptr removes the key
    const char* path;
  } cases[] = {
      {"version", nullptr, "args.version"},
      {"version", R"("one")", "args.version"},
      {"version", R"("1..2")", "args.version"},
      {"sha256", R"("ABC")", "args.sha256"},
      {"size", "0", "args.size"},
      {"size", R"("12")", "args.size"},
      {"size", "1073741824", "args.size"},
      {"sig", R"("not base64!")", "args.sig"},
      {"sig", R"("AAAA")", "args.sig"},
      {"release_key_id", R"("xyz")", "args.release_key_id"},
      {"deadline", R"("tomorrow")", "args.deadline"},
      {"window", R"({"from":"25:00","to":"05:00"})", "args.window.from"},
      {"window", R"({"from":"02:00","to":"05:00","tz":"Mars"})", "args.window.tz"},
      {"window", R"("02:00-05:00")", "args.window"},
      {"allow_downgrade", R"("yes")", "args.allow_downgrade"},
      {"colour", R"("blue")", "args.colour"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.key) + "=" + (c.value ? c.value : "(absent)"));
    json::Value a = s.argsBy(s.release, s.package);
    if (c.value == nullptr) {
      json::Value without = json::Value::object();
      for (const auto& [k, v] : a.members()) {
        if (k != c.key) {
          without.set(k, v);
        }
      }
      a = without;
    } else {
      a.set(c.key, *json::parse(c.value));
    }
    auto r = parseArgs(a, kIssued);
    ASSERT_TRUE(std::holds_alternative<Rejection>(r));
    const Rejection& rej = std::get<Rejection>(r);
    EXPECT_EQ(rej.reason, RejectReason::bad_args);
    ASSERT_FALSE(rej.errors.empty());
    EXPECT_EQ(rej.errors[0].path, c.path) << rej.message;
  }
  EXPECT_TRUE(std::holds_alternative<Rejection>(parseArgs(json::Value::array(), kIssued)));
}

TEST(UpgradeArgs, VersionsOrderNumericallyAndPreReleasesFirst) {
  EXPECT_LT(compareVersions("1.9.3", "1.10.0"), 0);
  EXPECT_GT(compareVersions("2.0", "1.99.99"), 0);
  EXPECT_EQ(compareVersions("1.4", "1.4.0"), 0);
  EXPECT_LT(compareVersions("1.4.0-rc1", "1.4.0"), 0);
  EXPECT_LT(compareVersions("1.4.0-rc1", "1.4.0-rc2"), 0);
  EXPECT_GT(compareVersions("1.4.1-rc1", "1.4.0"), 0);
  EXPECT_TRUE(isVersion("0.1.0"));
  EXPECT_TRUE(isVersion("1.4.2-rc.1"));
  EXPECT_FALSE(isVersion(""));
  EXPECT_FALSE(isVersion("1.4."));
  EXPECT_FALSE(isVersion("v1.4"));
  EXPECT_FALSE(isVersion("1.4-"));
}

TEST(UpgradeArgs, ChecksBeforeDownloadComeInTheContractsOrder) {
  Signed s;
  json::Value a = s.argsBy(s.release, s.package);
  EXPECT_FALSE(checkBeforeDownload(parsed(a), host()).has_value());

  // Older, too old to upgrade from, outside its window and too big: downgrade wins.
  a.set("version", json::Value::string("1.4.1"));
  a.set("min_agent_version", json::Value::string("1.4.5"));
  a.set("window", *json::parse(R"({"from":"04:00","to":"05:00"})"));
  a.set("size", json::Value::integer(200 << 20));
  Host h = host();
  h.free_bytes = 100 << 20;
  EXPECT_EQ(checkBeforeDownload(parsed(a), h)->reason, kDowngrade);
  a.set("allow_downgrade", json::Value::boolean(true));
  EXPECT_EQ(checkBeforeDownload(parsed(a), h)->reason, kTooOld);
  a.set("min_agent_version", json::Value::string("1.4.2"));
  EXPECT_EQ(checkBeforeDownload(parsed(a), h)->reason, kOutsideWindow);
  a.set("window", *json::parse(R"({"from":"02:00","to":"05:00","tz":"local"})"));
  const auto disk = checkBeforeDownload(parsed(a), h);
  EXPECT_EQ(disk->reason, kDiskSpace);
  EXPECT_NE(disk->message.find("464 MiB"), std::string::npos) << disk->message;
  h.free_bytes = neededBytes(200 << 20);
  EXPECT_FALSE(checkBeforeDownload(parsed(a), h).has_value());

  h.now_ms = kIssued + 25 * 3'600'000LL;  // past the default deadline
  EXPECT_EQ(checkBeforeDownload(parsed(a), h)->reason, kExpired);
}

TEST(UpgradeArgs, WindowsMayCrossMidnightAndUseUtc) {
  const Window night{22 * 60, 2 * 60, false};
  EXPECT_TRUE(night.contains(23 * 60));
  EXPECT_TRUE(night.contains(60));
  EXPECT_FALSE(night.contains(2 * 60));
  EXPECT_FALSE(night.contains(12 * 60));
  const Window early{2 * 60, 5 * 60, false};
  EXPECT_TRUE(early.contains(2 * 60));
  EXPECT_FALSE(early.contains(5 * 60));

  Signed s;
  json::Value a = s.argsBy(s.release, s.package);
  a.set("window", *json::parse(R"({"from":"02:00","to":"05:00","tz":"UTC"})"));
  Host h = host();
  h.local_minute_of_day = 12 * 60;  // local noon, 03:00 UTC
  EXPECT_FALSE(checkBeforeDownload(parsed(a), h).has_value());
  h.utc_minute_of_day = 6 * 60;
  EXPECT_EQ(checkBeforeDownload(parsed(a), h)->reason, kOutsideWindow);
}

TEST(UpgradeArgs, PackageVerificationChecksSizeHashThenTheReleaseKeysSignature) {
  Signed s;
  const Args good = parsed(s.argsBy(s.release, s.package));
  EXPECT_FALSE(verifyPackage(s.package, good, s.release_keys, s.config_keys).has_value());

  std::string flipped = s.package;
  flipped[100] ^= 1;
  EXPECT_EQ(verifyPackage(flipped, good, s.release_keys, s.config_keys)->reason, kSha256Mismatch);
  const auto truncated = verifyPackage(std::string_view(s.package).substr(0, 4000), good,
                                       s.release_keys, s.config_keys);
  EXPECT_EQ(truncated->reason, kSha256Mismatch);
  EXPECT_NE(truncated->message.find("truncated"), std::string::npos);

  // Signed by the config-signing key: never a release key, even though the signature is valid.
  const Args by_config = parsed(s.argsBy(s.config, s.package));
  const auto refused = verifyPackage(s.package, by_config, s.release_keys, s.config_keys);
  EXPECT_EQ(refused->reason, kBadSignature);
  EXPECT_NE(refused->message.find("config-signing key, not a release key"), std::string::npos);

  // The release key's id with another key's signature.
  json::Value forged = s.argsBy(s.config, s.package);
  forged.set("release_key_id", json::Value::string(s.release.keyId()));
  EXPECT_EQ(verifyPackage(s.package, parsed(forged), s.release_keys, s.config_keys)->reason,
            kBadSignature);

  // No release keys configured at all.
  const auto none = verifyPackage(s.package, good, SigningKeys(), s.config_keys);
  EXPECT_EQ(none->reason, kBadSignature);
  EXPECT_NE(none->message.find("cloud.release_keys is not configured"), std::string::npos);
}

TEST(UpgradeArgs, ReleaseKeysAreALocalTrustAnchor) {
  const ConfigLoad load =
      agent::test::loadCloudSection(R"("release_keys":["release-1.pem","release-2.pem"])", true);
  ASSERT_TRUE(load.config) << agent::test::problems(load);
  ASSERT_EQ(load.config->cloud.release_keys.size(), 2u);
  EXPECT_EQ(load.config->cloud.release_keys[0], load.config->resolve("release-1.pem"));
  EXPECT_NE(agent::test::problems(agent::test::loadCloudSection(R"("release_keys":[])", true))
                .find("cloud.release_keys"),
            std::string::npos);

  auto overlay = json::parse(R"({"cloud":{"release_keys":"/tmp/attacker.pem"}})");
  const OverlayCheck check = checkOverlay(*overlay, load.config->doc);
  ASSERT_EQ(check.forbidden.size(), 1u);
  EXPECT_EQ(check.forbidden[0].message, "trust anchors cannot be changed remotely");
}

}  // namespace
}  // namespace psa::agent::upgrade
