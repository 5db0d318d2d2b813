// `pms-agent check` names what is wrong, one line per check with a hint, against a real
// mosquitto with good and broken TLS set-ups, and against broken local files. The agent is not
// running in these tests: check works without it and probes the broker itself.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// An agent config (never started) pointing at `env`'s broker, with a prefilled store.
struct CheckSetup {
  CheckSetup(CloudEnv& env, const std::string& name)
      : state(env.tmp / name), agent(state, baseConfig()) {
    prefillStore(state, 3, 0, "x");
    agent.config().set("cloud", cloudSection(env));
  }
  json::Value& cloud() { return *agent.config().find("cloud"); }
  CommandResult check() {
    writeFile(agent.configFile(), json::serialize(agent.config(), true));
    return agent.cli({"check", "--timeout", "3"});
  }
  fs::path state;
  AgentProcess agent;
};

std::unique_ptr<MosquittoBroker> brokerWith(CloudEnv& env, const std::string& name,
                                            const CertFiles& server) {
  MosquittoOptions o;
  o.certfile = server.cert;
  o.keyfile = server.key;
  return MosquittoBroker::withMaterial(env.tls, env.tmp / name, o);
}

TEST(OpsCheck, AllGoodAgainstARealBrokerWithTheAgentDown) {
  CloudEnv env({}, "psa-check");
  CheckSetup s(env, "good");
  auto r = s.check();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(lineStarting(r.output, "WARN  agent         not running"), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    client cert   CN=practice-0042 issued by "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker tls    TLSv1.3, CN=localhost issued by "), "") << r.output;
  EXPECT_EQ(lineStarting(r.output, "OK    broker auth   "),
            "OK    broker auth   MQTT 5 CONNECT accepted (certificate identity, client id "
            "practice-0042-check)") << r.output;
  EXPECT_EQ(linesWith(r.output, "FAIL").size(), 0u) << r.output;

  r = s.agent.cli({"check", "--json"});
  auto doc = json::parse(r.output);
  ASSERT_TRUE(doc.ok()) << r.output;
  EXPECT_TRUE(doc->getBool("ok"));
  EXPECT_EQ(doc->getInt("failures"), 0);
  bool auth = false;
  for (const auto& c : doc->find("checks")->items()) {
    if (c.getString("name") == "broker auth") {
      auth = true;
      EXPECT_EQ(c.getString("level"), "ok");
    }
  }
  EXPECT_TRUE(auth);
}

TEST(OpsCheck, ShowsTheBrokersLimitsAndFailsAQosZeroBroker) {
  {
    MosquittoOptions small;
    small.extra_conf = {"max_inflight_messages 5", "max_packet_size 200000",
                        "retain_available false"};
    CloudEnv env(small, "psa-check-limits");
    CheckSetup s(env, "limits");
    const auto r = s.check();
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(lineStarting(r.output, "OK    broker auth   "),
              "OK    broker auth   MQTT 5 CONNECT accepted (certificate identity, client id "
              "practice-0042-check); broker: receive maximum 5 · maximum packet 200000 bytes · no "
              "retained messages (status and will unretained)")
        << r.output;
  }
  MosquittoOptions qos0;
  qos0.listener_conf = {"max_qos 0"};
  CloudEnv env(qos0, "psa-check-qos0");
  CheckSetup s(env, "qos0");
  const auto r = s.check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string line = lineStarting(r.output, "FAIL  broker auth   ");
  EXPECT_NE(line.find("MQTT 5 CONNECT accepted (certificate identity, client id "
                      "practice-0042-check), but the broker grants QoS 0 only"),
            std::string::npos)
      << r.output;
}

TEST(OpsCheck, AuthenticatesWithTheUserNameAndPasswordFile) {
  MosquittoOptions o;
  o.use_identity_as_username = false;
  o.passwords = {{"practice-0042", "right-pw-0b7d3e"}};
  CloudEnv env(o, "psa-check-pw");
  CheckSetup s(env, "pw");
  const fs::path pw = s.state / "mqtt.pw";
  writeFile(pw, "right-pw-0b7d3e\n");
  ::chmod(pw.c_str(), 0600);
  s.cloud().set("username", json::Value::string("practice-0042"));
  s.cloud().set("password_file", json::Value::string(pw.string()));
  auto r = s.check();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lineStarting(r.output, "OK    broker auth   "),
            "OK    broker auth   MQTT 5 CONNECT accepted (certificate identity and user name "
            "practice-0042, client id practice-0042-check)")
      << r.output;

  writeFile(pw, "wrong-pw-99c1\n");
  r = s.check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string line = lineStarting(r.output, "FAIL  broker auth   ");
  EXPECT_NE(line.find("check cloud.username and the password in cloud.password_file"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("wrong-pw-99c1"), std::string::npos) << r.output;

  ::chmod(pw.c_str(), 0644);
  r = s.check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(lineStarting(r.output, "FAIL  broker auth   cloud.password_file "), "") << r.output;
}

