// cloud.username / cloud.username_from_certificate / cloud.password_file through the real
// loader: mapped onto the link's options, at most one source of the user name, a password only
// with a user name, and remote config can set none of them.
#include <gtest/gtest.h>

#include <string>

#include "config_cloud_support.h"
#include "link_options.h"
#include "psa/agent/config.h"
#include "psa/agent/remote_config.h"
#include "psa/cloudlink/cloud_link.h"

namespace psa::agent {
namespace {

using test::problems;

ConfigLoad loadCloud(const std::string& keys) { return test::loadCloudSection(keys, true); }

TEST(ConfigCloudCredentials, UserNameAndPasswordFileReachTheLink) {
  const ConfigLoad load = loadCloud(R"("username":"practice-7","password_file":"mqtt.pw")");
  ASSERT_TRUE(load.config) << problems(load);
  const cloudlink::CloudLinkOptions o = linkOptions(*load.config);
  EXPECT_EQ(o.username, "practice-7");
  EXPECT_EQ(o.password_file, load.config->resolve("mqtt.pw"));  // relative to state_dir
  EXPECT_FALSE(o.username_from_certificate);
  EXPECT_TRUE(cloudlink::validateOptions(o)) << cloudlink::validateOptions(o).error().message;
}

TEST(ConfigCloudCredentials, UserNameFromTheCertificate) {
  const ConfigLoad load = loadCloud(R"("username_from_certificate":true)");
  ASSERT_TRUE(load.config) << problems(load);
  const cloudlink::CloudLinkOptions o = linkOptions(*load.config);
  EXPECT_TRUE(o.username_from_certificate);
  EXPECT_TRUE(o.username.empty());
  EXPECT_TRUE(o.password_file.empty());
}

TEST(ConfigCloudCredentials, NoneByDefault) {
  const ConfigLoad load = loadCloud("");
  ASSERT_TRUE(load.config) << problems(load);
  const cloudlink::CloudLinkOptions o = linkOptions(*load.config);
  EXPECT_TRUE(o.username.empty());
  EXPECT_TRUE(o.password_file.empty());
  EXPECT_FALSE(o.username_from_certificate);
}

TEST(ConfigCloudCredentials, OneUserNameSourceAndNoPasswordWithoutAUserName) {
  EXPECT_NE(problems(loadCloud(R"("username":"u","username_from_certificate":true)"))
                .find("give cloud.username or cloud.username_from_certificate, not both"),
            std::string::npos);
  EXPECT_NE(problems(loadCloud(R"("password_file":"mqtt.pw")"))
                .find("cloud.password_file needs cloud.username"),
            std::string::npos);
  EXPECT_NE(problems(loadCloud(R"("username":"")")).find("cloud.username"), std::string::npos);
  EXPECT_NE(problems(loadCloud(R"("username_from_certificate":"yes")")).find("boolean"),
            std::string::npos);

  cloudlink::CloudLinkOptions o;
  o.tenant = "t1";
  o.agent_id = "p1";
  o.url = "mqtts://b:1";
  o.ca_file = "ca.pem";
  o.cert_file = "a.pem";
  o.key_file = "a.key";
  o.password_file = "pw";
  EXPECT_EQ(cloudlink::validateOptions(o).error().message,
            "cloud.password_file needs cloud.username (or cloud.username_from_certificate)");
  o.username = "u";
  o.username_from_certificate = true;
  EXPECT_EQ(cloudlink::validateOptions(o).error().message,
            "cloud.username and cloud.username_from_certificate: give one of the two");
}

TEST(ConfigCloudCredentials, RemoteConfigCannotSetThem) {
  const ConfigLoad local = loadCloud("");
  ASSERT_TRUE(local.config) << problems(local);
  for (const char* remote :
       {R"({"cloud":{"username":"intruder"}})", R"({"cloud":{"password_file":"/tmp/pw"}})",
        R"({"cloud":{"username_from_certificate":true}})"}) {
    auto overlay = json::parse(remote);
    ASSERT_TRUE(overlay.ok()) << remote;
    const OverlayCheck check = checkOverlay(*overlay, local.config->doc);
    ASSERT_EQ(check.forbidden.size(), 1u) << remote;
    EXPECT_EQ(check.forbidden[0].message,
              "the cloud identity and endpoint cannot be changed remotely")
        << remote;
  }
}

}  // namespace
}  // namespace psa::agent
