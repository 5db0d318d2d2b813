// `bad_package` on Linux with real .deb files built here by dpkg-deb: readPackageFacts reads a
// package's control fields, and checkPackage refuses another product, another architecture,
// another version than the command announced, and a file that is not a package at all.
#include <gtest/gtest.h>

#include "package_facts.h"
#include "test_support.h"
#include "upgrade_args.h"

namespace psa::agent::upgrade {
namespace {

std::filesystem::path buildDeb(const psa::test::TempDir& dir, const std::string& name,
                               const std::string& version, const std::string& arch) {
  const auto root = dir / (name + "-" + version + "-" + arch);
  std::filesystem::create_directories(root / "DEBIAN");
  psa::test::writeFile(root / "DEBIAN" / "control",
                       "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch +
                           "\nMaintainer: test <t@example.invalid>\nDescription: test package\n");
  std::filesystem::create_directories(root / "usr" / "bin");
  psa::test::writeFile(root / "usr" / "bin" / "placeholder", "#!/bin/sh\n");
  const auto deb = dir / (root.filename().string() + ".deb");
  const auto built = psa::test::runCommand(
      {"/usr/bin/dpkg-deb", "--build", "--root-owner-group", root.string(), deb.string()});
  EXPECT_EQ(built.exit_code, 0) << built.output;
  return deb;
}

Args announcing(const std::string& version) {
  Args a;
  a.version = version;
  return a;
}

TEST(UpgradePackage, ReadsADebsControlFields) {
  psa::test::TempDir dir;
  auto facts = readPackageFacts(buildDeb(dir, "pms-agent", "1.5.0", thisPackagePlatform()));
  ASSERT_TRUE(facts.ok()) << facts.error().message;
  EXPECT_EQ(facts->name, "pms-agent");
  EXPECT_EQ(facts->version, "1.5.0");
  EXPECT_EQ(facts->platform, thisPackagePlatform());
  EXPECT_FALSE(checkPackage(facts, announcing("1.5.0")).has_value());
}

TEST(UpgradePackage, RefusesAnotherProductPlatformOrVersionAndNonPackages) {
  psa::test::TempDir dir;
  const std::string other_arch = thisPackagePlatform() == "arm64" ? "amd64" : "arm64";
  const struct {
    std::filesystem::path file;
    const char* says;
  } cases[] = {
      {buildDeb(dir, "pms-agent", "1.5.0", other_arch), "built for"},
      {buildDeb(dir, "other-tool", "1.5.0", thisPackagePlatform()), "not \"pms-agent\""},
      {buildDeb(dir, "pms-agent", "1.4.9", thisPackagePlatform()), "holds version 1.4.9"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file.filename().string());
    const auto refused = checkPackage(readPackageFacts(c.file), announcing("1.5.0"));
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->reason, kBadPackage);
    EXPECT_NE(refused->message.find(c.says), std::string::npos) << refused->message;
  }
  psa::test::writeFile(dir / "not-a.deb", "MZ this is not a Debian package");
  const auto junk = checkPackage(readPackageFacts(dir / "not-a.deb"), announcing("1.5.0"));
  ASSERT_TRUE(junk.has_value());
  EXPECT_EQ(junk->reason, kBadPackage);
  EXPECT_NE(junk->message.find("not a Debian package"), std::string::npos);
  EXPECT_EQ(checkPackage(readPackageFacts(dir / "missing.deb"), announcing("1.5.0"))->reason,
            kBadPackage);
}

}  // namespace
}  // namespace psa::agent::upgrade
