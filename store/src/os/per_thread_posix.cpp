#include <pthread.h>

#include <mutex>
#include <utility>
#include <vector>

#include "psa/store/os/per_thread.h"

namespace psa::os {

namespace {

using Cleanups = std::vector<std::pair<void (*)(void*), void*>>;

void runCleanups(void* value) {
  auto* list = static_cast<Cleanups*>(value);
  for (auto it = list->rbegin(); it != list->rend(); ++it) {
    it->first(it->second);
  }
  delete list;
}

pthread_key_t cleanupKey() {
  static pthread_key_t key;
  static std::once_flag once;
  std::call_once(once, [] { pthread_key_create(&key, &runCleanups); });
  return key;
}

}  // namespace

void atThreadExit(void (*fn)(void*), void* arg) {
  const pthread_key_t key = cleanupKey();
  auto* list = static_cast<Cleanups*>(pthread_getspecific(key));
  if (list == nullptr) {
    list = new Cleanups();
    pthread_setspecific(key, list);
  }
  list->emplace_back(fn, arg);
}

}  // namespace psa::os
