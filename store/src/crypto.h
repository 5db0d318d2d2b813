// Crypto primitives for the store (OpenSSL 3): AES-256-GCM sealing, HMAC-SHA256, HKDF, SHA-256.
// Private to psa::store. Contexts are cached per thread, so sealing allocates nothing per record.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace psa::store::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
/// version byte + nonce + tag
inline constexpr size_t kSealOverhead = 1 + kNonceBytes + kTagBytes;
inline constexpr uint8_t kSealVersion = 1;

using Key = std::array<uint8_t, kKeyBytes>;
using Digest = std::array<uint8_t, 32>;

/// Cryptographically secure random bytes (RAND_bytes). False only if the DRBG fails.
bool randomBytes(void* out, size_t n);

/// Seals `plaintext` into `out` (replaced): version(1) | nonce(12) | ciphertext | tag(16).
/// A fresh random nonce per call; `aad` is authenticated but not stored. False on an OpenSSL
/// failure (never on input).
bool seal(const Key& key, std::string_view aad, std::string_view plaintext, std::string& out);

enum class OpenError { ok, malformed, auth_failed, internal };
/// Opens a sealed blob; `out` receives the plaintext. auth_failed means the tag did not verify
/// (tampered ciphertext, wrong key, or a row moved to another msg_id).
OpenError open(const Key& key, std::string_view aad, std::string_view sealed, std::string& out);

Digest hmacSha256(const uint8_t* key, size_t key_len, std::string_view data);
Digest sha256(std::string_view data);
/// HKDF-SHA256 with the given salt and info; out_len <= 32*255.
bool hkdf(const Key& ikm, std::string_view salt, std::string_view info, uint8_t* out,
          size_t out_len);

std::string toHex(const uint8_t* data, size_t n);
template <size_t N>
std::string toHex(const std::array<uint8_t, N>& a) {
  return toHex(a.data(), N);
}
/// Parses exactly out_len bytes of hex; false on any other input.
bool fromHex(std::string_view hex, uint8_t* out, size_t out_len);

/// Overwrites memory holding key material (OPENSSL_cleanse).
void cleanse(void* p, size_t n);

}  // namespace psa::store::crypto
