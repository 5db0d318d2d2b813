// readSecretLine (secret_file.h): the same on every OS.
#include <cerrno>
#include <fstream>

#include "psa/store/os/secret_file.h"
#include "psa/store/os/system_error.h"

namespace psa::os {

Result<std::string> readSecretLine(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(Errc::io, "cannot read secret file " + path.string() + ": " + errnoText(errno));
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

}  // namespace psa::os
