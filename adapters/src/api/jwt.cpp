#include "psa/adapters/api/jwt.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "psa/store/fatal.h"

namespace psa::adapters::api {

struct JwtSigner::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encode(std::string_view data, bool url) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<unsigned char>(data[k]); };
  auto ch = [&](unsigned v) {
    char c = kB64[v & 63];
    if (url) {
      c = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    return c;
  };
  for (; i + 2 < data.size(); i += 3) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += ch(v >> 18);
    out += ch(v >> 12);
    out += ch(v >> 6);
    out += ch(v);
  }
  if (i + 1 == data.size()) {
    const unsigned v = at(i) << 16;
    out += ch(v >> 18);
    out += ch(v >> 12);
    if (!url) {
      out += "==";
    }
  } else if (i + 2 == data.size()) {
    const unsigned v = (at(i) << 16) | (at(i + 1) << 8);
    out += ch(v >> 18);
    out += ch(v >> 12);
    out += ch(v >> 6);
    if (!url) {
      out += '=';
    }
  }
  return out;
}

size_t curveBytes(JwsAlg alg) { return alg == JwsAlg::es256 ? 32 : 48; }
const EVP_MD* digestFor(JwsAlg alg) {
  return (alg == JwsAlg::rs256 || alg == JwsAlg::es256) ? EVP_sha256() : EVP_sha384();
}
bool isEc(JwsAlg alg) { return alg == JwsAlg::es256 || alg == JwsAlg::es384; }

}  // namespace

std::string base64UrlEncode(std::string_view data) { return encode(data, true); }
std::string base64Encode(std::string_view data) { return encode(data, false); }

Result<std::string> base64UrlDecode(std::string_view text) {
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) {
    return Error(Errc::invalid_input, "base64url: impossible length " + std::to_string(text.size()));
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-' || c == '+') {
      v = 62;
    } else if (c == '_' || c == '/') {
      v = 63;
    } else {
      return Error(Errc::invalid_input, "base64url: bad character at offset " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

Result<JwsAlg> parseJwsAlg(std::string_view name) {
  if (name == "RS384") return JwsAlg::rs384;
  if (name == "ES384") return JwsAlg::es384;
  if (name == "RS256") return JwsAlg::rs256;
  if (name == "ES256") return JwsAlg::es256;
  return Error(Errc::invalid_argument,
               "unsupported JWS algorithm \"" + std::string(name) + "\" (RS384, ES384, RS256, ES256)");
}

std::string_view jwsAlgName(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::rs256: return "RS256";
    case JwsAlg::rs384: return "RS384";
    case JwsAlg::es256: return "ES256";
    case JwsAlg::es384: return "ES384";
  }
  return "?";
}

Result<JwtSigner> JwtSigner::fromPemFile(const std::filesystem::path& path, JwsAlg alg) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::io, "cannot read private key file " + path.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto signer = fromPem(ss.str(), alg);
  if (!signer) {
    return Error(signer.error().code, signer.error().message + " (" + path.string() + ")");
  }
  return signer;
}

Result<JwtSigner> JwtSigner::fromPem(std::string_view pem, JwsAlg alg) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) {
    return Error(Errc::crypto, "BIO_new_mem_buf failed");
  }
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) {
    return Error(Errc::invalid_input, "not a PEM private key (or it is encrypted)");
  }
  auto key = std::make_shared<Key>();
  key->pkey = pkey;
  const int id = EVP_PKEY_get_base_id(pkey);
  if (isEc(alg)) {
    if (id != EVP_PKEY_EC) {
      return Error(Errc::invalid_argument,
                   std::string(jwsAlgName(alg)) + " needs an EC private key, this is not one");
    }
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) != 1) {
      return Error(Errc::invalid_argument, "cannot read the EC key's curve");
    }
    const std::string want = alg == JwsAlg::es256 ? "prime256v1" : "secp384r1";
    if (want != group) {
      return Error(Errc::invalid_argument, std::string(jwsAlgName(alg)) + " needs curve " +
                                               (alg == JwsAlg::es256 ? "P-256" : "P-384") +
                                               ", the key uses " + group);
    }
  } else {
    if (id != EVP_PKEY_RSA && id != EVP_PKEY_RSA_PSS) {
      return Error(Errc::invalid_argument,
                   std::string(jwsAlgName(alg)) + " needs an RSA private key, this is not one");
    }
    if (EVP_PKEY_get_bits(pkey) < 2048) {
      return Error(Errc::invalid_argument, "RSA key shorter than 2048 bits");
    }
  }
  return JwtSigner(std::move(key), alg);
}

