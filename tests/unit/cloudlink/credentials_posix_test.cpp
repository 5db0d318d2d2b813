// loadCredentials: the MQTT user name from the config or the certificate's common name, and the
// password from a file that only the service may read (real files, real certificates).
#include "credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_support.h"
#include "tls_material.h"

namespace psa::cloudlink::detail {
namespace {

using test::TempDir;
using test::TlsMaterial;
using test::writeFile;

TEST(Credentials, NoneConfiguredMeansNoUserNameAndNoPassword) {
  auto c = loadCredentials({});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_FALSE(c->username);
  EXPECT_FALSE(c->password);
}

TEST(Credentials, UserNameAndPasswordFromAPrivateFile) {
  TempDir tmp("psa-creds");
  writeFile(tmp / "pw", "s3cret-value\r\n");
  ::chmod((tmp / "pw").c_str(), 0600);
  auto c = loadCredentials({"practice-7", tmp / "pw", false, {}});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->username, "practice-7");
  EXPECT_EQ(c->password, "s3cret-value");
}

TEST(Credentials, PasswordFileOthersCanReadIsRefusedWithItsFix) {
  TempDir tmp("psa-creds");
  writeFile(tmp / "pw", "s3cret-value\n");
  ::chmod((tmp / "pw").c_str(), 0644);
  auto c = loadCredentials({"u", tmp / "pw", false, {}});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("cloud.password_file"), std::string::npos);
  EXPECT_NE(c.error().message.find("chmod 600"), std::string::npos) << c.error().message;
  EXPECT_EQ(c.error().message.find("s3cret-value"), std::string::npos);
}

TEST(Credentials, MissingOrEmptyPasswordFileIsNamed) {
  TempDir tmp("psa-creds");
  auto missing = loadCredentials({"u", tmp / "absent", false, {}});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("absent"), std::string::npos);
  writeFile(tmp / "empty", "\n");
  ::chmod((tmp / "empty").c_str(), 0600);
  auto empty = loadCredentials({"u", tmp / "empty", false, {}});
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("cloud.password_file"), std::string::npos);
}

TEST(Credentials, UserNameFromTheCertificatesCommonName) {
  TempDir tmp("psa-creds");
  TlsMaterial tls(tmp / "pki");
  auto c = loadCredentials({"", {}, true, tls.client("practice-0042").cert});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->username, "practice-0042");
  EXPECT_FALSE(c->password);

  writeFile(tmp / "not-a-cert.pem", "hello");
  auto bad = loadCredentials({"", {}, true, tmp / "not-a-cert.pem"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("holds no PEM certificate"), std::string::npos);
}

}  // namespace
}  // namespace psa::cloudlink::detail
