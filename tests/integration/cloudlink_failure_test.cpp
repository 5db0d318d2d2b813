// Connection failures: wrong CA, wrong host name, expired broker certificate, missing or
// foreign client certificate, refused connection, unknown host, broker ACL refusal. In every
// case no data is sent, the link says why in words, keeps running and retries.
#include <gtest/gtest.h>

#include <filesystem>

#include "cloudlink_harness.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

/// Runs a link that cannot connect; checks the words, the retries and that nothing was sent.
void expectFailure(CloudEnv& env, cloudlink::CloudLinkOptions options,
                   const std::string& expected_words, bool broker_usable = true) {
  // The simulator proves nothing reached the broker's subscribers; it cannot connect itself
  // when the broker's own certificate is the problem.
  std::unique_ptr<CloudSim> sim;
  if (broker_usable) {
    sim = std::make_unique<CloudSim>(env.simOptions());
  }
  TestStore queue(env.tmp / "store");
  queue.append(makeRecords(20));
  LinkRunner runner(queue, std::move(options));
  runner.start();
  // Each failed attempt must be explained; with TLS 1.3 a client-certificate alert can be lost
  // when the broker closes first (that attempt reads "TLS: protocol error"), so the cause has to
  // show within the retries rather than on one sampled attempt.
  std::string seen;
  const bool explained = waitFor(
      [&] {
        auto st = runner.status();
        seen = st.last_error;
        return st.reconnects >= 2 && st.last_error.find(expected_words) != std::string::npos;
      },
      20s);
  EXPECT_TRUE(explained) << "last_error: " << seen << "\n" << runner.status().toJson();
  const auto st = runner.status();
  EXPECT_FALSE(st.last_error.empty());
  EXPECT_FALSE(st.connected);
  EXPECT_EQ(st.connects, 0u);
  EXPECT_EQ(st.published, 0u);
  EXPECT_TRUE(st.state == cloudlink::LinkState::backoff ||
              st.state == cloudlink::LinkState::connecting)
      << cloudlink::linkStateName(st.state);
  EXPECT_EQ(queue.counts().delivered, 0u);
  EXPECT_EQ(queue.counts().pending, 20u);
  if (sim) {
    EXPECT_TRUE(sim->messages().empty());
  }
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkFailure, WrongCaIsReportedAndRetried) {
  CloudEnv env;
  auto o = env.linkOptions("agent-1");
  o.ca_file = env.tls.otherCa().cert;
  // mosquitto sends its CA along with its certificate, so OpenSSL finds a self-signed
  // certificate it does not trust (without the CA in the chain it would say "unable to get
  // local issuer certificate"); either way the words name the cause.
  expectFailure(env, o,
                "TLS: certificate verify failed: self-signed certificate in certificate chain "
                "(the configured CA file does not sign the broker's certificate)");
}

TEST(CloudLinkFailure, HostNameMismatchIsReported) {
  MosquittoOptions broker;
  CloudEnv env;  // trusted CA; now restart the broker with a certificate for another host
  broker.certfile = env.tls.serverWrongHost().cert;
  broker.keyfile = env.tls.serverWrongHost().key;
  env.broker.reset();
  env.broker = MosquittoBroker::withMaterial(env.tls, env.tmp / "broker-wrong-host", broker);
  expectFailure(env, env.linkOptions("agent-1"),
                "TLS: hostname mismatch: the broker certificate is not valid for localhost",
                /*broker_usable=*/false);
}

TEST(CloudLinkFailure, ExpiredBrokerCertificateIsReported) {
  CloudEnv env;
  MosquittoOptions broker;
  broker.certfile = env.tls.serverExpired().cert;
  broker.keyfile = env.tls.serverExpired().key;
  env.broker.reset();
  env.broker = MosquittoBroker::withMaterial(env.tls, env.tmp / "broker-expired", broker);
  expectFailure(env, env.linkOptions("agent-1"),
                "TLS: certificate verify failed: certificate has expired (check the broker's "
                "certificate and this machine's clock)",
                /*broker_usable=*/false);
}

