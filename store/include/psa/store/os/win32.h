// Helpers shared by the Windows implementations (the *_win.cpp files of every module). Include
// it only from *_win.cpp files: it pulls in <windows.h>.
#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
// Headers that need <windows.h> before them (and would be sorted above it by clang-format if
// the .cpp files included them).
#include <aclapi.h>
#include <dpapi.h>
#include <psapi.h>
#include <sddl.h>

#include <string>
#include <string_view>
#include <utility>

namespace psa::os::win {

/// UTF-8 -> UTF-16 and back (invalid sequences become U+FFFD).
std::wstring widen(std::string_view utf8);
std::string narrow(std::wstring_view utf16);

/// FormatMessageW text for a Win32 error code, in UTF-8, without the trailing newline:
/// "Access is denied. (error 5)".
std::string errorText(DWORD code);

/// Owns a HANDLE (INVALID_HANDLE_VALUE and nullptr both mean none); closes it on destruction.
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(HANDLE h) : h_(h) {}
  UniqueHandle(UniqueHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  UniqueHandle& operator=(UniqueHandle&& o) noexcept {
    if (this != &o) {
      reset(std::exchange(o.h_, nullptr));
    }
    return *this;
  }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  ~UniqueHandle() { reset(); }

  HANDLE get() const { return h_; }
  bool valid() const { return h_ != nullptr && h_ != INVALID_HANDLE_VALUE; }
  explicit operator bool() const { return valid(); }
  HANDLE release() { return std::exchange(h_, nullptr); }
  void reset(HANDLE h = nullptr) {
    if (valid()) {
      ::CloseHandle(h_);
    }
    h_ = h;
  }

 private:
  HANDLE h_ = nullptr;
};

/// Owns memory from LocalAlloc (security descriptors, FormatMessage buffers, SID strings).
template <class T>
class LocalPtr {
 public:
  LocalPtr() = default;
  explicit LocalPtr(T p) : p_(p) {}
  LocalPtr(const LocalPtr&) = delete;
  LocalPtr& operator=(const LocalPtr&) = delete;
  ~LocalPtr() {
    if (p_ != nullptr) {
      ::LocalFree(reinterpret_cast<HLOCAL>(p_));
    }
  }
  T get() const { return p_; }
  T* out() { return &p_; }

 private:
  T p_ = nullptr;
};

/// The SID of this process's user as a string ("S-1-5-80-..."), or "" on failure.
std::string currentUserSid();

/// Account name for a SID string: "NT SERVICE\pms-agent", "BUILTIN\Administrators"; the SID
/// itself when it has no name.
std::string accountName(const std::string& sid);

/// The SID of the service's virtual account "NT SERVICE\pms-agent" as a string, or "" when
/// the service is not installed (the name resolves only then).
std::string serviceAccountSid();

/// SDDL of a protected DACL that grants full control to SYSTEM, the Administrators, this
/// process's account and the service account, and nobody else (an installer running as SYSTEM
/// and the service running as NT SERVICE\pms-agent can then both use what the other wrote);
/// for a directory the entries are inherited by what is created inside.
std::wstring ownerOnlySddl(bool directory);

}  // namespace psa::os::win
