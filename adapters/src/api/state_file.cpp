#include "state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace psa::adapters::api {
namespace {

Error ioError(const std::string& what, const std::filesystem::path& path) {
  return Error(Errc::io, what + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

Status writeStateFile(const std::filesystem::path& path, std::string_view data) {
  std::error_code ec;
  const auto dir = path.parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Error(Errc::io, "cannot create " + dir.string() + ": " + ec.message());
    }
    ::chmod(dir.c_str(), 0700);
  }
  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ioError("cannot create", tmp);
  }
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      auto err = ioError("cannot write", tmp);
      ::close(fd);
      return err;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto err = ioError("cannot fsync", tmp);
    ::close(fd);
    return err;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ioError("cannot rename onto", path);
  }
  const std::string d = dir.empty() ? std::string(".") : dir.string();
  const int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<std::optional<std::string>> readStateFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::optional<std::string>();
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return Error(Errc::io, "cannot stat " + path.string() + ": " + ec.message());
  }
  if (size > (1u << 20)) {
    return Error(Errc::limit, path.string() + " is larger than 1 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ioError("cannot open", path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::optional<std::string>(ss.str());
}

Result<std::string> readSecretFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::io, "cannot read secret file " + path.string() + ": " + std::strerror(errno));
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ' ||
                           line.back() == '\t')) {
    line.pop_back();
  }
  if (line.empty()) {
    return Error(Errc::invalid_input, "secret file " + path.string() + " is empty");
  }
  return line;
}

}  // namespace psa::adapters::api