Result<std::string> JwtSigner::sign(const json::Value& claims, const std::string& kid) const {
  json::Value header = json::Value::object();
  header.set("alg", json::Value::string(std::string(jwsAlgName(alg_))));
  header.set("typ", json::Value::string("JWT"));
  if (!kid.empty()) {
    header.set("kid", json::Value::string(kid));
  }
  const std::string input =
      base64UrlEncode(json::serialize(header)) + "." + base64UrlEncode(json::serialize(claims));

  EVP_MD_CTX* md = EVP_MD_CTX_new();
  if (md == nullptr) {
    return Error(Errc::crypto, "EVP_MD_CTX_new failed");
  }
  std::vector<unsigned char> sig;
  size_t sig_len = 0;
  bool ok = EVP_DigestSignInit(md, nullptr, digestFor(alg_), nullptr, key_->pkey) == 1 &&
            EVP_DigestSign(md, nullptr, &sig_len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  if (ok) {
    sig.resize(sig_len);
    ok = EVP_DigestSign(md, sig.data(), &sig_len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    sig.resize(sig_len);
  }
  EVP_MD_CTX_free(md);
  if (!ok) {
    return Error(Errc::crypto, "signing the JWT failed");
  }
  std::string raw;
  if (isEc(alg_)) {
    // DER ECDSA-Sig-Value -> JOSE r||s, each left-padded to the curve size.
    const unsigned char* p = sig.data();
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (es == nullptr) {
      return Error(Errc::crypto, "cannot decode the ECDSA signature");
    }
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(es, &r, &s);
    const size_t n = curveBytes(alg_);
    raw.assign(2 * n, '\0');
    const bool ok_r =
        BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n)) ==
        static_cast<int>(n);
    const bool ok_s = BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data() + n),
                                   static_cast<int>(n)) == static_cast<int>(n);
    ECDSA_SIG_free(es);
    if (!ok_r || !ok_s) {
      return Error(Errc::crypto, "ECDSA signature does not fit the curve size");
    }
  } else {
    raw.assign(reinterpret_cast<const char*>(sig.data()), sig.size());
  }
  return input + "." + base64UrlEncode(raw);
}

std::string randomJti() {
  unsigned char buf[16];
  if (RAND_bytes(buf, sizeof buf) != 1) {
    // RAND_bytes failing means the CSPRNG is broken: an unrecoverable environment state.
    fatalInvariant("jwt.rand_bytes");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : buf) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<std::string> makeClientAssertion(const JwtSigner& signer, const ClientAssertion& a) {
  if (a.client_id.empty() || a.audience.empty()) {
    return Error(Errc::invalid_argument, "client assertion needs a client_id and a token URL");
  }
  const int64_t lifetime = std::clamp<int64_t>(a.lifetime_s, 1, 300);
  json::Value claims = json::Value::object();
  claims.set("iss", json::Value::string(a.client_id));
  claims.set("sub", json::Value::string(a.client_id));
  claims.set("aud", json::Value::string(a.audience));
  claims.set("jti", json::Value::string(a.jti.empty() ? randomJti() : a.jti));
  claims.set("iat", json::Value::integer(a.now_s));
  claims.set("exp", json::Value::integer(a.now_s + lifetime));
  return signer.sign(claims, a.kid);
}

}  // namespace psa::adapters::api
