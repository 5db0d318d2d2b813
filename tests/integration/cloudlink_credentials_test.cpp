// User name and password authentication beside the client certificate, against a real
// mosquitto that checks a password file (and still requires the certificate): the records
// flow; a wrong password is named in last_error, loses nothing, and a corrected file is picked
// up at the next attempt without a restart; an unsafe password file is refused before any
// connection; the user name may come from the certificate; the password is never logged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "cloudlink_harness.h"
#include "psa/store/log.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAgentPassword = "agent-pw-7c1e9f04d2b8";
constexpr const char* kCloudPassword = "cloud-pw-55aa01";

MosquittoOptions passwordBroker() {
  MosquittoOptions o;
  o.use_identity_as_username = false;
  o.passwords = {{"agent-1", kAgentPassword}, {"cloud", kCloudPassword}};
  return o;
}

std::filesystem::path secretFile(const std::filesystem::path& path, const std::string& text,
                                 mode_t mode = 0600) {
  writeFile(path, text + "\n");
  ::chmod(path.c_str(), mode);
  return path;
}

struct PasswordEnv {
  PasswordEnv() : env(passwordBroker(), "psa-creds") {}

  CloudSim sim() {
    CloudSimOptions o = env.simOptions();
    o.username = "cloud";
    o.password_file = secretFile(env.tmp / "cloud.pw", kCloudPassword);
    return CloudSim(o);
  }

  cloudlink::CloudLinkOptions agent(const std::string& password) {
    auto o = env.linkOptions("agent-1");
    o.username = "agent-1";
    o.password_file = secretFile(env.tmp / "agent.pw", password);
    return o;
  }

  CloudEnv env;
};

bool loggedAnywhere(std::string_view needle) {
  for (const std::string& line : log::recentLines(100000)) {
    if (line.find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(CloudLinkCredentials, UserNameAndPasswordFileAuthenticate) {
  PasswordEnv p;
  CloudSim sim = p.sim();
  TestStore queue(p.env.tmp / "store");
  auto ids = queue.append(makeRecords(20));
  LinkRunner runner(queue, p.agent(kAgentPassword));
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(20, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 20; }, 10s));
  EXPECT_TRUE(runner.status().connected);
  EXPECT_TRUE(runner.stop());
  EXPECT_FALSE(loggedAnywhere(kAgentPassword));
}

TEST(CloudLinkCredentials, WrongPasswordIsNamedAndAFixedFileIsUsedWithoutRestart) {
  PasswordEnv p;
  CloudSim sim = p.sim();
  TestStore queue(p.env.tmp / "store");
  auto ids = queue.append(makeRecords(10));
  auto options = p.agent("not-the-password-3f2a");
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string e = runner.status().last_error;
        return e.find("bad user name or password") != std::string::npos ||
               e.find("not authorized") != std::string::npos;
      },
      30s))
      << runner.status().toJson();
  EXPECT_FALSE(runner.status().connected);
  EXPECT_EQ(queue.counts().pending, 10u);
  EXPECT_FALSE(loggedAnywhere("not-the-password-3f2a"));

  // The technician fixes the file; the next attempt reads it again.
  secretFile(options.password_file, kAgentPassword);
  ASSERT_TRUE(sim.waitForUnique(10, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 10; }, 10s));
  EXPECT_EQ(queue.counts().dead, 0u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkCredentials, UnsafePasswordFileIsRefusedBeforeConnecting) {
  PasswordEnv p;
  TestStore queue(p.env.tmp / "store");
  queue.append(makeRecords(3));
  auto options = p.agent(kAgentPassword);
  ::chmod(options.password_file.c_str(), 0644);
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string e = runner.status().last_error;
        return e.find("cloud.password_file") != std::string::npos &&
               e.find("chmod 600") != std::string::npos;
      },
      30s))
      << runner.status().toJson();
  EXPECT_EQ(runner.status().connects, 0u);
  EXPECT_EQ(queue.counts().pending, 3u);
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkCredentials, UserNameFromTheCertificatesCommonName) {
  PasswordEnv p;
  CloudSim sim = p.sim();
  TestStore queue(p.env.tmp / "store");
  queue.append(makeRecords(5));
  auto options = p.agent(kAgentPassword);
  options.username.clear();
  options.username_from_certificate = true;  // the certificate's CN is "agent-1"
  LinkRunner runner(queue, options);
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(5, 30s)) << runner.status().toJson();
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
