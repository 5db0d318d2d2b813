#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "psa/store/os/durable_file.h"
#include "psa/store/os/system_error.h"

namespace psa::os {
namespace fs = std::filesystem;

namespace {

Error ioError(const std::string& what, const fs::path& path, int err) {
  return Error(err == ENOENT ? Errc::not_found : Errc::io,
               what + " " + path.string() + ": " + errnoText(err));
}

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

fs::path parentOf(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

}  // namespace

Status writeFileDurably(const fs::path& path, std::string_view bytes, FileAccess access) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  const mode_t mode = access == FileAccess::owner_only ? 0600 : 0666;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return ioError("cannot create", tmp, errno);
  }
  // An explicit chmod: the umask may not take away what owner_only must take away, and a
  // file a foreign process created at this name in between must not keep its mode.
  bool ok = access != FileAccess::owner_only || ::fchmod(fd, 0600) == 0;
  ok = ok && writeAll(fd, bytes) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return ioError("cannot write", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return Error(Errc::io,
                 "cannot rename " + tmp.string() + " to " + path.string() + ": " + errnoText(e));
  }
  return syncDirectory(parentOf(path));
}

Status renameDurably(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    const int e = errno;
    return Error(e == ENOENT ? Errc::not_found : Errc::io,
                 "cannot rename " + from.string() + " to " + to.string() + ": " + errnoText(e));
  }
  PSA_TRY(syncDirectory(parentOf(to)));
  if (parentOf(from) != parentOf(to)) {
    PSA_TRY(syncDirectory(parentOf(from)));
  }
  return {};
}

Status syncDirectory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return ioError("cannot open directory", dir, errno);
  }
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!synced) {
    return ioError("cannot fsync directory", dir, err);
  }
  return {};
}

Status restrictToOwner(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ioError("cannot look at", path, errno);
  }
  const mode_t mode = S_ISDIR(st.st_mode) ? 0700 : 0600;
  if (::chmod(path.c_str(), mode) != 0) {
    return ioError("cannot restrict", path, errno);
  }
  return {};
}

Status createServiceDirectory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Error(Errc::io, "cannot create " + dir.string() + ": " + ec.message());
  }
  if (::chmod(dir.c_str(), 0750) != 0) {
    return ioError("cannot set the mode of", dir, errno);
  }
  return {};
}

void restrictNewFilesToOwner() { ::umask(077); }

bool canWriteDirectory(const fs::path& dir) { return ::access(dir.c_str(), W_OK | X_OK) == 0; }

}  // namespace psa::os
