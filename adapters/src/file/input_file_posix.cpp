#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "file/input_file.h"
#include "psa/store/os/system_error.h"

namespace psa::adapters::file {

namespace {

InputFile::Stat fromStat(const struct stat& st) {
  InputFile::Stat s;
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.dev = static_cast<uint64_t>(st.st_dev);
  s.ino = static_cast<uint64_t>(st.st_ino);
  return s;
}

}  // namespace

Result<InputFile> InputFile::open(const std::filesystem::path& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    const Errc code = err == ENOENT                     ? Errc::not_found
                      : (err == EACCES || err == EPERM) ? Errc::unauthorized
                                                        : Errc::io;
    return Error(code, "cannot open: " + os::errnoText(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(Errc::io, "not a regular file");
  }
  return InputFile(fd);
}

void InputFile::close() {
  if (handle_ >= 0) {
    ::close(static_cast<int>(handle_));
    handle_ = -1;
  }
}

Result<InputFile::Stat> InputFile::stat() const {
  struct stat st {};
  if (::fstat(static_cast<int>(handle_), &st) != 0) {
    return Error(Errc::io, "fstat: " + os::errnoText(errno));
  }
  return fromStat(st);
}

Result<size_t> InputFile::readAt(uint64_t offset, char* buf, size_t n) const {
  for (;;) {
    const ssize_t r = ::pread(static_cast<int>(handle_), buf, n, static_cast<off_t>(offset));
    if (r >= 0) {
      return static_cast<size_t>(r);
    }
    if (errno != EINTR) {
      return Error(Errc::io,
                   "read at byte " + std::to_string(offset) + ": " + os::errnoText(errno));
    }
  }
}

Result<InputFile::Stat> statPath(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Error(err == ENOENT ? Errc::not_found : Errc::io, "stat: " + os::errnoText(err));
  }
  return fromStat(st);
}

}  // namespace psa::adapters::file
