#include "key_ring.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "psa/store/os/durable_file.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/os/system_error.h"

namespace psa::store {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSalt = "psa-store-v1";

}  // namespace

DataKey::~DataKey() {
  crypto::cleanse(raw.data(), raw.size());
  crypto::cleanse(dedupe_mac.data(), dedupe_mac.size());
  crypto::cleanse(name_mac.data(), name_mac.size());
}

bool DataKey::derive(uint32_t id, const crypto::Key& raw_key, DataKey& out) {
  out.id = id;
  out.raw = raw_key;
  return crypto::hkdf(raw_key, kSalt, "dedupe-hmac", out.dedupe_mac.data(), out.dedupe_mac.size()) &&
         crypto::hkdf(raw_key, kSalt, "watermark-name-hmac", out.name_mac.data(),
                      out.name_mac.size()) &&
         crypto::hkdf(raw_key, kSalt, "key-check", out.check.data(), out.check.size());
}

Result<DataKey> DataKey::generate(uint32_t id) {
  crypto::Key raw_key{};
  if (!crypto::randomBytes(raw_key.data(), raw_key.size())) {
    return Error(Errc::internal, "random number generator failed");
  }
  DataKey k;
  const bool ok = derive(id, raw_key, k);
  crypto::cleanse(raw_key.data(), raw_key.size());
  if (!ok) {
    return Error(Errc::internal, "key derivation failed");
  }
  return k;
}

KeyRing::KeyRing(std::vector<DataKey> keys) : keys_(std::move(keys)) {
  std::sort(keys_.begin(), keys_.end(),
            [](const DataKey& a, const DataKey& b) { return a.id < b.id; });
}

const DataKey* KeyRing::find(uint32_t id) const {
  for (const DataKey& k : keys_) {
    if (k.id == id) {
      return &k;
    }
  }
  return nullptr;
}

KeyRing KeyRing::with(const DataKey& key) const {
  std::vector<DataKey> keys = keys_;
  keys.push_back(key);
  return KeyRing(std::move(keys));
}

KeyRing KeyRing::without(uint32_t id) const {
  std::vector<DataKey> keys;
  for (const DataKey& k : keys_) {
    if (k.id != id) {
      keys.push_back(k);
    }
  }
  return KeyRing(std::move(keys));
}

Status checkKeyFileMode(const fs::path& path) { return os::checkSecretFile(path, "key file"); }

Result<std::string> readKeyText(const fs::path& path) {
  std::string stored;
  {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      return Error(Errc::key_file,
                   "cannot read key file " + path.string() + ": " + os::errnoText(errno));
    }
    stored.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  auto unsealed = os::unsealSecretText(stored);
  crypto::cleanse(stored.data(), stored.size());
  if (!unsealed) {
    return Error(Errc::key_file, "key file " + path.string() + ": " + unsealed.error().message);
  }
  return unsealed;
}

Result<KeyRing> loadKeyFile(const fs::path& path) {
  auto text = readKeyText(path);
  if (!text) {
    return std::move(text).error();
  }
  auto ring = parseKeyText(*text, "key file " + path.string());
  crypto::cleanse(text->data(), text->size());
  return ring;
}

Result<KeyRing> parseKeyText(std::string_view text, const std::string& what) {
  std::istringstream in{std::string(text)};
  std::vector<DataKey> keys;
  std::string line;
  size_t line_no = 0;
  const std::string where = what + " line ";
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') {
      continue;
    }
    std::istringstream ls(line);
    std::string word, id_text, hex, extra;
    ls >> word >> id_text >> hex;
    if (word != "key" || id_text.empty() || hex.empty() || (ls >> extra)) {
      return Error(Errc::key_file,
                   where + std::to_string(line_no) + ": expected 'key <id> <64 hex digits>'");
    }
    uint64_t id = 0;
    bool id_ok = id_text.size() <= 9;
    for (char c : id_text) {
      id_ok = id_ok && c >= '0' && c <= '9';
      id = id * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!id_ok || id == 0) {
      return Error(Errc::key_file,
                   where + std::to_string(line_no) + ": key id must be a positive integer");
    }
    crypto::Key raw{};
    if (!crypto::fromHex(hex, raw.data(), raw.size())) {
      return Error(Errc::key_file, where + std::to_string(line_no) +
                                       ": key must be 64 hex digits (32 bytes)");
    }
    for (const DataKey& k : keys) {
      if (k.id == id) {
        return Error(Errc::key_file,
                     where + std::to_string(line_no) + ": duplicate key id " + id_text);
      }
    }
    DataKey k;
    const bool ok = DataKey::derive(static_cast<uint32_t>(id), raw, k);
    crypto::cleanse(raw.data(), raw.size());
    crypto::cleanse(hex.data(), hex.size());
    if (!ok) {
      return Error(Errc::internal, "key derivation failed");
    }
    keys.push_back(std::move(k));
  }
  crypto::cleanse(line.data(), line.size());
  if (keys.empty()) {
    return Error(Errc::key_file, what + " contains no keys");
  }
  return KeyRing(std::move(keys));
}

Status writeKeyFile(const fs::path& path, const KeyRing& ring) {
  std::string text =
      "# pms-agent queue data keys. Secret: keep mode 0600 and back this file up; without it the\n"
      "# queue cannot be decrypted. Format: key <id> <64 hex digits>; the highest id seals new\n"
      "# records.\n";
  for (const DataKey& k : ring.keys()) {
    text += "key " + std::to_string(k.id) + " " + crypto::toHex(k.raw) + "\n";
  }
  auto sealed = os::sealSecretText(text);
  crypto::cleanse(text.data(), text.size());
  if (!sealed) {
    return std::move(sealed).error();
  }
  Status written = os::writeFileDurably(path, *sealed, os::FileAccess::owner_only);
  crypto::cleanse(sealed->data(), sealed->size());
  return written;
}

}  // namespace psa::store
