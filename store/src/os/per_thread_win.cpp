#include <mutex>
#include <utility>
#include <vector>

#include "psa/store/os/per_thread.h"
#include "psa/store/os/win32.h"

namespace psa::os {

namespace {

using Cleanups = std::vector<std::pair<void (*)(void*), void*>>;

void WINAPI runCleanups(void* value) {
  if (value == nullptr) {
    return;
  }
  auto* list = static_cast<Cleanups*>(value);
  for (auto it = list->rbegin(); it != list->rend(); ++it) {
    it->first(it->second);
  }
  delete list;
}

DWORD cleanupSlot() {
  static DWORD slot = FLS_OUT_OF_INDEXES;
  static std::once_flag once;
  std::call_once(once, [] { slot = ::FlsAlloc(&runCleanups); });
  return slot;
}

}  // namespace

void atThreadExit(void (*fn)(void*), void* arg) {
  const DWORD slot = cleanupSlot();
  if (slot == FLS_OUT_OF_INDEXES) {
    return;  // the object then lives until the process ends
  }
  auto* list = static_cast<Cleanups*>(::FlsGetValue(slot));
  if (list == nullptr) {
    list = new Cleanups();
    ::FlsSetValue(slot, list);
  }
  list->emplace_back(fn, arg);
}

}  // namespace psa::os
