// RemoteState: what remote management persists in <state_dir>/remote/, each file written
// atomically (temp file, fsync, rename, fsync of the directory), mode 0600:
//   state.json           last applied config version (replay protection), recent command ids
//   config-current.json  the newest applied cloud config (settable parts only) with its sha256
//   config-previous.json the one before it: the last known good, used when the newest is unusable
//   lock.json            present while a technician has locked the config on site
// Thread-safe (one mutex); every call may block on the file system (never from I/O threads).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "psa/store/json.h"
#include "psa/store/log.h"
#include "psa/store/result.h"

namespace psa::agent {

/// An applied cloud config as persisted.
struct StoredConfig {
  int64_t version = 0;
  std::string key_id;
  int64_t applied_at_ms = 0;
  json::Value overlay = json::Value::object();  ///< settable parts only
};

struct LockInfo {
  std::string reason;
  std::string by;  ///< the actor: "uid:1000" or "user:HOST\\admin"
  int64_t at_ms = 0;
};

class RemoteState {
 public:
  explicit RemoteState(std::filesystem::path dir);

  /// Creates the directory (0700) and reads state.json and lock.json. A damaged state file is
  /// logged and the last applied version is recovered from the config files; a damaged lock
  /// file counts as locked (fail safe). Errors: Errc::io when the directory cannot be created.
  Status load();

  const std::filesystem::path& dir() const { return dir_; }

  /// The highest config version ever applied here (0 if none).
  int64_t lastAppliedVersion() const;
  /// The current applied cloud config (0 / empty if none).
  std::optional<StoredConfig> applied() const;

  /// Persists a newly applied config: config-current -> config-previous, the new one becomes
  /// config-current, then state.json records the version.
  Status recordApplied(const StoredConfig& config);

  /// Reads config-current.json / config-previous.json, checking format and checksum.
  /// Errors: Errc::not_found (absent), Errc::corrupt (unreadable, bad JSON, checksum mismatch).
  Result<StoredConfig> readCurrent() const;
  Result<StoredConfig> readPrevious() const;
  /// Marks which stored config is running (after startup selection).
  void setApplied(std::optional<StoredConfig> config);

  std::optional<LockInfo> lock() const;
  Status setLock(const LockInfo& info);
  Status clearLock();

  /// Command ids seen and not yet expired (replay protection for commands).
  bool commandSeen(const std::string& id) const;
  Status rememberCommand(const std::string& id, int64_t expires_at_ms, int64_t now_ms);

 private:
  Status writeStateLocked();
  Result<StoredConfig> readConfigFile(const std::filesystem::path& file) const;

  std::filesystem::path dir_;
  log::Logger log_{"remote"};
  mutable std::mutex mu_;
  int64_t last_applied_ = 0;
  std::optional<StoredConfig> applied_;
  std::optional<LockInfo> lock_;
  std::map<std::string, int64_t> commands_;  ///< id -> expires_at_ms
};

}  // namespace psa::agent
