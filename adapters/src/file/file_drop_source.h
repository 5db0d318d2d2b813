// FileDropSource: the `file-drop` adapter. One reader thread per adapter watches a directory
// (inotify or polling), picks up complete files, and streams each into the store in batches,
// every batch committed together with the file's checkpoint (a watermark keyed by the file's
// content hash), so a restart after a crash at any moment resumes with no record lost or
// repeated. Files are archived or deleted after their last batch is durable; files that
// cannot be read as configured go to the error directory with a reason file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "file/file_drop_config.h"
#include "file/file_readers.h"
#include "psa/adapters/file/dir_watcher.h"
#include "psa/adapters/source.h"
#include "psa/store/log.h"

namespace psa::adapters::file {

/// Watermark key of a file: "file:" + SHA-256 (hex) of its content.
std::string fileWatermarkKey(std::string_view sha256_hex);

class FileDropSource final : public Source {
 public:
  FileDropSource(FileDropConfig config, store::RecordSink& sink, ClockPtr clock);
  ~FileDropSource() override;
  FileDropSource(const FileDropSource&) = delete;
  FileDropSource& operator=(const FileDropSource&) = delete;

  const std::string& name() const override { return config_.name; }
  const std::string& type() const override { return type_; }
  Status start() override;
  void stop(std::function<void()> done) override;
  SourceStatus status() const override;

 private:
  struct Candidate {
    std::string rel;  ///< '/'-separated path relative to the watched directory
    std::filesystem::path path;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
  };
  struct Observed {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::chrono::steady_clock::time_point since;
  };
  struct ScanResult {
    bool ok = true;
    std::string problem;
    std::vector<Candidate> ready;
    std::optional<std::chrono::steady_clock::time_point> next_check;
  };
  enum class Outcome { done, failed, deferred, stopped };
  struct Progress;
  struct Ingest;

  void run();
  void loop();
  ScanResult scan();
  Outcome ingest(const Candidate& c);
  Outcome pump(Ingest& in);
  Outcome finishDone(Ingest& in, bool duplicate);
  Outcome failFile(Ingest& in, const FatalIssue& issue, bool nothing_ingested);
  Outcome deferFile(const Candidate& c, std::chrono::milliseconds delay);
  bool dispose(const Candidate& c, std::string& where);
  bool moveToError(const Candidate& c, const std::string& report, std::string& where);
  void writeRowReport(Ingest& in, const std::string& disposed_to);
  void removeMarkers(const Candidate& c);
  void prune(bool force);
  bool sleepFor(std::chrono::milliseconds d);
  void setState(const std::string& state, bool healthy, const std::string& error = {});
  void count(const std::string& counter, uint64_t n = 1);

  FileDropConfig config_;
  const std::string type_ = "file-drop";
  store::RecordSink& sink_;
  ClockPtr clock_;
  log::Logger log_;
  DirWatcherPtr watcher_;

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool exited_ = false;
  std::vector<std::function<void()>> on_stopped_;

  mutable std::mutex status_mu_;
  SourceStatus status_;
  std::string current_file_;
  std::string last_file_;
  std::string last_error_file_;

  // Reader thread only.
  std::map<std::string, Observed> observed_;
  std::map<std::string, std::chrono::steady_clock::time_point> retry_at_;
  /// Files whose last batch is committed but that could not be archived/deleted yet.
  std::map<std::string, InputFile::Stat> committed_not_disposed_;
  std::chrono::steady_clock::time_point next_prune_{};
};

}  // namespace psa::adapters::file
