#include "psa/adapters/hl7/identity.h"

#include <openssl/sha.h>

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
  std::array<uint8_t, 32> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
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
