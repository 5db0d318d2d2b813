// KeyRing: the data keys of the store and the key file that holds them.
//
// Key file format (text, mode 0600, written atomically: tmp + fsync + rename + fsync dir):
//   # comment lines and blank lines are ignored
//   key <id> <64 hex digits>      one line per key; id is a positive decimal integer
// The highest id is the current key (new records are sealed with it); older keys stay until no
// row needs them. Each raw key seals payloads directly (AES-256-GCM); HKDF-derived sub-keys
// serve the dedupe HMAC, watermark-name HMAC and a key check value stored in the database,
// so a wrong key file is recognised at open instead of as a flood of tag failures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "crypto.h"
#include "psa/store/result.h"

namespace psa::store {

struct DataKey {
  uint32_t id = 0;
  crypto::Key raw{};         ///< AES-256-GCM key for payloads, dead letters, watermarks
  crypto::Key dedupe_mac{};  ///< HMAC key for dedupe identities
  crypto::Key name_mac{};    ///< HMAC key for watermark names
  std::array<uint8_t, 16> check{};  ///< key check value (stored in the database)

  DataKey() = default;
  DataKey(const DataKey&) = default;
  DataKey& operator=(const DataKey&) = default;
  ~DataKey();

  /// Builds a key with derived sub-keys. False if OpenSSL fails.
  static bool derive(uint32_t id, const crypto::Key& raw, DataKey& out);
  /// A new random key.
  static Result<DataKey> generate(uint32_t id);
};

/// An immutable set of keys; shared between threads as shared_ptr<const KeyRing>.
class KeyRing {
 public:
  KeyRing() = default;
  explicit KeyRing(std::vector<DataKey> keys);

  bool empty() const { return keys_.empty(); }
  /// The newest key (highest id). Precondition: !empty().
  const DataKey& current() const { return keys_.back(); }
  const DataKey* find(uint32_t id) const;
  const std::vector<DataKey>& keys() const { return keys_; }
  uint32_t maxId() const { return keys_.empty() ? 0 : keys_.back().id; }

  /// A copy with `key` added / with key `id` removed.
  KeyRing with(const DataKey& key) const;
  KeyRing without(uint32_t id) const;

 private:
  std::vector<DataKey> keys_;  // sorted by id
};

using KeyRingPtr = std::shared_ptr<const KeyRing>;

/// Refuses a key file that group or others may read or write (Errc::key_file with the chmod
/// command that fixes it), or that is not a regular file.
Status checkKeyFileMode(const std::filesystem::path& path);

/// Loads the key file. Errc::key_file with the path and line number on malformed content,
/// Errc::io if it cannot be read.
Result<KeyRing> loadKeyFile(const std::filesystem::path& path);

/// The key file's text, unsealed (DPAPI on Windows). Errc::key_file when it cannot be read or
/// unsealed. The caller cleanses the text when done.
Result<std::string> readKeyText(const std::filesystem::path& path);

/// Parses key-file text; `what` names it in errors ("key file /x/queue.key", "FILE").
Result<KeyRing> parseKeyText(std::string_view text, const std::string& what);

/// Writes the ring atomically with mode 0600. Errc::io on failure (the old file is kept).
Status writeKeyFile(const std::filesystem::path& path, const KeyRing& ring);

}  // namespace psa::store
