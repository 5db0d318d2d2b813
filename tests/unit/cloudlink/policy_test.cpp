#include "psa/cloudlink/policy.h"

#include <gtest/gtest.h>

namespace psa::cloudlink {
namespace {

using std::chrono::milliseconds;

TEST(PubackPolicy, SuccessCodesDeliver) {
  EXPECT_EQ(classifyPuback(0x00), PubackAction::delivered);
  EXPECT_EQ(classifyPuback(0x10), PubackAction::delivered);  // no matching subscribers
  EXPECT_EQ(classifyPuback(0x7F), PubackAction::delivered);
}

TEST(PubackPolicy, TransientCodesRetry) {
  for (int code : {0x80, 0x83, 0x89, 0x91, 0x97}) {
    EXPECT_EQ(classifyPuback(code), PubackAction::retry) << code;
  }
}

TEST(PubackPolicy, PermanentCodesDeadLetter) {
  for (int code : {0x87, 0x90, 0x95, 0x99, 0x9A, 0x9B}) {
    EXPECT_EQ(classifyPuback(code), PubackAction::dead_letter) << code;
  }
}

TEST(PubackPolicy, UnknownErrorCodesRetryRatherThanDrop) {
  EXPECT_EQ(classifyPuback(0xA5), PubackAction::retry);
  EXPECT_EQ(classifyPuback(0xFF), PubackAction::retry);
}

TEST(PubackPolicy, ReasonsAreWords) {
  EXPECT_EQ(pubackReason(0x97), "puback 0x97 quota exceeded");
  EXPECT_EQ(pubackReason(0x87), "puback 0x87 not authorized");
  EXPECT_EQ(pubackReason(0x83), "puback 0x83 implementation specific error");
  EXPECT_EQ(pubackReason(0xA5), "puback 0xA5 reason 0xA5");
  EXPECT_EQ(reasonName(0x99), "payload format invalid");
}

TEST(Backoff, GrowsExponentiallyWithJitterUpToTheCap) {
  Backoff b(milliseconds(1000), milliseconds(300000), 42);
  int64_t expected_max = 1000;
  for (int i = 0; i < 20; ++i) {
    const auto d = b.next().count();
    EXPECT_GE(d, expected_max / 2) << "attempt " << i;
    EXPECT_LE(d, expected_max) << "attempt " << i;
    expected_max = std::min<int64_t>(expected_max * 2, 300000);
  }
  EXPECT_EQ(b.failures(), 20u);
  // Still capped after many failures (no overflow).
  b.setFailures(60);
  for (int i = 0; i < 5; ++i) {
    const auto d = b.next().count();
    EXPECT_GE(d, 150000);
    EXPECT_LE(d, 300000);
  }
}

TEST(Backoff, ResetStartsAgainAtTheInitialDelay) {
  Backoff b(milliseconds(1000), milliseconds(300000), 7);
  for (int i = 0; i < 10; ++i) {
    (void)b.next();
  }
  b.reset();
  const auto d = b.next().count();
  EXPECT_GE(d, 500);
  EXPECT_LE(d, 1000);
}

TEST(Backoff, JitterSpreadsAttempts) {
  // Two agents with different seeds do not retry in lockstep.
  Backoff a(milliseconds(1000), milliseconds(300000), 1);
  Backoff b(milliseconds(1000), milliseconds(300000), 2);
  int differ = 0;
  for (int i = 0; i < 10; ++i) {
    differ += a.next() != b.next() ? 1 : 0;
  }
  EXPECT_GE(differ, 8);
}

TEST(BrokerUrl, ParsesHostAndPort) {
  auto a = parseBrokerUrl("mqtts://cloud.example:8883");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "cloud.example");
  EXPECT_EQ(a->port, 8883);
  auto b = parseBrokerUrl("mqtts://cloud.example");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 8883);
  auto c = parseBrokerUrl("mqtts://[::1]:9000/");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 9000);
  auto d = parseBrokerUrl("mqtts://127.0.0.1:1");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->host, "127.0.0.1");
  EXPECT_EQ(d->port, 1);
}

