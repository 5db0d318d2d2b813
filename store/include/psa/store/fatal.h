// The one way a process of ours ends on a broken invariant (style.md, error path 3): an
// exception caught at a callback boundary, thread entry point or destructor that "should never
// happen", or an unrecoverable state such as a failing CSPRNG. Nothing limps on: the process
// logs where it failed, flushes the log and exits non-zero, and the service manager (systemd
// Restart=on-failure, the Windows SCM's recovery actions) starts it again. The store already
// holds everything that was acknowledged (committed with fsync before any acknowledgement), so
// a restart loses nothing; what was in flight is resent under the same msg-id.
#pragma once

#include <string>
#include <string_view>

namespace psa {

/// Exit status of a process ended by fatalInvariant(): 70, EX_SOFTWARE of <sysexits.h>
/// ("internal software error"). Distinct from the CLI's 0 (ok), 1 (failure found) and 2
/// (usage), so a supervisor, a script or a technician can tell a bug from a refusal.
inline constexpr int kExitFatalInvariant = 70;

/// Ends the process after a broken invariant at `place`.
///
/// Logs one line at error level, component `fatal`:
///   `event=fatal_invariant place=<place> error_id=<8 hex> exception=<type> exit_code=70 hint=...`
/// `exception` is the C++ type of the exception being handled (`none` outside a catch block,
/// `unknown` for a non-standard one), never its what(): the text of an exception may carry
/// anything, including patient data. Then flushes the log and leaves with
/// std::_Exit(kExitFatalInvariant): no destructor, atexit handler or static destructor runs
/// into the broken state. SQLite needs none of them (a transaction that was not committed is
/// rolled back when the next process opens the database).
///
/// `place` names the boundary ("store.writer", "cloud_link.handler"): a fixed identifier of the
/// code, never data. Callable from any thread, inside or outside a catch block. The first caller
/// logs and exits; a concurrent caller on another thread waits for it (at most 10 s, then exits
/// itself); a caller re-entering on the same thread (logging itself failed) writes a fixed line
/// to standard error and exits at once. Waits at most 2 s for the log's lock, which the failing
/// thread may hold; the line goes to standard error then.
[[noreturn]] void fatalInvariant(std::string_view place) noexcept;

/// The `error_id` fatalInvariant() logs: 8 lower-case hex digits, a stable signature (FNV-1a)
/// of `place` and the exception's type name. The same bug gives the same id on every machine
/// and at every restart, so support and the cloud can group a crash loop by it.
std::string fatalErrorId(std::string_view place, std::string_view exception_type);

/// Runs `f`; anything it throws is a broken invariant at `place` (fatalInvariant()). For C
/// callbacks, thread entry points and handlers whose caller cannot take an exception.
template <class F>
decltype(auto) guardInvariant(std::string_view place, F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    fatalInvariant(place);
  }
}

/// Routes std::terminate (an exception escaping a thread we did not guard, a noexcept violation)
/// into fatalInvariant("terminate"), so even those end with the logged line and exit code 70
/// instead of an unexplained abort. Call once at process start (pms-agent's main does).
void installFatalTerminateHandler();

}  // namespace psa