TEST(CloudLinkFailure, ClientCertificateFromUnknownCaIsRejectedByBroker) {
  CloudEnv env;
  auto o = env.linkOptions("agent-1");
  o.cert_file = env.tls.clientFromOtherCa("agent-1").cert;
  o.key_file = env.tls.clientFromOtherCa("agent-1").key;
  expectFailure(env, o, "TLS: the broker rejected our client certificate");
}

// Once an attempt has named the cause, a later attempt whose alert was lost (TLS 1.3: the
// broker closed first) still shows it, so the technician never sees a bare "protocol error"
// between correct messages.
TEST(CloudLinkFailure, RejectedCertificateStaysExplainedOnEveryLaterAttempt) {
  CloudEnv env;
  auto o = env.linkOptions("agent-1");
  o.cert_file = env.tls.clientFromOtherCa("agent-1").cert;
  o.key_file = env.tls.clientFromOtherCa("agent-1").key;
  o.backoff_initial = 50ms;
  o.backoff_max = 100ms;
  TestStore queue(env.tmp / "store");
  queue.append(makeRecords(5));
  LinkRunner runner(queue, std::move(o));
  runner.start();
  const std::string cause = "the broker rejected our client certificate";
  ASSERT_TRUE(
      waitFor([&] { return runner.status().last_error.find(cause) != std::string::npos; }, 20s))
      << runner.status().toJson();
  const uint64_t from = runner.status().reconnects;
  std::vector<std::string> unexplained;
  ASSERT_TRUE(waitFor(
      [&] {
        const auto st = runner.status();
        if (st.last_error.find(cause) == std::string::npos) {
          unexplained.push_back(st.last_error);
        }
        return st.reconnects >= from + 10;
      },
      60s))
      << runner.status().toJson();
  EXPECT_EQ(unexplained, std::vector<std::string>{});
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkFailure, ConnectionRefusedIsReported) {
  CloudEnv env;
  auto o = env.linkOptions("agent-1");
  o.url = "mqtts://127.0.0.1:" + std::to_string(freePort());
  expectFailure(env, o, "connection refused");
}

TEST(CloudLinkFailure, UnknownHostIsReported) {
  CloudEnv env;
  auto o = env.linkOptions("agent-1");
  o.url = "mqtts://no-such-host.invalid:8883";
  expectFailure(env, o, "DNS: host not found: no-such-host.invalid");
}

TEST(CloudLinkFailure, BrokerRefusalIsReported) {
  MosquittoOptions broker;
  broker.clientid_prefixes = "cloud-";  // only the simulator's client ids may connect
  CloudEnv env(broker);
  expectFailure(env, env.linkOptions("agent-1"), "broker refused: not authorized");
}

TEST(CloudLinkFailure, MissingClientCertificateThenFixedWithoutRestart) {
  CloudEnv env;
  CloudSim sim(env.simOptions());
  TestStore queue(env.tmp / "store");
  queue.append(makeRecords(20));
  auto o = env.linkOptions("agent-1");
  const std::filesystem::path real_cert = o.cert_file;
  o.cert_file = env.tmp / "pki" / "agent-1-missing.pem";
  const std::filesystem::path missing = o.cert_file;
  LinkRunner runner(queue, o);
  runner.start();
  ASSERT_TRUE(waitFor([&] { return runner.status().reconnects >= 2; }, 20s));
  auto st = runner.status();
  EXPECT_EQ(st.last_error, "TLS: cannot read client certificate " + missing.string() +
                               ": No such file or directory");
  EXPECT_EQ(st.published, 0u);
  EXPECT_TRUE(sim.messages().empty());
  // The technician puts the certificate in place: the next attempt connects and delivers.
  std::filesystem::copy_file(real_cert, missing);
  ASSERT_TRUE(sim.waitForUnique(20, 20s)) << runner.status().toJson();
  EXPECT_TRUE(runner.status().connected);
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
