#include <cerrno>
#include <cstring>

#include "psa/store/os/system_error.h"

namespace psa::os {

int lastErrorCode() { return errno; }

std::string errorText(int code) { return errnoText(code); }

std::string lastErrorText() { return errnoText(errno); }

std::string errnoText(int errno_value) {
  char buf[256];
  // GNU strerror_r returns the text (maybe a static string, maybe buf).
  return ::strerror_r(errno_value, buf, sizeof buf);
}

}  // namespace psa::os
