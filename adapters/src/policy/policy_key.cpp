#include "psa/adapters/policy/policy_key.h"

#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "psa/store/digest.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/os/secret_file.h"

namespace psa::adapters::policy {
namespace {

constexpr size_t kKeyBytes = 32;

bool hexValue(char c, int& v) {
  if (c >= '0' && c <= '9') {
    v = c - '0';
  } else if (c >= 'a' && c <= 'f') {
    v = c - 'a' + 10;
  } else if (c >= 'A' && c <= 'F') {
    v = c - 'A' + 10;
  } else {
    return false;
  }
  return true;
}

Result<std::string> decodeKey(std::string text, const std::filesystem::path& file) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  std::string key;
  if (text.size() == kKeyBytes * 2) {
    for (size_t i = 0; i < text.size(); i += 2) {
      int hi = 0, lo = 0;
      if (!hexValue(text[i], hi) || !hexValue(text[i + 1], lo)) {
        break;
      }
      key.push_back(static_cast<char>(hi * 16 + lo));
    }
  }
  if (key.size() != kKeyBytes) {
    return Error(Errc::key_file, "policy key file " + file.string() +
                                     " does not hold a key (64 hex digits expected)");
  }
  return key;
}

}  // namespace

Result<std::string> loadOrCreatePolicyKey(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    PSA_TRY(os::checkSecretFile(file, "policy key file"));
    std::ifstream in(file, std::ios::binary);
    std::ostringstream ss;
    if (!in || !(ss << in.rdbuf())) {
      return Error(Errc::io, "cannot read policy key file " + file.string());
    }
    auto plain = os::unsealSecretText(ss.str());
    if (!plain) {
      return plain.error();
    }
    return decodeKey(std::move(plain).value(), file);
  }
  unsigned char raw[kKeyBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    return Error(Errc::internal, "random number generator failed");
  }
  std::string hex;
  appendHex(hex, raw, sizeof raw);
  auto sealed = os::sealSecretText(hex + "\n");
  if (!sealed) {
    return sealed.error();
  }
  PSA_TRY(os::writeFileDurably(file, *sealed, os::FileAccess::owner_only));
  return decodeKey(hex, file);
}

}  // namespace psa::adapters::policy
