// The native watcher on Windows: one ReadDirectoryChangesW per directory, all completing on one
// I/O completion port, so a recursive watch of many folders costs one wait and no thread.
// Works on local volumes and on SMB shares (\\server\share\...); where a share delivers no
// notifications the reader's periodic rescan still finds every file.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "psa/adapters/file/dir_watcher.h"
#include "psa/store/os/utf8_path.h"
#include "psa/store/os/win32.h"

namespace psa::adapters::file {

namespace {

using os::win::UniqueHandle;

constexpr DWORD kFilter = FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_DIR_NAME |
                          FILE_NOTIFY_CHANGE_LAST_WRITE | FILE_NOTIFY_CHANGE_SIZE |
                          FILE_NOTIFY_CHANGE_ATTRIBUTES;
// SMB limits a directory-change request to 64 KiB.
constexpr DWORD kBufferBytes = 64 * 1024;
constexpr ULONG_PTR kInterruptKey = 0;

// One watched directory. Its OVERLAPPED and buffer must stay put while a read is pending.
struct Watch {
  UniqueHandle dir;
  OVERLAPPED ov{};
  std::vector<DWORD> buffer = std::vector<DWORD>(kBufferBytes / sizeof(DWORD));
  DWORD volume = 0;
  uint64_t file_index = 0;
  ULONG_PTR key = 0;
  bool pending = false;

  bool arm() {
    ov = OVERLAPPED{};
    pending = ::ReadDirectoryChangesW(dir.get(), buffer.data(), kBufferBytes, FALSE, kFilter,
                                      nullptr, &ov, nullptr) != 0;
    return pending;
  }

  // Cancels the pending read and waits for the cancellation, so the buffer may be freed.
  void cancel() {
    if (pending) {
      ::CancelIoEx(dir.get(), &ov);
      DWORD n = 0;
      ::GetOverlappedResult(dir.get(), &ov, &n, TRUE);
      pending = false;
    }
  }
};

bool identify(HANDLE h, DWORD& volume, uint64_t& index) {
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(h, &info)) {
    return false;
  }
  volume = info.dwVolumeSerialNumber;
  index = (static_cast<uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
  return true;
}

class DirectoryChangesWatcher final : public DirWatcher {
 public:
  explicit DirectoryChangesWatcher(UniqueHandle port) : port_(std::move(port)) {}
  ~DirectoryChangesWatcher() override {
    std::lock_guard lock(mu_);
    for (auto& [path, w] : by_path_) {
      w->cancel();
    }
  }
  DirectoryChangesWatcher(const DirectoryChangesWatcher&) = delete;
  DirectoryChangesWatcher& operator=(const DirectoryChangesWatcher&) = delete;

  std::string_view mechanism() const override { return "ReadDirectoryChangesW"; }

  Status add(const std::filesystem::path& dir) override {
    std::lock_guard lock(mu_);
    const std::string name = os::pathToUtf8(dir);
    UniqueHandle h(::CreateFileW(
        dir.c_str(), FILE_LIST_DIRECTORY, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
        nullptr, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OVERLAPPED, nullptr));
    if (!h) {
      const DWORD err = ::GetLastError();
      if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND || err == ERROR_DIRECTORY) {
        return Error(Errc::not_found, "directory " + name + " does not exist");
      }
      return Error(Errc::io, "cannot watch " + name + ": " + os::win::errorText(err));
    }
    DWORD volume = 0;
    uint64_t index = 0;
    const bool known = identify(h.get(), volume, index);
    auto it = by_path_.find(name);
    if (it != by_path_.end()) {
      if (it->second->pending && known && it->second->volume == volume &&
          it->second->file_index == index) {
        return {};  // the same directory, still watched
      }
      forgetLocked(it);  // deleted and re-created, or its watch ended
    }
    auto w = std::make_unique<Watch>();
    w->dir = std::move(h);
    w->volume = volume;
    w->file_index = index;
    w->key = next_key_++;
    if (::CreateIoCompletionPort(w->dir.get(), port_.get(), w->key, 0) == nullptr) {
      return Error(Errc::io, "cannot watch " + name + ": " + os::win::errorText(::GetLastError()));
    }
    if (!w->arm()) {
      return Error(Errc::io,
                   "ReadDirectoryChangesW " + name + ": " + os::win::errorText(::GetLastError()));
    }
    by_key_[w->key] = name;
    by_path_[name] = std::move(w);
    return {};
  }

  bool wait(std::chrono::milliseconds timeout) override {
    const auto ms = std::max<int64_t>(0, std::min<int64_t>(timeout.count(), 1 << 30));
    bool changed = false;
    DWORD wait_ms = static_cast<DWORD>(ms);
    for (;;) {
      DWORD bytes = 0;
      ULONG_PTR key = 0;
      OVERLAPPED* ov = nullptr;
      const BOOL ok = ::GetQueuedCompletionStatus(port_.get(), &bytes, &key, &ov, wait_ms);
      if (ov == nullptr) {
        return changed;  // a timeout (nothing more queued), or an interrupt() wake-up
      }
      std::lock_guard lock(mu_);
      auto name = by_key_.find(key);
      if (name != by_key_.end()) {
        auto it = by_path_.find(name->second);
        Watch& w = *it->second;
        w.pending = false;
        // bytes == 0 on success means the change buffer overflowed: something changed.
        changed = true;
        if (!ok || !w.arm()) {
          // The directory went away (or the share dropped): forget it so add() watches the
          // new one; the rescan that follows a true wait() notices.
          forgetLocked(it);
        }
      }
      wait_ms = 0;  // collect whatever else is already queued, then return
    }
  }

  void interrupt() override {
    ::PostQueuedCompletionStatus(port_.get(), 0, kInterruptKey, nullptr);
  }

 private:
  void forgetLocked(std::map<std::string, std::unique_ptr<Watch>>::iterator it) {
    it->second->cancel();
    by_key_.erase(it->second->key);
    by_path_.erase(it);
  }

  UniqueHandle port_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Watch>> by_path_;
  std::map<ULONG_PTR, std::string> by_key_;
  ULONG_PTR next_key_ = 1;
};

}  // namespace

Result<DirWatcherPtr> makeNativeWatcher() {
  UniqueHandle port(::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1));
  if (!port) {
    return Error(Errc::io, "CreateIoCompletionPort: " + os::win::errorText(::GetLastError()));
  }
  return DirWatcherPtr(std::make_unique<DirectoryChangesWatcher>(std::move(port)));
}

}  // namespace psa::adapters::file