TEST(OpsCheck, ProbesEveryEndpointOfACluster) {
  // cloud.urls: one node up, one with nothing listening; each line says which endpoint it is.
  CloudEnv env({}, "psa-check-urls");
  CheckSetup s(env, "urls");
  const std::string up = env.broker->url();
  const std::string down = "mqtts://localhost:" + std::to_string(freePort());
  s.cloud().erase("url");
  s.cloud().set("urls", json::Value::array({json::Value::string(up), json::Value::string(down)}));
  const auto r = s.check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker auth   " + up + ": MQTT 5 CONNECT accepted"), "")
      << r.output;
  EXPECT_NE(lineStarting(r.output, "FAIL  broker tcp    " + down + ": "), "") << r.output;
}

TEST(OpsCheck, NamesTlsProblemsWithTheirFix) {
  CloudEnv env({}, "psa-check-tls");
  const std::string skipped = "WARN  broker auth   skipped (the step before failed)";

  {  // The agent trusts the wrong CA.
    CheckSetup s(env, "wrong-ca");
    s.cloud().set("ca_file", json::Value::string(env.tls.otherCa().cert.string()));
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(lineStarting(r.output, "FAIL  broker tls    "),
              "FAIL  broker tls    certificate verify failed: self-signed certificate in "
              "certificate chain ▸ cloud.ca_file does not sign the broker's certificate") << r.output;
    EXPECT_EQ(lineStarting(r.output, "WARN  broker auth"), skipped);
  }
  {  // The broker's certificate is for another host.
    auto broker = brokerWith(env, "broker-wrong-host", env.tls.serverWrongHost());
    CheckSetup s(env, "wrong-host");
    s.cloud().set("url", json::Value::string(broker->url()));
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(lineStarting(r.output, "FAIL  broker tls    "),
              "FAIL  broker tls    certificate verify failed: hostname mismatch ▸ the certificate "
              "is not for this host name: check the host in cloud.url") << r.output;
  }
  {  // The broker's certificate expired.
    auto broker = brokerWith(env, "broker-expired", env.tls.serverExpired());
    CheckSetup s(env, "expired");
    s.cloud().set("url", json::Value::string(broker->url()));
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(lineStarting(r.output, "FAIL  broker tls    ").rfind(
                  "FAIL  broker tls    certificate verify failed: certificate has expired ▸ the "
                  "broker's certificate has expired", 0),
              0u) << r.output;
  }
  {  // The broker does not trust the agent's client certificate.
    CheckSetup s(env, "foreign-client");
    const CertFiles& foreign = env.tls.clientFromOtherCa("practice-0042");
    s.cloud().set("cert_file", json::Value::string(foreign.cert.string()));
    s.cloud().set("key_file", json::Value::string(foreign.key.string()));
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(lineStarting(r.output, "OK    client cert   "), "") << r.output;
    const auto fails = linesWith(r.output, "FAIL  broker ");
    ASSERT_EQ(fails.size(), 1u) << r.output;
    EXPECT_NE(fails[0].find("client certificate"), std::string::npos) << fails[0];
  }
  {  // Certificate and key that do not belong together.
    CheckSetup s(env, "mismatch");
    s.cloud().set("key_file", json::Value::string(env.tls.client("someone-else").key.string()));
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(lineStarting(r.output, "FAIL  client cert   "),
              "FAIL  client cert   cloud.cert_file and cloud.key_file do not belong together ▸ "
              "install the key that was issued with this certificate") << r.output;
  }
}

// Certificates that are still valid but expire within 30 days: WARN lines naming the date and
// who must act, not FAILs (exit 0), and the broker authentication still runs.
TEST(OpsCheck, CertificatesExpiringWithinThirtyDaysAreWarnings) {
  CloudEnv env({}, "psa-check-soon");
  auto broker = brokerWith(env, "broker-soon", env.tls.serverExpiringIn(10));
  CheckSetup s(env, "soon");
  s.cloud().set("url", json::Value::string(broker->url()));
  const CertFiles& client = env.tls.clientExpiringIn("practice-0042", 20);
  s.cloud().set("cert_file", json::Value::string(client.cert.string()));
  s.cloud().set("key_file", json::Value::string(client.key.string()));
  auto r = s.check();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(linesWith(r.output, "FAIL").size(), 0u) << r.output;
  const std::string tls = lineStarting(r.output, "WARN  broker tls    ");
  EXPECT_TRUE(std::regex_search(
      tls, std::regex("^WARN  broker tls    TLSv1\\.[23], CN=localhost issued by .*; it expires on "
                      "\\d{4}-\\d{2}-\\d{2} \\(in (9|10) days\\) ▸ the cloud operator must renew it$")))
      << r.output;
  const std::string cert = lineStarting(r.output, "WARN  client cert   ");
  EXPECT_TRUE(std::regex_search(
      cert, std::regex("^WARN  client cert   CN=practice-0042 issued by .* expires on "
                       "\\d{4}-\\d{2}-\\d{2} \\(in (19|20) days\\) ▸ request a new agent certificate$")))
      << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker auth   MQTT 5 CONNECT accepted"), "") << r.output;

  // 31 days left: no longer a warning.
  auto later = brokerWith(env, "broker-later", env.tls.serverExpiringIn(31));
  s.cloud().set("url", json::Value::string(later->url()));
  const CertFiles& fresh = env.tls.clientExpiringIn("practice-0042", 31);
  s.cloud().set("cert_file", json::Value::string(fresh.cert.string()));
  s.cloud().set("key_file", json::Value::string(fresh.key.string()));
  r = s.check();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker tls    "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    client cert   "), "") << r.output;
}

