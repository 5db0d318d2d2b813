#include "psa/store/fatal.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>
#include <typeinfo>

#include "psa/store/log.h"
#include "psa/store/os/system_log.h"

#if defined(__GNUG__)
#include <cxxabi.h>
#endif

namespace psa {
namespace {

constexpr auto kLogLockWait = std::chrono::seconds(2);
constexpr auto kOtherCallerWait = std::chrono::seconds(10);
constexpr size_t kMaxTypeName = 160;

std::atomic<bool> g_exiting{false};
thread_local bool t_in_fatal = false;  // trivially destructible: safe as thread_local everywhere

// The last resort when logging failed or re-entered: a fixed line built on the stack.
[[noreturn]] void emergencyExit(std::string_view place, const char* why) noexcept {
  char buf[256];
  const int n = std::snprintf(buf, sizeof buf,
                              "level=error comp=fatal event=fatal_invariant place=%.*s "
                              "error_id=none exception=none exit_code=%d note=%s\n",
                              static_cast<int>(std::min<size_t>(place.size(), 80)), place.data(),
                              kExitFatalInvariant, why);
  if (n > 0) {
    os::writeStandardError(std::string_view(buf, std::min(static_cast<size_t>(n), sizeof buf - 1)));
  }
  std::_Exit(kExitFatalInvariant);
}

std::string demangle(const char* name) {
#if defined(__GNUG__)
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status == 0 && out != nullptr) {
    std::string s(out);
    std::free(out);
    return s;
  }
  std::free(out);
#endif
  return name;
}

// The type of the exception being handled, as the code names it; never its what().
std::string currentExceptionType() {
  const std::exception_ptr current = std::current_exception();
  if (!current) {
    return "none";
  }
  std::string name;
  try {
    std::rethrow_exception(current);
  } catch (const std::exception& e) {
    name = demangle(typeid(e).name());
  } catch (...) {
#if defined(__GNUG__)
    if (const std::type_info* t = abi::__cxa_current_exception_type()) {
      name = demangle(t->name());
    }
#endif
  }
  if (name.empty()) {
    return "unknown";
  }
  if (name.size() > kMaxTypeName) {
    name.resize(kMaxTypeName);
  }
  return name;
}

}  // namespace

std::string fatalErrorId(std::string_view place, std::string_view exception_type) {
  uint32_t h = 2166136261u;  // FNV-1a, 32 bits: stable across builds, compilers and OSes
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 16777619u;
    }
  };
  mix(place);
  mix(std::string_view("\0", 1));
  mix(exception_type);
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(h));
  return buf;
}

void fatalInvariant(std::string_view place) noexcept {
  if (t_in_fatal) {
    emergencyExit(place, "re-entered");
  }
  t_in_fatal = true;
  if (g_exiting.exchange(true)) {
    // Another thread is logging its own failure and exiting; its line is the one to keep.
    std::this_thread::sleep_for(kOtherCallerWait);
    emergencyExit(place, "second");
  }
  try {
    const std::string type = currentExceptionType();
    const std::string id = fatalErrorId(place, type);
    log::Logger("fatal").writeForExit(
        log::Level::error, "fatal_invariant",
        {{"place", place},
         {"error_id", id},
         {"exception", type},
         {"exit_code", kExitFatalInvariant},
         {"hint",
          "broken invariant (a bug): exiting for the service manager to restart the agent; "
          "every acknowledged record is in the store"}},
        kLogLockWait);
  } catch (...) {
    emergencyExit(place, "log-failed");
  }
  std::_Exit(kExitFatalInvariant);
}

void installFatalTerminateHandler() {
  std::set_terminate([] { fatalInvariant("terminate"); });
}

}  // namespace psa
