// The bearer token file's protection on POSIX (file modes): HttpServer::start() refuses a token
// file other accounts can read, and a token too short to resist guessing.
#include <gtest/gtest.h>

#include <filesystem>

#include "http/http_server.h"
#include "http_server_fixture.h"
#include "test_support.h"

namespace psa::agent::http::testing {
namespace {

namespace fs = std::filesystem;

fs::path tokenFile(const psa::test::TempDir& dir, const std::string& text, fs::perms mode) {
  const fs::path file = dir / "http.token";
  psa::test::writeFile(file, text);
  fs::permissions(file, mode, fs::perm_options::replace);
  return file;
}

constexpr fs::perms k0600 = fs::perms::owner_read | fs::perms::owner_write;
constexpr fs::perms k0644 = k0600 | fs::perms::group_read | fs::perms::others_read;

TEST_F(HttpServerTest, TokenFileReadableByOthersFailsStartNamingTheFile) {
  psa::test::TempDir dir("psa-http-token");
  HttpSettings s = settingsFor();
  s.bearer_token_file = tokenFile(dir, "s3cr3t-token-0123456789abcdef\n", k0644);
  HttpServer& server = make(s);
  const Status st = server.start();
  ASSERT_FALSE(st.ok()) << "a 0644 token file was accepted";
  const std::string& m = st.error().message;
  EXPECT_NE(m.find(s.bearer_token_file.string()), std::string::npos) << m;
  EXPECT_NE(m.find("0644"), std::string::npos) << m;
  EXPECT_NE(m.find("chmod 600"), std::string::npos) << m;
  EXPECT_EQ(server.state(), "stopped");
  EXPECT_EQ(server.port(), 0);
}

TEST_F(HttpServerTest, ShortTokenFailsStart) {
  psa::test::TempDir dir("psa-http-token");
  HttpSettings s = settingsFor();
  s.bearer_token_file = tokenFile(dir, "0123456789\n", k0600);  // 10 characters
  HttpServer& server = make(s);
  const Status st = server.start();
  ASSERT_FALSE(st.ok()) << "a 10-character token was accepted";
  const std::string& m = st.error().message;
  EXPECT_NE(m.find(s.bearer_token_file.string()), std::string::npos) << m;
  EXPECT_NE(m.find("shorter than 16 characters"), std::string::npos) << m;
  EXPECT_EQ(m.find("0123456789"), std::string::npos) << "the message shows the token: " << m;
  EXPECT_EQ(server.state(), "stopped");
}

TEST_F(HttpServerTest, OwnerOnlyTokenFileWithAGoodTokenServes) {
  psa::test::TempDir dir("psa-http-token");
  const std::string token = "0123456789abcdef";  // exactly 16: the shortest accepted
  HttpSettings s = settingsFor();
  s.bearer_token_file = tokenFile(dir, token + "\n", k0600);
  HttpServer& server = serve(s);

  Client c;
  ASSERT_FALSE(c.connect(server.port()));
  auto r =
      c.exchange(requestText("GET", "/", "localhost", "Authorization: Bearer " + token + "\r\n"));
  ASSERT_TRUE(r) << c.lastError().message();
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), kHello);
  r = c.exchange(requestText("GET", "/", "localhost"));
  ASSERT_TRUE(r) << c.lastError().message();
  EXPECT_EQ(r->result_int(), 401);
}

}  // namespace
}  // namespace psa::agent::http::testing