TEST(BrokerUrl, RejectsEverythingElseWithTheReason) {
  struct Case {
    const char* url;
    const char* message;
  };
  const Case cases[] = {
      {"mqtt://cloud.example:1883",
       "only mqtts:// URLs are supported (TLS is mandatory): mqtt://cloud.example:1883"},
      {"https://cloud.example", "only mqtts:// URLs are supported (TLS is mandatory): https://cloud.example"},
      {"cloud.example:8883", "expected mqtts://host[:port], got: cloud.example:8883"},
      {"mqtts://", "missing host in URL: mqtts://"},
      {"mqtts://:8883", "missing host in URL: mqtts://:8883"},
      {"mqtts://host:", "empty port in URL: mqtts://host:"},
      {"mqtts://host:0", "port out of range 1..65535 in URL: mqtts://host:0"},
      {"mqtts://host:65536", "port out of range 1..65535 in URL: mqtts://host:65536"},
      {"mqtts://host:99999999999", "invalid port in URL: mqtts://host:99999999999"},
      {"mqtts://host:12a", "invalid port in URL: mqtts://host:12a"},
      {"mqtts://host/path", "URL must be mqtts://host[:port] without path or user: mqtts://host/path"},
      {"mqtts://user@host", "URL must be mqtts://host[:port] without path or user: mqtts://user@host"},
      {"mqtts://[::1", "unterminated IPv6 literal in URL: mqtts://[::1"},
      {"mqtts://[::1]x", "unexpected text after IPv6 literal: mqtts://[::1]x"},
      {"mqtts://ho st:1", "invalid character in host: mqtts://ho st:1"},
  };
  for (const Case& c : cases) {
    auto r = parseBrokerUrl(c.url);
    ASSERT_FALSE(r.ok()) << c.url;
    EXPECT_TRUE(r.error().is(Errc::invalid_argument)) << c.url;
    EXPECT_EQ(r.error().message, c.message) << c.url;
  }
}

}  // namespace
}  // namespace psa::cloudlink

namespace psa::cloudlink {
namespace {

TEST(TlsCauseMemory, GenericTlsFailureShowsTheLastSpecificCauseOfItsEndpoint) {
  TlsCauseMemory m;
  const std::string a = "broker-a:8883";
  const std::string b = "broker-b:8883";
  EXPECT_EQ(m.explain(a, "TLS: protocol error"), "TLS: protocol error") << "nothing known yet";
  const std::string cause = "TLS: the broker rejected our client certificate (alert: unknown ca)";
  EXPECT_EQ(m.explain(a, cause), cause);
  EXPECT_EQ(m.explain(a, "TLS: protocol error"),
            "TLS: protocol error (the previous attempt said: " + cause + ")");
  EXPECT_EQ(m.explain(a, "TLS: handshake failed"),
            "TLS: handshake failed (the previous attempt said: " + cause + ")");
  EXPECT_EQ(m.explain(b, "TLS: protocol error"), "TLS: protocol error") << "per endpoint";
  EXPECT_EQ(m.explain(a, "connection refused by broker-a:8883"),
            "connection refused by broker-a:8883")
      << "other failures pass through";
  EXPECT_EQ(m.explain(a, "TLS: protocol error"),
            "TLS: protocol error (the previous attempt said: " + cause + ")")
      << "and do not erase the TLS cause";
  m.forget(a);  // connected since: the old cause no longer applies
  EXPECT_EQ(m.explain(a, "TLS: protocol error"), "TLS: protocol error");
}

}  // namespace
}  // namespace psa::cloudlink

namespace psa::cloudlink {
namespace {

TEST(ServerReference, TheFirstEndpointInTheFormsBrokersSend) {
  auto a = parseServerReference("node-2.example:8884");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->host, "node-2.example");
  EXPECT_EQ(a->port, 8884);
  auto b = parseServerReference("node-3.example");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->port, 8883);
  auto c = parseServerReference("  [fd00::7]:9000 node-4.example:8883");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "fd00::7");
  EXPECT_EQ(c->port, 9000);
  auto d = parseServerReference("mqtts://node-5.example:8885");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->host, "node-5.example");
}

TEST(ServerReference, NothingButTlsEndpoints) {
  EXPECT_FALSE(parseServerReference(""));
  EXPECT_FALSE(parseServerReference("   "));
  EXPECT_FALSE(parseServerReference("mqtt://plain.example:1883"));
  EXPECT_FALSE(parseServerReference("ws://x.example/mqtt"));
  EXPECT_FALSE(parseServerReference("host/path"));
  EXPECT_FALSE(parseServerReference("user@host:8883"));
}

}  // namespace
}  // namespace psa::cloudlink
