// perThread<T, Tag>(): one T per thread, made on first use and destroyed when its thread exits.
//
// Why not `thread_local T`: with Debian 12's mingw-w64 (GCC 12, emulated TLS over winpthreads)
// the destructor of a thread_local object runs after its storage was freed, a use-after-free at
// every thread exit (seen crashing the store's writer thread under Wine). Here the object lives
// on the heap, the thread_local is a plain pointer, and the OS's own thread-exit hook destroys
// the object: a pthread key destructor (per_thread_posix.cpp) or a fiber-local storage callback
// (per_thread_win.cpp). Use it for every per-thread object with a non-trivial destructor.
#pragma once

namespace psa::os {

/// Runs fn(arg) when the calling thread exits (in the reverse order of registration). Objects
/// of the process's main thread are reclaimed by the OS at process exit.
void atThreadExit(void (*fn)(void*), void* arg);

/// The calling thread's T (default-constructed on first use). `Tag` tells apart two per-thread
/// objects of the same type.
template <class T, class Tag = T>
T& perThread() {
  thread_local T* object = nullptr;
  if (object == nullptr) {
    object = new T();
    atThreadExit([](void* p) { delete static_cast<T*>(p); }, object);
  }
  return *object;
}

}  // namespace psa::os
