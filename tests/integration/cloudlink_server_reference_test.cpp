// A broker that sends the link elsewhere (MQTT 5 reason codes 0x9C "use another server" and
// 0x9D "server moved" with a Server Reference). No broker here does that on demand, so the
// configured endpoint is the scripted FakeMqttBroker; the referenced one is a real mosquitto.
// The link follows a reference for that connection only, to a host whose certificate
// verifies against the same ca_file, and comes back to its configured endpoint afterwards.
// (A DISCONNECT 0x9C/0x9D cannot be followed: libmosquitto 2.0.11 frees a DISCONNECT's
// properties before its callback sees them, so the reference never reaches us; the link then
// fails over to its next configured endpoint.)
#include <gtest/gtest.h>

#include "cloudlink_harness.h"
#include "fake_mqtt_broker.h"
#include "test_store.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

struct MovedEnv {
  explicit MovedEnv(MosquittoOptions target = {})
      : env(std::move(target), "psa-moved"), fake(env.tls.server(), env.tls.ca().cert) {}

  cloudlink::CloudLinkOptions linkOptions() {
    auto o = env.linkOptions("agent-1");
    o.url = fake.url();  // the configured endpoint: the one that points elsewhere
    return o;
  }
  std::string reference() const { return "localhost:" + std::to_string(env.broker->port()); }

  CloudEnv env;
  FakeMqttBroker fake;
};

TEST(CloudLinkServerReference, ServerMovedIsFollowedForThatConnectionOnly) {
  MovedEnv m;
  m.fake.setConnectAnswer({0x9D, 0, m.reference()});
  CloudSim sim(m.env.simOptions());
  TestStore queue(m.env.tmp / "store");
  auto ids = queue.append(makeRecords(20));
  LinkRunner runner(queue, m.linkOptions());
  runner.start();
  ASSERT_TRUE(sim.waitForUnique(20, 30s)) << runner.status().toJson();
  ASSERT_TRUE(waitFor([&] { return queue.counts().delivered == 20; }, 10s));
  EXPECT_EQ(runner.status().url, m.env.broker->url()) << "status shows the endpoint in use";
  EXPECT_NE(runner.status().last_error.find("the broker points to " + m.reference()),
            std::string::npos)
      << runner.status().toJson();
  EXPECT_TRUE(m.fake.publishes().empty());

  // That connection ends: the next attempt goes to the configured endpoint again (which moves
  // the link on again: the reference is never remembered beyond one connection).
  const int before = m.fake.connections();
  m.env.broker->stop();
  ASSERT_TRUE(waitFor([&] { return m.fake.connections() > before; }, 30s))
      << runner.status().toJson();
  m.env.broker->start();
  queue.append(makeRecords(5, 256, "after"));
  ASSERT_TRUE(sim.waitForUnique(25, 30s)) << runner.status().toJson();
  EXPECT_TRUE(runner.stop());
}

TEST(CloudLinkServerReference, AReferencedHostWhoseCertificateDoesNotVerifyGetsNothing) {
  // The referenced broker's certificate is signed by our CA but for another host name.
  MosquittoOptions wrong;
  MovedEnv m(wrong);
  m.env.broker.reset();
  MosquittoOptions o;
  o.certfile = m.env.tls.serverWrongHost().cert;
  o.keyfile = m.env.tls.serverWrongHost().key;
  m.env.broker = MosquittoBroker::withMaterial(m.env.tls, m.env.tmp / "wrong-host", o);
  m.fake.setConnectAnswer({0x9D, 0, m.reference()});
  TestStore queue(m.env.tmp / "store");
  queue.append(makeRecords(5));
  LinkRunner runner(queue, m.linkOptions());
  runner.start();
  // The redirected attempt fails verification; the link comes back to its configured endpoint
  // (which points it away again) and never publishes anywhere.
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string e = runner.status().last_error;
        return e.find("TLS") != std::string::npos && m.fake.connections() >= 2;
      },
      30s))
      << runner.status().toJson();
  EXPECT_EQ(runner.status().connects, 0u);
  EXPECT_EQ(runner.status().published, 0u);
  EXPECT_EQ(queue.counts().pending, 5u);
  EXPECT_TRUE(runner.stop());
}

}  // namespace
}  // namespace psa::test
