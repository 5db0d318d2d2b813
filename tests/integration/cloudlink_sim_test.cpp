// pms-cloud-sim itself: usage errors, sha256 verification, msg-id de-duplication, receipts,
// --exit-after and --idle-exit for scripts.
#include <gtest/gtest.h>

#include "cloudlink_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

const std::string kUp = std::string("ps/") + kTenant + "/agent-1/up/patient";
const std::string kHelloSha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

CommandResult publishWithProps(CloudEnv& env, const std::string& payload,
                               const std::vector<std::pair<std::string, std::string>>& props) {
  auto args = mqttClientArgs(env, "mosquitto_pub", "agent-1");
  for (const char* a : {"-q", "1", "-t"}) {
    args.emplace_back(a);
  }
  args.push_back(kUp);
  args.push_back("-m");
  args.push_back(payload);
  for (const auto& [k, v] : props) {
    for (const std::string& a : {std::string("-D"), std::string("publish"),
                                 std::string("user-property"), k, v}) {
      args.push_back(a);
    }
  }
  return runCommand(args);
}

TEST(CloudSimCli, UsageErrorsExitWithTwo) {
  auto r = runCommand({binary("pms-cloud-sim").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("usage: pms-cloud-sim COMMAND"), std::string::npos) << r.output;
  r = runCommand({binary("pms-cloud-sim").string(), "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos) << r.output;
  r = runCommand({binary("pms-cloud-sim").string(), "listen", "--url", "mqtts://x", "--ca", "x",
                  "--key", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("the option '--cert' is required but missing"), std::string::npos)
      << r.output;
  r = runCommand({binary("pms-cloud-sim").string(), "listen", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--receipts"), std::string::npos);
}

TEST(CloudSimCli, VerifiesDeduplicatesReceiptsAndExitsAfterN) {
  CloudEnv env;
  const CertFiles& cloud = env.tls.client("cloud");
  const auto out = env.tmp / "received.jsonl";
  const auto ready = env.tmp / "ready";
  Process::Options p;
  p.argv = {binary("pms-cloud-sim").string(), "listen", "--url", env.broker->url(), "--ca",
            env.tls.ca().cert.string(), "--cert", cloud.cert.string(), "--key", cloud.key.string(),
            "--out", out.string(), "--ready-file", ready.string(), "--receipts", "--quiet",
            "--exit-after", "2", "--payloads"};
  p.stdout_file = env.tmp / "sim.out";
  Process sim(std::move(p));
  ASSERT_TRUE(waitFor([&] { return std::filesystem::exists(ready); }, 10s));
  // A receipt watcher for agent-1.
  auto args = mqttClientArgs(env, "mosquitto_sub", "agent-1");
  for (const char* a : {"-W", "30", "-t"}) {
    args.emplace_back(a);
  }
  args.push_back(std::string("ps/") + kTenant + "/agent-1/receipt");
  Process::Options w;
  w.argv = args;
  w.stdout_file = env.tmp / "receipt.out";
  Process watcher(std::move(w));
  // mosquitto_sub has no ready signal: probe until it has subscribed.
  const std::string receipt_topic = std::string("ps/") + kTenant + "/agent-1/receipt";
  ASSERT_TRUE(waitFor(
      [&] {
        mosquittoPub(env, receipt_topic, "probe");
        return readFile(env.tmp / "receipt.out").find("probe") != std::string::npos;
      },
      10s));

  ASSERT_EQ(publishWithProps(env, "hello", {{"msg-id", "01A"}, {"sha256", kHelloSha}}).exit_code, 0);
  ASSERT_EQ(publishWithProps(env, "hello", {{"msg-id", "01A"}, {"sha256", kHelloSha}}).exit_code, 0);
  ASSERT_EQ(publishWithProps(env, "tampered", {{"msg-id", "01B"}, {"sha256", kHelloSha}}).exit_code,
            0);
  ASSERT_EQ(publishWithProps(env, "hello", {{"msg-id", "01C"}, {"sha256", kHelloSha}}).exit_code, 0);
  ASSERT_EQ(sim.wait(20s), std::optional<int>(0)) << readFile(env.tmp / "sim.out");
  const std::string summary = readFile(env.tmp / "sim.out");
  EXPECT_NE(summary.find("summary: messages=4 unique=3 duplicates=1 sha256_mismatch=1"),
            std::string::npos)
      << summary;
  auto lines = readSimOutput(out);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_FALSE(lines[0].duplicate);
  EXPECT_TRUE(lines[1].duplicate);
  EXPECT_EQ(lines[1].msg_id, "01A");
  EXPECT_FALSE(lines[2].sha256_ok);
  EXPECT_EQ(lines[2].payload, "tampered");
  EXPECT_TRUE(lines[3].sha256_ok);
  // Receipts name verified messages only (not the tampered one).
  ASSERT_TRUE(waitFor([&] { return readFile(env.tmp / "receipt.out").find("01C") !=
                                   std::string::npos; },
                      10s))
      << readFile(env.tmp / "receipt.out");
  watcher.kill();
  const std::string receipt = readFile(env.tmp / "receipt.out");
  EXPECT_NE(receipt.find("\"01A\""), std::string::npos) << receipt;
  EXPECT_EQ(receipt.find("\"01B\""), std::string::npos) << receipt;
}

TEST(CloudSimCli, IdleExit) {
  CloudEnv env;
  const CertFiles& cloud = env.tls.client("cloud");
  auto r = runCommand({binary("pms-cloud-sim").string(), "listen", "--url", env.broker->url(),
                       "--ca", env.tls.ca().cert.string(), "--cert", cloud.cert.string(), "--key",
                       cloud.key.string(), "--idle-exit", "1", "--quiet"},
                      20s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("summary: messages=0 unique=0"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace psa::test
