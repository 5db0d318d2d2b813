#include <unistd.h>

#include "psa/store/os/system_log.h"

namespace psa::os {

void writeStandardError(std::string_view line) {
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

// systemd's journal already holds standard error.
void enableSystemLog(bool) {}

void writeSystemLog(SystemLogLevel, std::string_view) {}

}  // namespace psa::os
