// Package facts of an MSI, from its Property table (ProductName, ProductVersion) and the
// summary information's Template ("x64;1033": platform, then languages).
#include <windows.h>
// msi.h after windows.h
#include <msi.h>
#include <msiquery.h>

#include "package_facts.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

class MsiHandle {
 public:
  MsiHandle() = default;
  ~MsiHandle() {
    if (h_ != 0) {
      MsiCloseHandle(h_);
    }
  }
  MsiHandle(const MsiHandle&) = delete;
  MsiHandle& operator=(const MsiHandle&) = delete;
  MSIHANDLE* out() { return &h_; }
  MSIHANDLE get() const { return h_; }

 private:
  MSIHANDLE h_ = 0;
};

std::string narrow(const std::wstring& w) {
  if (w.empty()) {
    return {};
  }
  const int n = WideCharToMultiByte(CP_UTF8, 0, w.data(), static_cast<int>(w.size()), nullptr, 0,
                                    nullptr, nullptr);
  std::string s(static_cast<size_t>(n), '\0');
  WideCharToMultiByte(CP_UTF8, 0, w.data(), static_cast<int>(w.size()), s.data(), n, nullptr,
                      nullptr);
  return s;
}

std::string property(MSIHANDLE db, const wchar_t* name) {
  std::wstring query = L"SELECT `Value` FROM `Property` WHERE `Property`='";
  query += name;
  query += L"'";
  MsiHandle view;
  if (MsiDatabaseOpenViewW(db, query.c_str(), view.out()) != ERROR_SUCCESS ||
      MsiViewExecute(view.get(), 0) != ERROR_SUCCESS) {
    return {};
  }
  MsiHandle record;
  if (MsiViewFetch(view.get(), record.out()) != ERROR_SUCCESS) {
    return {};
  }
  wchar_t buf[512];
  DWORD len = sizeof buf / sizeof buf[0];
  if (MsiRecordGetStringW(record.get(), 1, buf, &len) != ERROR_SUCCESS) {
    return {};
  }
  return narrow(std::wstring(buf, len));
}

std::string templatePlatform(MSIHANDLE db) {
  MsiHandle info;
  if (MsiGetSummaryInformationW(db, nullptr, 0, info.out()) != ERROR_SUCCESS) {
    return {};
  }
  UINT type = 0;
  INT ival = 0;
  FILETIME ft{};
  wchar_t buf[256];
  DWORD len = sizeof buf / sizeof buf[0];
  constexpr UINT kPidTemplate = 7;
  if (MsiSummaryInfoGetPropertyW(info.get(), kPidTemplate, &type, &ival, &ft, buf, &len) !=
      ERROR_SUCCESS) {
    return {};
  }
  std::string t = narrow(std::wstring(buf, len));
  const size_t semi = t.find(';');
  t = semi == std::string::npos ? t : t.substr(0, semi);
  return t.empty() ? "Intel" : t;  // an empty platform means 32-bit x86
}

}  // namespace

std::string thisPackagePlatform() { return "x64"; }

std::string packageSuffix() { return ".msi"; }

std::string thisPackageName() { return "Practice Studio Edge Agent"; }  // pms-agent.wxs

Result<PackageFacts> readPackageFacts(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return Error(Errc::io, "cannot read the package " + os::pathToUtf8(file));
  }
  MsiHandle db;
  if (MsiOpenDatabaseW(file.wstring().c_str(), reinterpret_cast<LPCWSTR>(MSIDBOPEN_READONLY),
                       db.out()) != ERROR_SUCCESS) {
    return Error(Errc::invalid_input, "not a Windows Installer package (cannot open it as MSI)");
  }
  PackageFacts facts;
  facts.name = property(db.get(), L"ProductName");
  facts.version = property(db.get(), L"ProductVersion");
  facts.platform = templatePlatform(db.get());
  if (facts.name.empty() || facts.version.empty()) {
    return Error(Errc::invalid_input,
                 "not a Windows Installer package of a product (no "
                 "ProductName or ProductVersion)");
  }
  return facts;
}

}  // namespace psa::agent
