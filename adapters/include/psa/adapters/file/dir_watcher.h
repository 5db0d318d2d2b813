// Wake-ups for the file-drop adapter's reader thread when a watched directory may have
// changed. A watcher never says *what* changed: the reader rescans the directory after every
// wake-up (and at least every poll interval), so a lost or coalesced event costs latency,
// never a file. Implementations: the OS's own (inotify on Linux in dir_watcher_posix.cpp,
// ReadDirectoryChangesW on Windows in dir_watcher_win.cpp) and polling (everywhere, including
// network shares that deliver no change events).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::file {

/// Used by one reader thread (add/wait) plus any thread calling interrupt().
class DirWatcher {
 public:
  virtual ~DirWatcher() = default;

  /// "inotify", "ReadDirectoryChangesW" or "polling".
  virtual std::string_view mechanism() const = 0;

  /// Watches one directory (not its subdirectories: add those too for a recursive watch).
  /// Adding a directory already watched is a no-op; a directory that was deleted or
  /// replaced since it was added is watched afresh. Errors: Errc::not_found, Errc::io
  /// (e.g. the inotify watch limit), with the path in the message.
  virtual Status add(const std::filesystem::path& dir) = 0;

  /// Blocks until something changed in a watched directory, `timeout` passed, or
  /// interrupt() was called. True when a change (or an event overflow) was seen. Events
  /// that arrived while nobody waited make the next wait() return at once.
  virtual bool wait(std::chrono::milliseconds timeout) = 0;

  /// Makes the current (or else the next) wait() return false at once. Any thread.
  virtual void interrupt() = 0;
};

using DirWatcherPtr = std::unique_ptr<DirWatcher>;

/// A watcher that only times out (the reader's periodic rescan does the work).
DirWatcherPtr makePollingWatcher();

/// The OS's change notifications: inotify (Errc::io when the kernel refuses an instance,
/// fs.inotify.max_user_instances) or ReadDirectoryChangesW (Errc::io when no completion port
/// can be made).
Result<DirWatcherPtr> makeNativeWatcher();

}  // namespace psa::adapters::file
