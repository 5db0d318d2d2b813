#include "file/input_file.h"
#include "psa/store/os/win32.h"

namespace psa::adapters::file {

namespace {

HANDLE asHandle(intptr_t h) { return reinterpret_cast<HANDLE>(h); }

int64_t fileTimeToUnixNs(const FILETIME& t) {
  const int64_t ticks =
      static_cast<int64_t>((static_cast<uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime);
  constexpr int64_t kEpochDiff = 116444736000000000;  // 1601-01-01 to 1970-01-01, 100 ns units
  return (ticks - kEpochDiff) * 100;
}

Errc openErrc(DWORD err) {
  switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
      return Errc::not_found;
    case ERROR_ACCESS_DENIED:
      return Errc::unauthorized;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
      return Errc::busy;
    default:
      return Errc::io;
  }
}

Result<InputFile::Stat> statOf(HANDLE h) {
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(h, &info)) {
    return Error(Errc::io, "GetFileInformationByHandle: " + os::win::errorText(::GetLastError()));
  }
  InputFile::Stat s;
  s.size = (static_cast<uint64_t>(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
  s.mtime_ns = fileTimeToUnixNs(info.ftLastWriteTime);
  s.dev = info.dwVolumeSerialNumber;
  s.ino = (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
  return s;
}

}  // namespace

Result<InputFile> InputFile::open(const std::filesystem::path& path) {
  // FILE_SHARE_READ without FILE_SHARE_WRITE: the open fails with a sharing violation while
  // another program has the file open for writing (the PMS still exporting it). DELETE sharing
  // lets the writer rename or remove it meanwhile, as on POSIX.
  HANDLE h =
      ::CreateFileW(path.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, nullptr,
                    OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_SEQUENTIAL_SCAN, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const DWORD err = ::GetLastError();
    if (openErrc(err) == Errc::busy) {
      return Error(Errc::busy, "still open for writing by another program");
    }
    return Error(openErrc(err), "cannot open: " + os::win::errorText(err));
  }
  if (::GetFileType(h) != FILE_TYPE_DISK) {
    ::CloseHandle(h);
    return Error(Errc::io, "not a regular file");
  }
  return InputFile(reinterpret_cast<intptr_t>(h));
}

void InputFile::close() {
  if (handle_ != -1) {
    ::CloseHandle(asHandle(handle_));
    handle_ = -1;
  }
}

Result<InputFile::Stat> InputFile::stat() const { return statOf(asHandle(handle_)); }

Result<size_t> InputFile::readAt(uint64_t offset, char* buf, size_t n) const {
  OVERLAPPED ov{};
  ov.Offset = static_cast<DWORD>(offset & 0xffffffffu);
  ov.OffsetHigh = static_cast<DWORD>(offset >> 32);
  DWORD got = 0;
  const DWORD want = static_cast<DWORD>(std::min<size_t>(n, 1u << 30));
  if (!::ReadFile(asHandle(handle_), buf, want, &got, &ov)) {
    const DWORD err = ::GetLastError();
    if (err == ERROR_HANDLE_EOF) {
      return size_t{0};
    }
    return Error(Errc::io,
                 "read at byte " + std::to_string(offset) + ": " + os::win::errorText(err));
  }
  return static_cast<size_t>(got);
}

Result<InputFile::Stat> statPath(const std::filesystem::path& path) {
  // Opening with no access at all reads the identity without disturbing any writer.
  os::win::UniqueHandle h(
      ::CreateFileW(path.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    nullptr, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!h) {
    const DWORD err = ::GetLastError();
    return Error(openErrc(err) == Errc::not_found ? Errc::not_found : Errc::io,
                 "cannot look at it: " + os::win::errorText(err));
  }
  return statOf(h.get());
}

}  // namespace psa::adapters::file
