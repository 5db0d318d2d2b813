// Where log lines go besides the agent's own file: the process's standard error (systemd puts
// it in the journal) and, on Windows, the Event Log (source "pms-agent") for warnings and
// errors, since a service has no console. Lines are PHI-free by construction (log.h). One
// implementation per OS: system_log_posix.cpp and system_log_win.cpp. Thread-safe.
#pragma once

#include <string_view>

namespace psa::os {

/// Writes one line (which must end in '\n') to standard error in a single call, so lines of
/// concurrent processes sharing the stream do not interleave.
void writeStandardError(std::string_view line);

/// Severity of a line for the OS log.
enum class SystemLogLevel { warning, error };

/// Turns forwarding of warnings and errors to the OS log on (the Windows service does; a no-op
/// on POSIX, where the journal already has standard error).
void enableSystemLog(bool enabled);

/// Forwards one line if enableSystemLog(true) was called; never fails (a full or unavailable
/// Event Log drops the line: the agent's own file has it).
void writeSystemLog(SystemLogLevel level, std::string_view line);

}  // namespace psa::os
