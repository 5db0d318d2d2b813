// MLLP over TLS on real sockets with real certificates: server-only TLS, required client
// certificates, and the ways a client fails (no TLS, wrong CA, no or foreign client cert).
#include <gtest/gtest.h>

#include "mllp_harness.h"
#include "tls_material.h"

namespace psa::test {
namespace {

namespace hl7 = psa::adapters::hl7;
using namespace std::chrono_literals;

std::string tlsConfig(const TlsMaterial& pki, bool client_certs) {
  std::string cfg = R"({"tls":{"cert_file":")" + pki.server().cert.generic_string() +
                    R"(","key_file":")" + pki.server().key.generic_string() + "\"";
  if (client_certs) {
    cfg += R"(,"client_ca_file":")" + pki.ca().cert.generic_string() + "\"";
  }
  return cfg + "}}";
}

class MllpTls : public ::testing::Test {
 protected:
  TempDir dir_{"psa-mllp-tls"};
  TlsMaterial pki_{dir_.path()};
};

TEST_F(MllpTls, ServerCertificateOnly) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(tlsConfig(pki_, false)));
  EXPECT_TRUE(h.source().status().detail.find("tls")->asBool());
  auto o = h.clientOptions();
  o.tls = true;
  o.ca_file = pki_.ca().cert;
  auto c = hl7::MllpClient::connect(o);
  ASSERT_TRUE(c) << c.error().describe();
  auto ack = c.value()->exchange(adtMessage("TLS0001"));
  ASSERT_TRUE(ack) << ack.error().describe();
  EXPECT_NE(ack->find("\rMSA|AA|TLS0001\r"), std::string::npos);
  // Pipelined over TLS too.
  std::string burst;
  for (int i = 0; i < 100; ++i) {
    burst += "\x0b" + adtMessage("TLSP" + std::to_string(i)) + "\x1c\r";
  }
  ASSERT_TRUE(c.value()->sendRaw(burst));
  for (int i = 0; i < 100; ++i) {
    auto a = c.value()->receive();
    ASSERT_TRUE(a) << a.error().describe();
    auto s = hl7::summarizeAck(*a);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->control_id, "TLSP" + std::to_string(i));
  }
  c.value()->close();
  EXPECT_EQ(h.contents().queued_total, 101u);
}

TEST_F(MllpTls, ClientVerifiesTheServer) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(tlsConfig(pki_, false)));
  auto o = h.clientOptions();
  o.tls = true;
  o.ca_file = pki_.otherCa().cert;
  auto c = hl7::MllpClient::connect(o);
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().is(Errc::unauthorized));
  EXPECT_NE(c.error().message.find("certificate verify failed"), std::string::npos)
      << c.error().message;
  o.ca_file = pki_.ca().cert;
  o.server_name = "wrong-host.example";
  auto c2 = hl7::MllpClient::connect(o);
  ASSERT_FALSE(c2);
  EXPECT_NE(c2.error().message.find("hostname mismatch"), std::string::npos)
      << c2.error().message;
}

TEST_F(MllpTls, PlainClientOnTlsListenerGetsNothingAndOthersAreServed) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(tlsConfig(pki_, false)));
  auto plain = h.connect();
  auto r = plain->exchange(adtMessage("PLAIN1"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::closed) || r.error().is(Errc::io)) << r.error().describe();
  ASSERT_TRUE(waitFor([&] { return h.counter("tls_failures") == 1; }, 5s));
  auto o = h.clientOptions();
  o.tls = true;
  o.ca_file = pki_.ca().cert;
  auto c = hl7::MllpClient::connect(o);
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_TRUE(c.value()->exchange(adtMessage("TLS0002")));
  c.value()->close();
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 1u);
  EXPECT_EQ(stored.queued.count("PLAIN1"), 0u);
}

TEST_F(MllpTls, RequiredClientCertificate) {
  MllpHarness h;
  h.startOrDie(MllpHarness::config(tlsConfig(pki_, true)));
  EXPECT_TRUE(h.source().status().detail.find("client_certificates")->asBool());
  auto o = h.clientOptions();
  o.tls = true;
  o.ca_file = pki_.ca().cert;
  o.timeout = 3s;

  // No client certificate: refused (at the handshake, or on the first read under TLS 1.3).
  auto anon = hl7::MllpClient::connect(o);
  if (anon) {
    auto r = anon.value()->exchange(adtMessage("ANON1"));
    EXPECT_FALSE(r);
  }
  // A certificate from another CA: refused.
  const auto& foreign = pki_.clientFromOtherCa("pms-foreign");
  o.cert_file = foreign.cert;
  o.key_file = foreign.key;
  auto bad = hl7::MllpClient::connect(o);
  if (bad) {
    auto r = bad.value()->exchange(adtMessage("FOREIGN1"));
    EXPECT_FALSE(r);
  }
  ASSERT_TRUE(waitFor([&] { return h.counter("tls_failures") == 2; }, 5s));

  // The PMS's certificate from the right CA: served.
  const auto& good = pki_.client("pms-server-01");
  o.cert_file = good.cert;
  o.key_file = good.key;
  auto c = hl7::MllpClient::connect(o);
  ASSERT_TRUE(c) << c.error().describe();
  auto ack = c.value()->exchange(adtMessage("MTLS0001"));
  ASSERT_TRUE(ack) << ack.error().describe();
  EXPECT_NE(ack->find("\rMSA|AA|MTLS0001\r"), std::string::npos);
  c.value()->close();
  auto stored = h.contents();
  EXPECT_EQ(stored.queued_total, 1u);
  EXPECT_EQ(stored.queued.count("MTLS0001"), 1u);
}

TEST_F(MllpTls, UnusableTlsFilesFailCreateWithTheFileNamed) {
  MllpHarness h;
  const std::string missing = (dir_.path() / "nope.pem").generic_string();
  EXPECT_EQ(h.start(MllpHarness::config(R"({"tls":{"cert_file":")" + missing + R"(","key_file":")" +
                                        pki_.server().key.generic_string() + "\"}}")),
            "tls.cert_file " + missing + ": No such file or directory");
  // A key that belongs to another certificate.
  EXPECT_EQ(
      h.start(MllpHarness::config(R"({"tls":{"cert_file":")" + pki_.server().cert.generic_string() +
                                  R"(","key_file":")" + pki_.ca().key.generic_string() + "\"}}")),
      "tls.key_file " + pki_.ca().key.generic_string() + ": key values mismatch");
}

}  // namespace
}  // namespace psa::test
