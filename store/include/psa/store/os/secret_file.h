// Protection of secret files at rest (the store's key file, API client secrets and tokens):
// who may read them, and on Windows a second layer so that a copied disk image alone does not
// yield the data key. One implementation per OS: secret_file_posix.cpp (file mode bits) and
// secret_file_win.cpp (the file's DACL; DPAPI, machine scope). Thread-safe, blocking.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::os {

/// What a technician needs to know about a secret file's protection (`status`, `check`).
struct SecretFileInfo {
  bool present = false;     ///< the file exists and could be looked at
  std::string owner;        ///< account name ("pms-agent", "NT SERVICE\pms-agent"), or an id
  int64_t owner_uid = -1;   ///< the owner's POSIX uid; -1 on Windows
  std::string permissions;  ///< "0600" on POSIX; "owner, SYSTEM, Administrators" on Windows
  uint64_t size = 0;
  /// Empty when the file is safe; else what is wrong, in words ("is readable by group/others
  /// (mode 0644)", "BUILTIN\Users may read it", "missing", "not a regular file", "empty").
  std::string problem;
  /// The command that fixes `problem` ("chmod 600 /var/lib/pms-agent/queue.key",
  /// "pms-agent service repair-acl"), or empty.
  std::string fix;
};

/// Describes `path`. Never fails: problems are reported in the result.
SecretFileInfo describeSecretFile(const std::filesystem::path& path);

/// Refuses a secret file that accounts other than its owner, the service account and the
/// administrators may read or write, or that is not a regular file. Errors: Errc::key_file with
/// `what` ("key file"), the path, the problem and its fix in words.
Status checkSecretFile(const std::filesystem::path& path, std::string_view what);

/// Wraps a secret file's text before it is written: on Windows DPAPI with machine scope (the
/// file then only decrypts on this machine), marked by a first line "pms-agent-dpapi-v1"; on
/// POSIX the text unchanged (the file mode is the protection). Errors: Errc::crypto.
Result<std::string> sealSecretText(std::string_view plain);

/// Reverses sealSecretText. Text without the DPAPI marker is returned unchanged (a file from
/// `keys import` or an older version). Errors: Errc::key_file when a sealed file does not
/// decrypt here (copied from another machine: use `pms-agent keys export` on the old machine
/// and `keys import` on the new one).
Result<std::string> unsealSecretText(std::string_view stored);

/// Reads a secret (a token, a client secret) from a file: the first line, trailing CR/LF and
/// spaces trimmed. Errors: Errc::io (unreadable), Errc::invalid_input (empty).
Result<std::string> readSecretLine(const std::filesystem::path& path);

}  // namespace psa::os
