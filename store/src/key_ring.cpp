#include "key_ring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace psa::store {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSalt = "psa-store-v1";

std::string octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

std::string errnoText(int e) { return std::strerror(e); }

bool writeAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

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

Status checkKeyFileMode(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error(Errc::key_file,
                 "cannot stat key file " + path.string() + ": " + errnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Errc::key_file, "key file " + path.string() + " is not a regular file");
  }
  const unsigned mode = st.st_mode & 07777;
  if ((mode & 0044) != 0) {
    return Error(Errc::key_file, "key file " + path.string() + " is readable by group/others (mode " +
                                     octal(mode) + "); run: chmod 600 " + path.string());
  }
  if ((mode & 0022) != 0) {
    return Error(Errc::key_file, "key file " + path.string() + " is writable by group/others (mode " +
                                     octal(mode) + "); run: chmod 600 " + path.string());
  }
  return {};
}

Result<KeyRing> loadKeyFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::key_file, "cannot read key file " + path.string() + ": " + errnoText(errno));
  }
  std::vector<DataKey> keys;
  std::string line;
  size_t line_no = 0;
  const std::string where = "key file " + path.string() + " line ";
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
    return Error(Errc::key_file, "key file " + path.string() + " contains no keys");
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
  fs::path tmp = path;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    crypto::cleanse(text.data(), text.size());
    return Error(Errc::io, "cannot create " + tmp.string() + ": " + errnoText(errno));
  }
  const bool ok = ::fchmod(fd, 0600) == 0 && writeAll(fd, text) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  crypto::cleanse(text.data(), text.size());
  if (!ok) {
    ::unlink(tmp.c_str());
    return Error(Errc::io, "cannot write " + tmp.string() + ": " + errnoText(saved));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return Error(Errc::io, "cannot rename " + tmp.string() + " to " + path.string() + ": " +
                               errnoText(e));
  }
  fs::path dir = path.parent_path();
  if (dir.empty()) {
    dir = ".";
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const bool synced = ::fsync(dfd) == 0;
    ::close(dfd);
    if (!synced) {
      return Error(Errc::io, "cannot fsync directory " + dir.string());
    }
  }
  return {};
}

}  // namespace psa::store
