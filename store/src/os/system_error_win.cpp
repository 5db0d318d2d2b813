#include <cstring>

#include "psa/store/os/system_error.h"
#include "psa/store/os/win32.h"

namespace psa::os {

int lastErrorCode() { return static_cast<int>(::GetLastError()); }

std::string errorText(int code) { return win::errorText(static_cast<DWORD>(code)); }

std::string lastErrorText() { return win::errorText(::GetLastError()); }

std::string errnoText(int errno_value) {
  char buf[256];
  if (::strerror_s(buf, sizeof buf, errno_value) != 0) {
    return "error " + std::to_string(errno_value);
  }
  return buf;
}

}  // namespace psa::os
