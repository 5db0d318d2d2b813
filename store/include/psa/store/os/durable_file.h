// Durable file operations: the few file-system calls whose crash behaviour the guarantees rest
// on (key file, API checkpoints, remote-config state, support bundles, a corrupt database moved
// aside). One implementation per OS: durable_file_posix.cpp (write + fsync + rename + fsync of
// the directory) and durable_file_win.cpp (FlushFileBuffers + MoveFileExW with
// MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH). Paths are std::filesystem::path (UTF-16
// at the Windows API boundary); text is UTF-8. All functions are thread-safe and blocking: never
// call them on an I/O thread.
#pragma once

#include <filesystem>
#include <string_view>

#include "psa/store/result.h"

namespace psa::os {

/// Who may read a file the agent writes.
enum class FileAccess {
  owner_only,  ///< POSIX mode 0600; Windows: only SYSTEM, Administrators and the owner
  normal,      ///< the process's defaults (umask / inherited ACL)
};

/// Replaces `path` with `bytes` so that a crash or power cut at any instant leaves either the
/// complete old content or the complete new content, never a mix: writes a sibling temporary
/// file, flushes it to the device, renames it over `path` and makes the rename durable.
/// Errors: Errc::io with the path and the OS's reason (the old file is then untouched and the
/// temporary file removed).
Status writeFileDurably(const std::filesystem::path& path, std::string_view bytes,
                        FileAccess access);

/// Renames `from` to `to`, replacing `to` if it exists, and makes the rename durable. Errors:
/// Errc::io, Errc::not_found when `from` does not exist.
Status renameDurably(const std::filesystem::path& from, const std::filesystem::path& to);

/// Makes earlier creations, renames and deletions of entries in `dir` durable (fsync of the
/// directory on POSIX; on Windows the write-through renames above already are, so this only
/// checks that the directory exists). Errors: Errc::io.
Status syncDirectory(const std::filesystem::path& dir);

/// Restricts an existing file or directory to its owner and the administrators (chmod 0600 for
/// files, 0700 for directories; on Windows a protected DACL of SYSTEM, Administrators and the
/// owner, full control). Errors: Errc::io.
Status restrictToOwner(const std::filesystem::path& path);

/// Creates `dir` and its missing parents for the service's state: POSIX mode 0750 (the
/// pms-agent group may read status and queue statistics); Windows a protected DACL of SYSTEM,
/// Administrators and this process's account. Errors: Errc::io with the path.
Status createServiceDirectory(const std::filesystem::path& dir);

/// From now on, files this process creates are its owner's alone (umask 077 on POSIX); on
/// Windows new files inherit their folder's ACL, which createServiceDirectory made private.
void restrictNewFilesToOwner();

/// True if this process may create files in the existing directory `dir` (access(2) on POSIX;
/// on Windows a probe file that deletes itself, since the ACL decides).
bool canWriteDirectory(const std::filesystem::path& dir);

}  // namespace psa::os
