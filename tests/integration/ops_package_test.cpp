// The .deb: built with CPack from this build tree, its contents and control data checked,
// lintian without errors. Installing, removing and purging it as a technician does (apt-get)
// is tests/install/run.sh (ctest: install.deb).
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kBuildDir = fs::path(PSA_BIN_DIR).parent_path();

bool have(const char* tool) { return ::access(tool, X_OK) == 0; }

struct Owner {
  std::string user, group;
  unsigned mode = 0;
};

Owner ownerOf(const fs::path& p) {
  struct stat st {};
  Owner o;
  if (::stat(p.c_str(), &st) != 0) {
    return o;
  }
  o.mode = st.st_mode & 07777;
  if (passwd* pw = ::getpwuid(st.st_uid)) {
    o.user = pw->pw_name;
  }
  if (group* gr = ::getgrgid(st.st_gid)) {
    o.group = gr->gr_name;
  }
  return o;
}

std::string buildPackage(const fs::path& out) {
  auto r = runCommand({"cpack", "-G", "DEB", "--config", (kBuildDir / "CPackConfig.cmake").string(),
                       "-B", out.string()},
                      5min);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const auto& e : fs::directory_iterator(out)) {
    if (e.path().extension() == ".deb") {
      return e.path().string();
    }
  }
  return {};
}

TEST(OpsPackage, BuildsWithTheExpectedContentsAndNoLintianErrors) {
  if (!have("/usr/bin/cpack") || !have("/usr/bin/dpkg-deb")) {
    GTEST_SKIP() << "needs cpack and dpkg-deb (packaging/install-deps.sh installs them)";
  }
  TempDir tmp("psa-deb");
  const std::string deb = buildPackage(tmp / "out");
  ASSERT_FALSE(deb.empty());
  EXPECT_EQ(fs::path(deb).filename().string().rfind("pms-agent_0.1.0_", 0), 0u) << deb;

  const std::string contents = runCommand({"dpkg-deb", "-c", deb}).output;
  for (const char* f :
       {"./usr/bin/pms-agent", "./lib/systemd/system/pms-agent.service", "./etc/pms-agent/agent.json",
        "./lib/systemd/system/pms-agent-upgrade.service",
        "./lib/systemd/system/pms-agent-upgrade.path", "./usr/lib/pms-agent/upgrade-helper",
        "./usr/share/man/man1/pms-agent.1.gz", "./usr/share/doc/pms-agent/copyright",
        "./usr/share/doc/pms-agent/changelog.gz", "./usr/share/doc/pms-agent/README.md",
        "./usr/share/doc/pms-agent/TROUBLESHOOTING.md",
        "./usr/share/doc/pms-agent/examples/hl7-mllp.json",
        "./usr/share/doc/pms-agent/examples/file-drop.json",
        "./usr/share/doc/pms-agent/examples/fhir-poll.json",
        "./usr/share/doc/pms-agent/examples/rest-poll.json"}) {
    EXPECT_NE(contents.find(std::string(f) + "\n"), std::string::npos) << f << "\n" << contents;
  }
  EXPECT_EQ(contents.find("./var/"), std::string::npos) << "no state is shipped";

  const fs::path control = tmp / "control";
  ASSERT_EQ(runCommand({"dpkg-deb", "-e", deb, control.string()}).exit_code, 0);
  EXPECT_EQ(readFile(control / "conffiles"), "/etc/pms-agent/agent.json\n");
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    EXPECT_EQ(ownerOf(control / script).mode & 0111, 0111u) << script;
  }
  const std::string fields = readFile(control / "control");
  EXPECT_NE(fields.find("Package: pms-agent\n"), std::string::npos);
  EXPECT_NE(fields.find("Depends: adduser, dpkg-repack, "), std::string::npos) << fields;
  EXPECT_NE(fields.find("libmosquitto1"), std::string::npos) << fields;

  // The packaged default config is valid; the binary is stripped and runs.
  const fs::path root = tmp / "root";
  ASSERT_EQ(runCommand({"dpkg-deb", "-x", deb, root.string()}).exit_code, 0);
  auto v = runCommand({binary("pms-agent").string(), "config", "validate",
                       (root / "etc/pms-agent/agent.json").string()});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  auto ver = runCommand({(root / "usr/bin/pms-agent").string(), "version"});
  EXPECT_EQ(ver.exit_code, 0) << ver.output;
  EXPECT_EQ(ver.output.rfind("pms-agent 0.1.0 (build ", 0), 0u) << ver.output;
  EXPECT_EQ(runCommand({"file", (root / "usr/bin/pms-agent").string()}).output.find("not stripped"),
            std::string::npos);
  // Each example config (one per adapter type) is valid for this build.
  size_t examples = 0;
  for (const auto& e : fs::directory_iterator(root / "usr/share/doc/pms-agent/examples")) {
    auto r = runCommand({binary("pms-agent").string(), "config", "validate", e.path().string()});
    EXPECT_EQ(r.exit_code, 0) << e.path().filename() << ": " << r.output;
    ++examples;
  }
  EXPECT_EQ(examples, 4u);

  if (!have("/usr/bin/lintian")) {
    GTEST_SKIP() << "lintian is not installed (packaging/install-deps.sh installs it)";
  }
  auto lint = runCommand({"lintian", "--tag-display-limit", "0", deb}, 10min);
  std::printf("lintian: %s\n", lint.output.empty() ? "(no tags)" : lint.output.c_str());
  EXPECT_TRUE(linesWith(lint.output, "E: ").empty()) << lint.output;
}

}  // namespace
}  // namespace psa::test
