// pms-cloud-sim's remote management subcommands against the real agent: keygen, push-config
// (--wait prints the agent's answer), command (including bundle reassembly), and `listen
// --reports` printing config/state, cmd/result, status and audit (with the chain check).
#include <gtest/gtest.h>

#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> brokerArgs(RemoteFixture& f) {
  const CertFiles& cloud = f.env.tls.client("cloud");
  return {"--url",  f.env.broker->url(),  "--ca",       f.env.tls.ca().cert.string(),
          "--cert", cloud.cert.string(),  "--cert-key", cloud.key.string(),
          "--tenant", kTenant,            "--agent",    kRemoteAgent};
}

CommandResult sim(RemoteFixture& f, std::vector<std::string> args, bool broker = true) {
  std::vector<std::string> argv = {binary("pms-cloud-sim").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  if (broker) {
    auto b = brokerArgs(f);
    argv.insert(argv.end(), b.begin(), b.end());
  }
  return runCommand(argv, 60s);
}

TEST(RemoteSim, KeygenPushConfigCommandAndReports) {
  RemoteFixture f;
  const auto prefix = (f.env.tmp / "cloud-signing").string();
  auto gen = sim(f, {"keygen", "--out", prefix}, false);
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  ASSERT_NE(gen.output.find("key_id: "), std::string::npos) << gen.output;
  const std::string key_id = gen.output.substr(gen.output.find("key_id: ") + 8, 16);
  EXPECT_EQ(key_id.find_first_not_of("0123456789abcdef"), std::string::npos) << key_id;
  EXPECT_EQ(std::filesystem::status(prefix + ".key").permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  // The agent trusts the generated key.
  f.agent->config().find("cloud")->set("config_signing_key", json::Value::string(prefix + ".pub.pem"));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  EXPECT_NE(f.agent->log().find("key_id=" + key_id), std::string::npos);

  const auto config_file = f.env.tmp / "push.json";
  writeFile(config_file, R"({"agent":{"log_level":"debug"},"adapters":[]})");
  auto pushed = sim(f, {"push-config", config_file.string(), "--key", prefix + ".key", "--version", "7",
                        "--wait", "20"});
  EXPECT_EQ(pushed.exit_code, 0) << pushed.output;
  EXPECT_NE(pushed.output.find("\"result\":\"applied\""), std::string::npos) << pushed.output;
  auto again = sim(f, {"push-config", config_file.string(), "--key", prefix + ".key", "--version", "7",
                       "--wait", "20"});
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("\"reason\":\"replay\""), std::string::npos) << again.output;
  auto expired = sim(f, {"push-config", config_file.string(), "--key", prefix + ".key", "--version", "8",
                         "--issued-at", "2020-01-01T00:00:00Z", "--expires", "60", "--wait", "20"});
  EXPECT_EQ(expired.exit_code, 1) << expired.output;
  EXPECT_NE(expired.output.find("\"reason\":\"expired\""), std::string::npos) << expired.output;

  auto ping = sim(f, {"command", "ping", "--key", prefix + ".key", "--wait", "20"});
  EXPECT_EQ(ping.exit_code, 0) << ping.output;
  EXPECT_NE(ping.output.find("\"pong\":true"), std::string::npos) << ping.output;
  auto level = sim(f, {"command", "set-log-level", "level=warn", "--key", prefix + ".key", "--wait", "20"});
  EXPECT_EQ(level.exit_code, 0) << level.output;
  EXPECT_NE(level.output.find("\"level\":\"warn\""), std::string::npos) << level.output;
  auto unknown = sim(f, {"command", "nope", "--key", prefix + ".key", "--wait", "20"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("unknown_command"), std::string::npos) << unknown.output;

  const auto bundle_file = f.env.tmp / "bundle.json";
  auto bundle = sim(f, {"command", "bundle", "--key", prefix + ".key", "--wait", "30", "--out",
                        bundle_file.string()});
  EXPECT_EQ(bundle.exit_code, 0) << bundle.output;
  EXPECT_NE(bundle.output.find("sha256 OK"), std::string::npos) << bundle.output;
  auto doc = json::parse(readFile(bundle_file));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->getString("format"), "pms-agent-bundle/1");

  // --print signs without publishing.
  auto printed = sim(f, {"command", "ping", "--key", prefix + ".key", "--print"});
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  auto env = json::parse(printed.output.substr(0, printed.output.find('\n')));
  ASSERT_TRUE(env.ok()) << printed.output;
  EXPECT_EQ(env->getString("key_id"), key_id);

  // The listener printed what the agent reported, and the audit chain checked out.
  EXPECT_TRUE(waitFor([&] {
    const std::string out = f.sim->stdoutText();
    return out.find("report acme-health/practice-0042 config/state") != std::string::npos &&
           out.find("report acme-health/practice-0042 cmd/result") != std::string::npos &&
           out.find("report acme-health/practice-0042 status") != std::string::npos &&
           out.find("chain OK") != std::string::npos;
  }, 20s)) << f.sim->stdoutText();
  EXPECT_EQ(f.sim->stdoutText().find("BROKEN"), std::string::npos);
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
