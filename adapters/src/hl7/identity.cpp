#include "psa/adapters/hl7/identity.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <memory>

#include "psa/store/os/per_thread.h"

namespace psa::adapters::hl7 {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void appendPrefixed(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out.push_back(':');
  out.append(value);
}

void appendHex(std::string& out, const std::array<uint8_t, 32>& digest) {
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
}

}  // namespace

std::array<uint8_t, 32> sha256(std::string_view bytes) {
  // OpenSSL 3's one-shot SHA256() looks the algorithm up on every call (about a microsecond);
  // fetch it once and keep one context per thread.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Ctx {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> p{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  };
  auto& ctx = os::perThread<Ctx>().p;
  std::array<uint8_t, 32> digest{};
  unsigned int len = 0;
  if (md == nullptr || !ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1 || len != digest.size()) {
    // Not expected with a working libcrypto; fall back to the one-shot call.
    SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  }
  return digest;
}

std::string sha256Hex(std::string_view bytes) {
  std::string out;
  out.reserve(64);
  appendHex(out, sha256(bytes));
  return out;
}

std::string dedupeIdentity(const Message& msg) {
  std::string_view msh3 = msg.field(0, 3).raw;
  std::string_view msh4 = msg.field(0, 4).raw;
  std::string_view msh10 = msg.field(0, 10).raw;
  std::string out;
  out.reserve(6 + 3 * 8 + msh3.size() + msh4.size() + msh10.size() + 64);
  out += "hl7v2:";
  appendPrefixed(out, msh3);
  appendPrefixed(out, msh4);
  appendPrefixed(out, msh10);
  appendHex(out, sha256(msg.content()));
  return out;
}

}  // namespace psa::adapters::hl7
