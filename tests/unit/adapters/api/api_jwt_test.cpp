// SMART client assertions: RS384 and ES384 signatures verify with the public key (ES as JOSE
// raw r||s), the claims are what SMART requires (exp <= 5 min, unique jti), and keys that do
// not fit the algorithm are refused with a clear error.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <set>

#include "pms_sim_fixture.h"
#include "psa/adapters/api/jwt.h"
#include "psa/store/json.h"
#include "psa/store/os/utf8_path.h"
#include "test_support.h"

namespace api = psa::adapters::api;
namespace json = psa::json;

namespace {

struct Parts {
  json::Value header;
  json::Value claims;
  std::string signing_input;
  std::string signature;
};

Parts split(const std::string& jwt) {
  const size_t a = jwt.find('.');
  const size_t b = jwt.find('.', a + 1);
  Parts p;
  p.header = *json::parse(*api::base64UrlDecode(jwt.substr(0, a)));
  p.claims = *json::parse(*api::base64UrlDecode(jwt.substr(a + 1, b - a - 1)));
  p.signing_input = jwt.substr(0, b);
  p.signature = *api::base64UrlDecode(jwt.substr(b + 1));
  return p;
}

EVP_PKEY* loadPublic(const std::filesystem::path& pem) {
  BIO* bio = BIO_new_file(psa::os::pathToUtf8(pem).c_str(), "r");
  EVP_PKEY* k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return k;
}

bool verify(EVP_PKEY* key, const std::string& input, std::string sig, bool ec) {
  if (ec) {  // JOSE r||s -> DER
    const size_t n = sig.size() / 2;
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), n, nullptr),
                   BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data() + n), n, nullptr));
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(es, &der);
    sig.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(md, nullptr, EVP_sha384(), nullptr, key) == 1 &&
      EVP_DigestVerify(md, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

class JwtTest : public ::testing::Test {
 protected:
  psa::test::TempDir dir_{"psa-jwt"};
};

TEST_F(JwtTest, Rs384AssertionVerifiesAndHasSmartClaims) {
  auto key = psa::test::makeRsaClientKey(dir_.path(), "rsa");
  auto signer = api::JwtSigner::fromPemFile(key.private_pem, api::JwsAlg::rs384);
  ASSERT_TRUE(signer) << signer.error().message;
  api::ClientAssertion a;
  a.client_id = "agent";
  a.audience = "https://ehr.example/oauth2/token";
  a.kid = "key-1";
  a.now_s = 1795000000;
  a.lifetime_s = 900;  // asked too much: capped at 300
  auto jwt = api::makeClientAssertion(*signer, a);
  ASSERT_TRUE(jwt);
  auto p = split(*jwt);
  EXPECT_EQ(p.header.getString("alg"), "RS384");
  EXPECT_EQ(p.header.getString("typ"), "JWT");
  EXPECT_EQ(p.header.getString("kid"), "key-1");
  EXPECT_EQ(p.claims.getString("iss"), "agent");
  EXPECT_EQ(p.claims.getString("sub"), "agent");
  EXPECT_EQ(p.claims.getString("aud"), "https://ehr.example/oauth2/token");
  EXPECT_EQ(p.claims.getInt("iat"), 1795000000);
  EXPECT_EQ(p.claims.getInt("exp"), 1795000300);
  EXPECT_EQ(p.claims.getString("jti").size(), 32u);
  EVP_PKEY* pub = loadPublic(key.public_pem);
  EXPECT_TRUE(verify(pub, p.signing_input, p.signature, false));
  EXPECT_FALSE(verify(pub, p.signing_input + "x", p.signature, false));
  EVP_PKEY_free(pub);
}

TEST_F(JwtTest, Es384SignatureIsJoseRawAndVerifies) {
  auto key = psa::test::makeEcP384ClientKey(dir_.path(), "ec");
  auto signer = api::JwtSigner::fromPemFile(key.private_pem, api::JwsAlg::es384);
  ASSERT_TRUE(signer) << signer.error().message;
  api::ClientAssertion a;
  a.client_id = "agent";
  a.audience = "https://ehr.example/token";
  a.now_s = 1795000000;
  auto jwt = api::makeClientAssertion(*signer, a);
  ASSERT_TRUE(jwt);
  auto p = split(*jwt);
  EXPECT_EQ(p.header.getString("alg"), "ES384");
  EXPECT_EQ(p.header.find("kid"), nullptr);
  EXPECT_EQ(p.signature.size(), 96u);
  EXPECT_EQ(p.claims.getInt("exp") - p.claims.getInt("iat"), 240);
  EVP_PKEY* pub = loadPublic(key.public_pem);
  EXPECT_TRUE(verify(pub, p.signing_input, p.signature, true));
  EVP_PKEY_free(pub);
}

TEST_F(JwtTest, EveryAssertionHasAFreshJti) {
  auto key = psa::test::makeEcP384ClientKey(dir_.path(), "ec");
  auto signer = *api::JwtSigner::fromPemFile(key.private_pem, api::JwsAlg::es384);
  std::set<std::string> seen;
  api::ClientAssertion a;
  a.client_id = "agent";
  a.audience = "https://x/token";
  for (int i = 0; i < 200; ++i) {
    seen.insert(split(*api::makeClientAssertion(signer, a)).claims.getString("jti"));
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST_F(JwtTest, KeyThatDoesNotFitTheAlgorithmIsRefused) {
  auto rsa = psa::test::makeRsaClientKey(dir_.path(), "rsa");
  auto ec = psa::test::makeEcP384ClientKey(dir_.path(), "ec");
  auto r1 = api::JwtSigner::fromPemFile(rsa.private_pem, api::JwsAlg::es384);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().message,
            "ES384 needs an EC private key, this is not one (" + rsa.private_pem.string() + ")");
  auto r2 = api::JwtSigner::fromPemFile(ec.private_pem, api::JwsAlg::rs384);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().message,
            "RS384 needs an RSA private key, this is not one (" + ec.private_pem.string() + ")");
  auto r3 = api::JwtSigner::fromPemFile(ec.private_pem, api::JwsAlg::es256);
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error().message,
            "ES256 needs curve P-256, the key uses secp384r1 (" + ec.private_pem.string() + ")");
  auto r4 = api::JwtSigner::fromPemFile(rsa.public_pem, api::JwsAlg::rs384);
  ASSERT_FALSE(r4);
  EXPECT_EQ(r4.error().message,
            "not a PEM private key (or it is encrypted) (" + rsa.public_pem.string() + ")");
  auto r5 = api::JwtSigner::fromPemFile(dir_ / "missing.pem", api::JwsAlg::rs384);
  ASSERT_FALSE(r5);
  EXPECT_TRUE(r5.error().is(psa::Errc::io));
  auto r6 = api::parseJwsAlg("HS256");
  ASSERT_FALSE(r6);
  EXPECT_EQ(r6.error().message, "unsupported JWS algorithm \"HS256\" (RS384, ES384, RS256, ES256)");
}

TEST(Base64Url, RoundTripsAndRejectsBadInput) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba",
                                                       "foobar", std::string("\xff\xfe\x00", 3)}) {
    EXPECT_EQ(*api::base64UrlDecode(api::base64UrlEncode(s)), s);
  }
  EXPECT_EQ(api::base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(api::base64Encode("\xfb\xff"), "+/8=");
  auto bad = api::base64UrlDecode("ab$d");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "base64url: bad character at offset 2");
  auto len = api::base64UrlDecode("abcde");
  ASSERT_FALSE(len);
  EXPECT_EQ(len.error().message, "base64url: impossible length 5");
}

}  // namespace
