// One dropped file opened for reading: one descriptor/handle used for every pass, so a rename
// or replace of the path cannot mix two files. One implementation per OS: input_file_posix.cpp
// (open/pread/fstat) and input_file_win.cpp (CreateFileW with a share mode that refuses files
// still open for writing, ReadFile at an offset, GetFileInformationByHandle).
#pragma once

#include <cstdint>
#include <filesystem>

#include "psa/store/result.h"

namespace psa::adapters::file {

/// A read-only open file. Not thread-safe; movable.
class InputFile {
 public:
  struct Stat {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    uint64_t dev = 0;
    uint64_t ino = 0;
    friend bool operator==(const Stat&, const Stat&) = default;
  };

  /// Opens for reading while letting others read too but not write: a file another program
  /// (the PMS) still holds open for writing is Errc::busy on Windows, so it is never read
  /// half-written (POSIX has no such lock; the completion rules cover it there). Errors:
  /// Errc::not_found (gone meanwhile), Errc::unauthorized (permission), Errc::busy, Errc::io.
  static Result<InputFile> open(const std::filesystem::path& path);
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  /// Size, modification time and identity (device/volume and inode/file index).
  Result<Stat> stat() const;
  /// Up to `n` bytes at `offset`; 0 at end of file. Errc::io.
  Result<size_t> readAt(uint64_t offset, char* buf, size_t n) const;

 private:
  explicit InputFile(intptr_t handle) : handle_(handle) {}
  void close();
  intptr_t handle_ = -1;  ///< a file descriptor (POSIX) or a HANDLE (Windows); -1 = none
};

/// The same facts as InputFile::stat() for a path, without opening it (directory scans).
/// Errc::not_found, Errc::io.
Result<InputFile::Stat> statPath(const std::filesystem::path& path);

}  // namespace psa::adapters::file
