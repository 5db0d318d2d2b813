// What an upgrade package says about itself: its name, version and the platform it installs
// on, read before anything is installed (the contract's `bad_package`). One implementation per
// OS: package_facts_posix.cpp asks dpkg-deb for a .deb's control fields;
// package_facts_win.cpp reads an MSI's Property table and its summary information.
#pragma once

#include <filesystem>
#include <string>

#include "psa/store/result.h"

namespace psa::agent {

struct PackageFacts {
  std::string name;      ///< "pms-agent" (deb Package, MSI ProductName)
  std::string version;   ///< deb Version, MSI ProductVersion
  std::string platform;  ///< deb Architecture ("amd64"), MSI summary Template platform ("x64")
};

/// The facts of the package in `file`. Errc::invalid_input when it is not a package this OS
/// installs (with what was wrong), Errc::io when it cannot be read.
Result<PackageFacts> readPackageFacts(const std::filesystem::path& file);

/// The platform this build installs on, as readPackageFacts reports it.
std::string thisPackagePlatform();

/// The file suffix of this OS's packages: ".deb", ".msi".
std::string packageSuffix();

/// The name this product's package carries ("pms-agent"; the MSI's ProductName).
std::string thisPackageName();

}  // namespace psa::agent
