#include "state_file.h"

#include <cerrno>
#include <fstream>
#include <sstream>

#include "psa/store/os/durable_file.h"
#include "psa/store/os/system_error.h"

namespace psa::adapters::api {

Status writeStateFile(const std::filesystem::path& path, std::string_view data) {
  std::error_code ec;
  const auto dir = path.parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return Error(Errc::io, "cannot create " + dir.string() + ": " + ec.message());
    }
    PSA_TRY(os::restrictToOwner(dir));
  }
  return os::writeFileDurably(path, data, os::FileAccess::owner_only);
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
    return Error(Errc::io, "cannot open " + path.string() + ": " + os::errnoText(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::optional<std::string>(ss.str());
}

}  // namespace psa::adapters::api
