#include "psa/store/digest.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

#include "psa/store/os/per_thread.h"

namespace psa {

std::array<uint8_t, 32> sha256(std::string_view bytes) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Ctx {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> p{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  };
  auto& ctx = os::perThread<Ctx>().p;
  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  if (md == nullptr || !ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1 || len != digest.size()) {
    // Not expected with a working libcrypto; fall back to the one-shot call.
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  }
  return digest;
}

void appendHex(std::string& out, const uint8_t* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0f]);
  }
}

std::string sha256Hex(std::string_view bytes) {
  const auto digest = sha256(bytes);
  std::string out;
  out.reserve(64);
  appendHex(out, digest.data(), digest.size());
  return out;
}

}  // namespace psa
