// The native watcher on Linux: inotify, plus an eventfd so interrupt() wakes poll().
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "psa/adapters/file/dir_watcher.h"

namespace psa::adapters::file {

namespace {

constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                           IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

class InotifyWatcher final : public DirWatcher {
 public:
  InotifyWatcher(int ifd, int efd) : ifd_(ifd), efd_(efd) {}
  ~InotifyWatcher() override {
    ::close(ifd_);
    ::close(efd_);
  }
  InotifyWatcher(const InotifyWatcher&) = delete;
  InotifyWatcher& operator=(const InotifyWatcher&) = delete;

  std::string_view mechanism() const override { return "inotify"; }

  Status add(const std::filesystem::path& dir) override {
    std::lock_guard lock(mu_);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error(Errc::not_found, "directory " + dir.string() + " does not exist");
    }
    const std::string key = dir.string();
    auto it = by_path_.find(key);
    if (it != by_path_.end() && it->second.ino == st.st_ino && it->second.dev == st.st_dev) {
      return {};
    }
    const int wd = ::inotify_add_watch(ifd_, dir.c_str(), kMask);
    if (wd < 0) {
      const int err = errno;
      return Error(Errc::io, "inotify_add_watch " + dir.string() + ": " + std::strerror(err) +
                                 (err == ENOSPC ? " (raise fs.inotify.max_user_watches)" : ""));
    }
    by_path_[key] = Watch{wd, st.st_dev, st.st_ino};
    by_wd_[wd] = key;
    return {};
  }

  bool wait(std::chrono::milliseconds timeout) override {
    std::array<pollfd, 2> fds{};
    fds[0].fd = ifd_;
    fds[0].events = POLLIN;
    fds[1].fd = efd_;
    fds[1].events = POLLIN;
    const auto ms = std::max<int64_t>(0, std::min<int64_t>(timeout.count(), 1 << 30));
    int rc;
    do {
      rc = ::poll(fds.data(), fds.size(), static_cast<int>(ms));
    } while (rc < 0 && errno == EINTR);
    bool changed = false;
    if (rc > 0 && (fds[1].revents & POLLIN) != 0) {
      uint64_t v;
      (void)!::read(efd_, &v, sizeof v);
    }
    if (rc > 0 && (fds[0].revents & POLLIN) != 0) {
      changed = drain();
    }
    return changed;
  }

  void interrupt() override {
    const uint64_t one = 1;
    (void)!::write(efd_, &one, sizeof one);
  }

 private:
  struct Watch {
    int wd;
    dev_t dev;
    ino_t ino;
  };

  // Reads every queued event; forgets watches the kernel dropped. True if any event counts.
  bool drain() {
    alignas(inotify_event) std::array<char, 16384> buf;
    bool changed = false;
    for (;;) {
      const ssize_t n = ::read(ifd_, buf.data(), buf.size());
      if (n <= 0) {
        break;
      }
      for (ssize_t off = 0; off < n;) {
        inotify_event ev{};
        std::memcpy(&ev, buf.data() + off, sizeof ev);
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev.len);
        changed = true;
        if ((ev.mask & IN_IGNORED) != 0) {
          std::lock_guard lock(mu_);
          auto it = by_wd_.find(ev.wd);
          if (it != by_wd_.end()) {
            by_path_.erase(it->second);
            by_wd_.erase(it);
          }
        }
      }
      if (static_cast<size_t>(n) < buf.size() - sizeof(inotify_event) - NAME_MAX - 1) {
        break;  // short read: the queue is empty (the fd is non-blocking anyway)
      }
    }
    return changed;
  }

  int ifd_;
  int efd_;
  std::mutex mu_;
  std::map<std::string, Watch> by_path_;
  std::map<int, std::string> by_wd_;
};

}  // namespace

Result<DirWatcherPtr> makeNativeWatcher() {
  const int ifd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd < 0) {
    const int err = errno;
    return Error(Errc::io, std::string("inotify_init1: ") + std::strerror(err) +
                               (err == EMFILE ? " (raise fs.inotify.max_user_instances)" : ""));
  }
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    const int err = errno;
    ::close(ifd);
    return Error(Errc::io, std::string("eventfd: ") + std::strerror(err));
  }
  return DirWatcherPtr(std::make_unique<InotifyWatcher>(ifd, efd));
}

}  // namespace psa::adapters::file
