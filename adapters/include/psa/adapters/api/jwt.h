// JSON Web Tokens for SMART Backend Services (pms-interfaces.md §0.1): the client assertion,
// signed RS384 or ES384 (also RS256/ES256) with OpenSSL. ES signatures are JOSE raw r||s.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "psa/store/json.h"
#include "psa/store/result.h"

namespace psa::adapters::api {

/// base64url without padding (RFC 7515 §2).
std::string base64UrlEncode(std::string_view data);
/// Decodes base64url with or without padding. Errors: Errc::invalid_input.
Result<std::string> base64UrlDecode(std::string_view text);
/// Standard base64 with padding (HTTP Basic).
std::string base64Encode(std::string_view data);

enum class JwsAlg { rs256, rs384, es256, es384 };

/// "RS384" -> JwsAlg::rs384 ... Errors: Errc::invalid_argument for anything else.
Result<JwsAlg> parseJwsAlg(std::string_view name);
std::string_view jwsAlgName(JwsAlg alg);

/// A private key plus the algorithm it signs with. Immutable and thread-safe once built.
class JwtSigner {
 public:
  /// Loads a PEM private key (PKCS#8 or traditional RSA/EC) and checks it fits `alg`
  /// (RS*: RSA >= 2048 bits; ES256: P-256; ES384: P-384). Errors: Errc::io (unreadable file),
  /// Errc::invalid_input (not a private key), Errc::invalid_argument (key does not fit alg).
  static Result<JwtSigner> fromPemFile(const std::filesystem::path& path, JwsAlg alg);
  static Result<JwtSigner> fromPem(std::string_view pem, JwsAlg alg);

  /// header.claims.signature with header {"alg", "typ": "JWT"} plus `kid` when non-empty.
  /// Errors: Errc::crypto when OpenSSL fails.
  Result<std::string> sign(const json::Value& claims, const std::string& kid = {}) const;

  JwsAlg alg() const { return alg_; }

 private:
  struct Key;
  JwtSigner(std::shared_ptr<const Key> key, JwsAlg alg) : key_(std::move(key)), alg_(alg) {}
  std::shared_ptr<const Key> key_;
  JwsAlg alg_;
};

/// The SMART client assertion claims: iss = sub = client_id, aud = token URL, jti unique,
/// iat = now, exp = now + lifetime (capped at 300 s as SMART requires).
struct ClientAssertion {
  std::string client_id;
  std::string audience;
  std::string kid;
  int64_t now_s = 0;
  int64_t lifetime_s = 240;
  std::string jti;  ///< empty: a fresh random one (randomJti())
};

/// Builds and signs the assertion. Errors as JwtSigner::sign; Errc::invalid_argument when
/// client_id or audience is empty.
Result<std::string> makeClientAssertion(const JwtSigner& signer, const ClientAssertion& a);

/// 128 random bits (OpenSSL RAND_bytes) as 32 lowercase hex digits.
std::string randomJti();

}  // namespace psa::adapters::api
