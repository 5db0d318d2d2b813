// Package facts of a .deb, from `dpkg-deb --field` (dpkg is on every Debian system the agent
// installs on; parsing the ar/tar/xz layers ourselves would need a decompressor we do not link).
#include <sstream>

#include "command_output.h"
#include "package_facts.h"

namespace psa::agent {

std::string thisPackagePlatform() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

std::string packageSuffix() { return ".deb"; }

std::string thisPackageName() { return "pms-agent"; }  // packaging/cpack.cmake

Result<PackageFacts> readPackageFacts(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return Error(Errc::io, "cannot read the package " + file.string());
  }
  const std::string out = commandOutput(
      {"/usr/bin/dpkg-deb", "--field", file.string(), "Package", "Version", "Architecture"},
      std::chrono::seconds(30), 64 * 1024);
  PackageFacts facts;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(": ");
    if (colon == std::string::npos) {
      continue;
    }
    const std::string key = line.substr(0, colon);
    const std::string value = line.substr(colon + 2);
    if (key == "Package") {
      facts.name = value;
    } else if (key == "Version") {
      facts.version = value;
    } else if (key == "Architecture") {
      facts.platform = value;
    }
  }
  if (facts.name.empty() || facts.version.empty() || facts.platform.empty()) {
    return Error(Errc::invalid_input,
                 "not a Debian package (dpkg-deb cannot read its control "
                 "fields)");
  }
  return facts;
}

}  // namespace psa::agent