TEST(OpsCheck, NamesNetworkProblems) {
  CloudEnv env({}, "psa-check-net");
  {  // Nothing listens.
    CheckSetup s(env, "down");
    env.broker->stop();
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    const std::string tcp = lineStarting(r.output, "FAIL  broker tcp    ");
    EXPECT_EQ(tcp.rfind("FAIL  broker tcp    cannot connect to localhost:" +
                            std::to_string(env.broker->port()) + " (",
                        0),
              0u) << r.output;
    EXPECT_NE(tcp.find("Connection refused"), std::string::npos) << tcp;
    EXPECT_NE(tcp.find("▸ the firewall must allow outbound TCP " + std::to_string(env.broker->port()) +
                       "; is the broker up?"),
              std::string::npos) << tcp;
    EXPECT_EQ(linesWith(r.output, "skipped (the step before failed)").size(), 2u) << r.output;
  }
  {  // The host name does not resolve.
    CheckSetup s(env, "dns");
    s.cloud().set("url", json::Value::string("mqtts://no-such-host.invalid:8883"));
    auto r = s.check();
    EXPECT_EQ(r.exit_code, 1) << r.output;
    const std::string dns = lineStarting(r.output, "FAIL  broker dns    ");
    EXPECT_EQ(dns.rfind("FAIL  broker dns    cannot resolve no-such-host.invalid: ", 0), 0u) << r.output;
    EXPECT_NE(dns.find("▸ check the DNS servers (/etc/resolv.conf) and the host in cloud.url"),
              std::string::npos) << dns;
  }
}

TEST(OpsCheck, NamesLocalFileProblems) {
  TempDir tmp("psa-check-files");
  const fs::path state = tmp / "state";
  prefillStore(state, 3, 0, "x");
  AgentProcess agent(state, baseConfig());
  auto check = [&] {
    writeFile(agent.configFile(), json::serialize(agent.config(), true));
    return agent.cli({"check"});
  };

  ::chmod((state / "queue.key").c_str(), 0644);
  auto r = check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string key = (state / "queue.key").string();
  EXPECT_EQ(lineStarting(r.output, "FAIL  key file      "),
            "FAIL  key file      " + key + " mode 0644: other users can read the data key ▸ chmod 600 " +
                key + " (the agent refuses to start until then)") << r.output;

  fs::rename(state / "queue.key", tmp / "queue.key.away");
  r = check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(lineStarting(r.output, "FAIL  key file      "),
            "FAIL  key file      " + key + " is missing, but the queue database holds 3 records ▸ "
                                          "restore the key file from backup (a new key cannot "
                                          "decrypt them)") << r.output;
  fs::rename(tmp / "queue.key.away", state / "queue.key");
  ::chmod((state / "queue.key").c_str(), 0600);

  // A database the store moved aside after corruption: salvage it.
  writeFile(state / "queue.db.corrupt-20261125T101500Z", "garbage");
  r = check();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lineStarting(r.output, "WARN  queue         "),
            "WARN  queue         found " + (state / "queue.db.corrupt-20261125T101500Z").string() +
                " (moved aside after corruption) ▸ pms-agent queue salvage " +
                (state / "queue.db.corrupt-20261125T101500Z").string()) << r.output;

  // An invalid config stops everything else with the first problem and the command to run.
  agent.config().find("agent")->set("colour", json::Value::string("blue"));
  r = check();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string file = agent.configFile().string();
  EXPECT_EQ(r.output.rfind("FAIL  config        " + file + ": 1 problem; first at line 7: "
                           "agent.colour: unknown key (known keys: id, tenant, ", 0), 0u) << r.output;
  const std::string tail = ") ▸ pms-agent config validate " + file + "\n1 failure, 0 warnings\n";
  ASSERT_GE(r.output.size(), tail.size());
  EXPECT_EQ(r.output.substr(r.output.size() - tail.size()), tail) << r.output;
  EXPECT_EQ(linesWith(r.output, "FAIL").size(), 1u) << "nothing else runs with an invalid config";
}

}  // namespace
}  // namespace psa::test
