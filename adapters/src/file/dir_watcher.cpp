#include "psa/adapters/file/dir_watcher.h"

#include <condition_variable>
#include <mutex>
#include <string>

namespace psa::adapters::file {

namespace {

class PollingWatcher final : public DirWatcher {
 public:
  std::string_view mechanism() const override { return "polling"; }

  Status add(const std::filesystem::path& dir) override {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return Error(Errc::not_found, "directory " + dir.string() + " does not exist");
    }
    return {};
  }

  bool wait(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return interrupted_; });
    interrupted_ = false;
    return false;
  }

  void interrupt() override {
    std::lock_guard lock(mu_);
    interrupted_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool interrupted_ = false;
};

}  // namespace

DirWatcherPtr makePollingWatcher() { return std::make_unique<PollingWatcher>(); }

}  // namespace psa::adapters::file
