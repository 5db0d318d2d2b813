#include "psa/store/os/durable_file.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/os/win32.h"

namespace psa::os {
namespace fs = std::filesystem;

namespace {

Error ioError(const std::string& what, const fs::path& path, DWORD err) {
  const bool missing = err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND;
  return Error(missing ? Errc::not_found : Errc::io,
               what + " " + pathToUtf8(path) + ": " + win::errorText(err));
}

// A security descriptor for owner-only files, or none (inherit the folder's ACL).
class Security {
 public:
  Security(FileAccess access, bool directory) {
    if (access != FileAccess::owner_only) {
      return;
    }
    const std::wstring sddl = win::ownerOnlySddl(directory);
    if (::ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1,
                                                               sd_.out(), nullptr)) {
      attrs_.nLength = sizeof attrs_;
      attrs_.lpSecurityDescriptor = sd_.get();
      attrs_.bInheritHandle = FALSE;
      ok_ = true;
    }
  }
  SECURITY_ATTRIBUTES* attributes() { return ok_ ? &attrs_ : nullptr; }
  PSECURITY_DESCRIPTOR descriptor() const { return sd_.get(); }
  bool failed(FileAccess access) const { return access == FileAccess::owner_only && !ok_; }

 private:
  win::LocalPtr<PSECURITY_DESCRIPTOR> sd_;
  SECURITY_ATTRIBUTES attrs_{};
  bool ok_ = false;
};

}  // namespace

Status writeFileDurably(const fs::path& path, std::string_view bytes, FileAccess access) {
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(::GetCurrentProcessId());
  Security security(access, /*directory=*/false);
  if (security.failed(access)) {
    return ioError("cannot build the access list for", path, ::GetLastError());
  }
  ::DeleteFileW(tmp.c_str());
  win::UniqueHandle file(::CreateFileW(tmp.c_str(), GENERIC_WRITE, 0, security.attributes(),
                                       CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!file) {
    return ioError("cannot create", tmp, ::GetLastError());
  }
  size_t off = 0;
  while (off < bytes.size()) {
    const DWORD want = static_cast<DWORD>(std::min<size_t>(bytes.size() - off, 1u << 30));
    DWORD wrote = 0;
    if (!::WriteFile(file.get(), bytes.data() + off, want, &wrote, nullptr) || wrote == 0) {
      const DWORD err = ::GetLastError();
      file.reset();
      ::DeleteFileW(tmp.c_str());
      return ioError("cannot write", tmp, err);
    }
    off += wrote;
  }
  if (!::FlushFileBuffers(file.get())) {
    const DWORD err = ::GetLastError();
    file.reset();
    ::DeleteFileW(tmp.c_str());
    return ioError("cannot flush", tmp, err);
  }
  file.reset();
  if (!::MoveFileExW(tmp.c_str(), path.c_str(),
                     MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
    const DWORD err = ::GetLastError();
    ::DeleteFileW(tmp.c_str());
    return Error(Errc::io, "cannot rename " + pathToUtf8(tmp) + " to " + pathToUtf8(path) + ": " +
                               win::errorText(err));
  }
  return {};
}

Status renameDurably(const fs::path& from, const fs::path& to) {
  if (!::MoveFileExW(from.c_str(), to.c_str(),
                     MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
    const DWORD err = ::GetLastError();
    const bool missing = err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND;
    return Error(
        missing ? Errc::not_found : Errc::io,
        "cannot rename " + pathToUtf8(from) + " to " + pathToUtf8(to) + ": " + win::errorText(err));
  }
  return {};
}

Status syncDirectory(const fs::path& dir) {
  // NTFS journals the directory change of a MOVEFILE_WRITE_THROUGH rename itself; directories
  // cannot be flushed separately.
  const DWORD attrs = ::GetFileAttributesW(dir.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) {
    return ioError("cannot open directory", dir, ::GetLastError());
  }
  return {};
}

Status restrictToOwner(const fs::path& path) {
  const DWORD attrs = ::GetFileAttributesW(path.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) {
    return ioError("cannot look at", path, ::GetLastError());
  }
  Security security(FileAccess::owner_only, (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0);
  if (security.failed(FileAccess::owner_only)) {
    return ioError("cannot build the access list for", path, ::GetLastError());
  }
  BOOL present = FALSE;
  BOOL defaulted = FALSE;
  PACL dacl = nullptr;
  if (!::GetSecurityDescriptorDacl(security.descriptor(), &present, &dacl, &defaulted)) {
    return ioError("cannot read the access list for", path, ::GetLastError());
  }
  std::wstring name = path.wstring();
  const DWORD rc = ::SetNamedSecurityInfoW(
      name.data(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
      nullptr, nullptr, dacl, nullptr);
  if (rc != ERROR_SUCCESS) {
    return ioError("cannot restrict", path, rc);
  }
  return {};
}

Status createServiceDirectory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return Error(Errc::io, "cannot create " + pathToUtf8(dir) + ": " + ec.message());
  }
  return restrictToOwner(dir);
}

void restrictNewFilesToOwner() {}

bool canWriteDirectory(const fs::path& dir) {
  const fs::path probe = dir / (".pms-agent-probe-" + std::to_string(::GetCurrentProcessId()) +
                                "-" + std::to_string(::GetCurrentThreadId()));
  win::UniqueHandle h(::CreateFileW(probe.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW,
                                    FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, nullptr));
  return h.valid();
}

}  // namespace psa::os
