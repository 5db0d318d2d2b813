#include <shlobj.h>

#include "psa/agent/platform_defaults.h"
#include "psa/store/os/win32.h"

namespace psa::agent {

namespace {

std::filesystem::path programData() {
  PWSTR raw = nullptr;
  std::filesystem::path out = L"C:\\ProgramData";
  if (::SHGetKnownFolderPath(FOLDERID_ProgramData, 0, nullptr, &raw) == S_OK && raw != nullptr) {
    out = raw;
  }
  ::CoTaskMemFree(raw);
  return out;
}

}  // namespace

const PlatformDefaults& platformDefaults() {
  static const PlatformDefaults d = [] {
    const std::filesystem::path base = programData() / L"PracticeStudio" / L"Agent";
    // A service has no console: the rotating file log is the primary log on Windows (warnings
    // and errors also go to the Event Log).
    return PlatformDefaults{base / L"agent.json", base / L"state", L"\\\\.\\pipe\\pms-agent",
                            base / L"logs" / L"agent.log"};
  }();
  return d;
}

}  // namespace psa::agent
