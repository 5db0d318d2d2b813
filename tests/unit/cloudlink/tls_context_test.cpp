// The link's client TLS context, which `pms-agent check`'s broker probe uses too: a handshake
// in memory (a BIO pair) against a server holding a test certificate, so host names that do
// not resolve here can be checked exactly as the link and the probe check them.
#include "tls_context.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <string>

#include "psa/store/os/utf8_path.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::cloudlink::detail {
namespace {

struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

SslCtxPtr serverContext(const test::CertFiles& cert) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx.get(), os::pathToUtf8(cert.cert).c_str()), 1);
  EXPECT_EQ(
      SSL_CTX_use_PrivateKey_file(ctx.get(), os::pathToUtf8(cert.key).c_str(), SSL_FILETYPE_PEM),
      1);
  return ctx;
}

// Runs both ends of one handshake; returns the client's verify result (X509_V_OK when the
// handshake completed).
long handshake(SSL_CTX* client_ctx, SSL_CTX* server_ctx, const std::string& sni) {
  SslPtr client(SSL_new(client_ctx));
  SslPtr server(SSL_new(server_ctx));
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_tlsext_host_name(client.get(), sni.c_str());
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 50 && !(client_done && server_done); ++round) {
    if (!client_done) {
      const int rc = SSL_do_handshake(client.get());
      if (rc == 1) {
        client_done = true;
      } else if (SSL_get_error(client.get(), rc) != SSL_ERROR_WANT_READ) {
        break;  // the client gave up (a verify failure)
      }
    }
    if (!server_done) {
      const int rc = SSL_do_handshake(server.get());
      if (rc == 1) {
        server_done = true;
      } else if (SSL_get_error(server.get(), rc) != SSL_ERROR_WANT_READ) {
        break;
      }
    }
  }
  ERR_clear_error();
  const long verify = SSL_get_verify_result(client.get());
  return client_done && verify == X509_V_OK ? X509_V_OK : (verify == X509_V_OK ? -1 : verify);
}

class TlsContextTest : public ::testing::Test {
 protected:
  test::TempDir dir{"psa-tls-context"};
  test::TlsMaterial tls{dir / "pki"};

  SslCtxPtr linkContext(const std::string& host, TlsDiagnostics& diag) {
    const test::CertFiles& me = tls.client("practice-0042");
    auto ctx = buildClientContext(TlsSettings{host, tls.ca().cert, me.cert, me.key}, &diag);
    EXPECT_TRUE(ctx) << ctx.error().message;
    return ctx ? std::move(*ctx) : SslCtxPtr();
  }
};

// RFC 6125 6.4.3: a wildcard that is only part of a label ("broker*") is not honoured. The
// check's old hand-built context accepted it and the link did not; one context now decides.
TEST_F(TlsContextTest, PartialWildcardCertificateIsRefused) {
  SslCtxPtr server = serverContext(tls.serverFor("broker*.psa.test"));
  TlsDiagnostics diag;
  SslCtxPtr link = linkContext("broker1.psa.test", diag);
  ASSERT_TRUE(link);
  EXPECT_EQ(handshake(link.get(), server.get(), "broker1.psa.test"), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(diag.describe("broker1.psa.test"),
            "TLS: hostname mismatch: the broker certificate is not valid for broker1.psa.test");

  // The same certificate passes OpenSSL's default host check: the flag is what refuses it.
  SslCtxPtr plain(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_load_verify_locations(plain.get(), os::pathToUtf8(tls.ca().cert).c_str(), nullptr);
  SSL_CTX_set_verify(plain.get(), SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM_set1_host(SSL_CTX_get0_param(plain.get()), "broker1.psa.test", 0);
  EXPECT_EQ(handshake(plain.get(), server.get(), "broker1.psa.test"), X509_V_OK);
}

TEST_F(TlsContextTest, WholeLabelWildcardAndExactNamesAreAccepted) {
  TlsDiagnostics diag;
  SslCtxPtr link = linkContext("broker1.psa.test", diag);
  ASSERT_TRUE(link);
  SslCtxPtr wildcard = serverContext(tls.serverFor("*.psa.test"));
  EXPECT_EQ(handshake(link.get(), wildcard.get(), "broker1.psa.test"), X509_V_OK);
  SslCtxPtr exact = serverContext(tls.serverFor("broker1.psa.test"));
  EXPECT_EQ(handshake(link.get(), exact.get(), "broker1.psa.test"), X509_V_OK);
  SslCtxPtr other = serverContext(tls.serverFor("broker2.psa.test"));
  EXPECT_EQ(handshake(link.get(), other.get(), "broker1.psa.test"), X509_V_ERR_HOSTNAME_MISMATCH);
}

}  // namespace
}  // namespace psa::cloudlink::detail
