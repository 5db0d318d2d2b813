// The OS's own words for a failed system call, for error messages (never PHI: codes only).
// One implementation per OS: system_error_posix.cpp (strerror_r) and system_error_win.cpp
// (FormatMessageW, UTF-8).
#pragma once

#include <string>

namespace psa::os {

/// The code of the calling thread's last failed OS call (errno / GetLastError()).
int lastErrorCode();

/// Text for a code from lastErrorCode() ("Permission denied", "Access is denied.").
std::string errorText(int code);

/// errorText(lastErrorCode()).
std::string lastErrorText();

/// Text for a C runtime errno value (std::strerror, thread-safe), on every OS.
std::string errnoText(int errno_value);

}  // namespace psa::os
