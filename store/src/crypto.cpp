#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>
#include <memory>

#include "psa/store/digest.h"
#include "psa/store/os/per_thread.h"

namespace psa::store::crypto {
namespace {

// Fetched once: implicit fetches in EVP_aes_256_gcm() cost a lookup per init.
EVP_CIPHER* gcmCipher() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

const EVP_MD* sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// One cipher context per thread and direction, reused for every record. The key schedule is
// kept while the key stays the same; each record then only sets its fresh nonce.
struct CachedCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Key key{};
  bool keyed = false;
  ~CachedCtx() {
    EVP_CIPHER_CTX_free(ctx);
    cleanse(key.data(), key.size());
  }
};

struct EncryptTag;
struct DecryptTag;

CachedCtx& encryptCtx() { return os::perThread<CachedCtx, EncryptTag>(); }

CachedCtx& decryptCtx() { return os::perThread<CachedCtx, DecryptTag>(); }

// Nonces come from a per-thread buffer of DRBG output refilled in chunks: one RAND_bytes call
// per ~340 records instead of one per record.
bool nonce(unsigned char* out) {
  struct Pool {
    unsigned char bytes[kNonceBytes * 341];
    size_t used = sizeof bytes;
    ~Pool() { cleanse(bytes, sizeof bytes); }
  };
  Pool& pool = os::perThread<Pool>();
  if (pool.used + kNonceBytes > sizeof pool.bytes) {
    if (!randomBytes(pool.bytes, sizeof pool.bytes)) {
      return false;
    }
    pool.used = 0;
  }
  std::memcpy(out, pool.bytes + pool.used, kNonceBytes);
  cleanse(pool.bytes + pool.used, kNonceBytes);  // a nonce is handed out once
  pool.used += kNonceBytes;
  return true;
}

// Sets key (only when it changed) and IV; `encrypt` selects the direction.
bool init(CachedCtx& c, const Key& key, const unsigned char* iv, bool encrypt) {
  if (c.ctx == nullptr) {
    return false;
  }
  const bool same = c.keyed && CRYPTO_memcmp(c.key.data(), key.data(), key.size()) == 0;
  const unsigned char* k = same ? nullptr : key.data();
  const EVP_CIPHER* cipher = same ? nullptr : gcmCipher();
  const int ok = encrypt ? EVP_EncryptInit_ex2(c.ctx, cipher, k, iv, nullptr)
                         : EVP_DecryptInit_ex2(c.ctx, cipher, k, iv, nullptr);
  if (ok != 1) {
    c.keyed = false;
    return false;
  }
  if (!same) {
    c.key = key;
    c.keyed = true;
  }
  return true;
}

}  // namespace

bool randomBytes(void* out, size_t n) {
  return RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(n)) == 1;
}

bool seal(const Key& key, std::string_view aad, std::string_view plaintext, std::string& out) {
  if (plaintext.size() > static_cast<size_t>(INT_MAX) - 64 || gcmCipher() == nullptr) {
    return false;
  }
  out.resize(kSealOverhead + plaintext.size());
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = kSealVersion;
  unsigned char* iv = p + 1;
  unsigned char* ct = iv + kNonceBytes;
  unsigned char* tag = ct + plaintext.size();
  if (!nonce(iv)) {
    return false;
  }
  EVP_CIPHER_CTX* ctx = encryptCtx().ctx;
  int len = 0;
  if (!init(encryptCtx(), key, iv, true)) {
    return false;
  }
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!plaintext.empty() &&
      EVP_EncryptUpdate(ctx, ct, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1) {
    return false;
  }
  if (EVP_EncryptFinal_ex(ctx, ct + plaintext.size(), &len) != 1) {
    return false;
  }
  return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), tag) == 1;
}

OpenError open(const Key& key, std::string_view aad, std::string_view sealed, std::string& out) {
  if (sealed.size() < kSealOverhead || static_cast<uint8_t>(sealed[0]) != kSealVersion) {
    return OpenError::malformed;
  }
  if (sealed.size() > static_cast<size_t>(INT_MAX) - 64 || gcmCipher() == nullptr) {
    return OpenError::internal;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(sealed.data());
  const unsigned char* iv = p + 1;
  const unsigned char* ct = iv + kNonceBytes;
  const size_t ct_len = sealed.size() - kSealOverhead;
  unsigned char tag[kTagBytes];
  std::memcpy(tag, ct + ct_len, kTagBytes);
  out.resize(ct_len);
  EVP_CIPHER_CTX* ctx = decryptCtx().ctx;
  int len = 0;
  if (!init(decryptCtx(), key, iv, false)) {
    return OpenError::internal;
  }
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1) {
    return OpenError::internal;
  }
  if (ct_len > 0 && EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len, ct,
                                      static_cast<int>(ct_len)) != 1) {
    return OpenError::internal;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag) != 1) {
    return OpenError::internal;
  }
  if (EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + ct_len, &len) != 1) {
    // Never hand out unauthenticated plaintext.
    cleanse(out.data(), out.size());
    out.clear();
    return OpenError::auth_failed;
  }
  return OpenError::ok;
}

Digest hmacSha256(const uint8_t* key, size_t key_len, std::string_view data) {
  Digest d{};
  unsigned int len = 0;
  HMAC(sha256Md(), key, static_cast<int>(key_len),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data(), &len);
  return d;
}

Digest sha256(std::string_view data) { return psa::sha256(data); }

bool hkdf(const Key& ikm, std::string_view salt, std::string_view info, uint8_t* out,
          size_t out_len) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) {
    return false;
  }
  EVP_KDF_CTX* kctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (kctx == nullptr) {
    return false;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                const_cast<uint8_t*>(ikm.data()), ikm.size());
  params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()),
                                                salt.size());
  params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()),
                                                info.size());
  params[4] = OSSL_PARAM_construct_end();
  const bool ok = EVP_KDF_derive(kctx, out, out_len, params) == 1;
  EVP_KDF_CTX_free(kctx);
  return ok;
}

std::string toHex(const uint8_t* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[data[i] >> 4];
    s[2 * i + 1] = digits[data[i] & 0xf];
  }
  return s;
}

bool fromHex(std::string_view hex, uint8_t* out, size_t out_len) {
  if (hex.size() != out_len * 2) {
    return false;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out_len; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return false;
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

void cleanse(void* p, size_t n) { OPENSSL_cleanse(p, n); }

}  // namespace psa::store::crypto
