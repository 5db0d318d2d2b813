// The file-drop source's lifecycle (start, stop, status), its reader thread's loop, the scan of
// the directory for complete files, and pruning of old progress entries. One file into the
// store: file_drop_ingest.cpp; where it goes afterwards: file_drop_dispose.cpp.
#include "file/file_drop_source.h"

#include <algorithm>
#include <cerrno>
#include <future>
#include <set>

#include "file/file_drop_internal.h"
#include "psa/adapters/file/glob.h"
#include "psa/store/clock.h"
#include "psa/store/fatal.h"

namespace psa::adapters::file {

namespace fs = std::filesystem;

namespace {

constexpr auto kPruneEvery = std::chrono::hours(6);

}  // namespace

std::string fileWatermarkKey(std::string_view sha256_hex) {
  return "file:" + std::string(sha256_hex);
}

// ---------------------------------------------------------------------------------------------

FileDropSource::FileDropSource(FileDropConfig config, store::RecordSink& sink, ClockPtr clock)
    : config_(std::move(config)),
      sink_(sink),
      clock_(clock ? std::move(clock) : Clock::system()),
      log_("file-drop", config_.name) {
  status_.state = "stopped";
}

FileDropSource::~FileDropSource() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (watcher_) {
    watcher_->interrupt();
  }
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
}

Status FileDropSource::start() {
  std::lock_guard lock(mu_);
  if (started_) {
    return {};
  }
  std::error_code ec;
  if (!fs::is_directory(config_.dir, ec)) {
    return Error(Errc::not_found,
                 "path " + config_.dir.string() + " does not exist or is not a directory");
  }
  for (const fs::path& d : {config_.error_dir, config_.archive_dir}) {
    if (d == config_.archive_dir && config_.after != AfterIngest::archive) {
      continue;
    }
    fs::create_directories(d, ec);
    if (ec) {
      return Error(Errc::io, "cannot create " + d.string() + ": " + ec.message());
    }
  }
  if (config_.watch == WatchMode::automatic) {
    auto w = makeNativeWatcher();
    if (w) {
      watcher_ = std::move(w).value();
    } else {
      log_.warn("inotify_unavailable", {{"error", w.error().message}, {"fallback", "polling"}});
    }
  }
  if (!watcher_) {
    watcher_ = makePollingWatcher();
  }
  if (auto st = watcher_->add(config_.dir); !st) {
    return st;
  }
  started_ = true;
  setState("watching", true);
  log_.info("watching", {{"path", config_.dir.string()},
                         {"watch", watcher_->mechanism()},
                         {"format", fileFormatName(config_.defaults.format)},
                         {"complete", config_.complete == Completion::stable   ? "stable"
                                      : config_.complete == Completion::marker ? "marker"
                                                                               : "rename"}});
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    started_ = false;
    return Error(Errc::internal, std::string("cannot start the reader thread: ") + e.what());
  }
  return {};
}

void FileDropSource::stop(std::function<void()> done) {
  bool call_now = false;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (!started_ || exited_) {
      call_now = true;
    } else if (done) {
      on_stopped_.push_back(std::move(done));
    }
  }
  cv_.notify_all();
  if (watcher_) {
    watcher_->interrupt();
  }
  if (call_now && done) {
    done();
  }
}

SourceStatus FileDropSource::status() const {
  std::lock_guard lock(status_mu_);
  SourceStatus s = status_;
  json::Value d = json::Value::object();
  d.set("path", json::Value::string(config_.dir.string()));
  d.set("watch", json::Value::string(watcher_ ? std::string(watcher_->mechanism()) : "none"));
  d.set("error_dir", json::Value::string(config_.error_dir.string()));
  if (!current_file_.empty()) {
    d.set("current_file", json::Value::string(current_file_));
  }
  if (!last_file_.empty()) {
    d.set("last_file", json::Value::string(last_file_));
  }
  if (!last_error_file_.empty()) {
    d.set("last_error_file", json::Value::string(last_error_file_));
  }
  s.detail = std::move(d);
  return s;
}

void FileDropSource::setState(const std::string& state, bool healthy, const std::string& error) {
  std::lock_guard lock(status_mu_);
  status_.state = state;
  status_.healthy = healthy;
  if (!error.empty()) {
    status_.last_error = error;
    status_.last_error_ms = clock_->nowMs();
  }
}

void FileDropSource::count(const std::string& counter, uint64_t n) {
  std::lock_guard lock(status_mu_);
  status_.counters[counter] += n;
}

bool FileDropSource::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stopping_.load(); });
  return !stopping_;
}

void FileDropSource::run() {
  guardInvariant("file_drop.reader_thread", [this] { loop(); });
  setState("stopped", true);
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    exited_ = true;
    callbacks.swap(on_stopped_);
  }
  log_.info("stopped");
  for (auto& f : callbacks) {
    f();
  }
}

void FileDropSource::loop() {
  prune(true);
  bool dir_failed = false;
  while (!stopping_) {
    prune(false);
    ScanResult scan_result = scan();
    if (!scan_result.ok) {
      if (!dir_failed) {
        log_.error("directory_unavailable",
                   {{"path", config_.dir.string()}, {"problem", scan_result.problem}});
      }
      dir_failed = true;
      setState("failed", false, scan_result.problem);
      watcher_->wait(config_.poll_interval);
      continue;
    }
    if (dir_failed) {
      log_.info("directory_available", {{"path", config_.dir.string()}});
      dir_failed = false;
      setState("watching", true);
    }
    bool attempted = false;
    for (const Candidate& c : scan_result.ready) {
      if (stopping_) {
        break;
      }
      attempted = true;
      if (ingest(c) == Outcome::stopped) {
        break;
      }
    }
    {
      std::lock_guard lock(status_mu_);
      current_file_.clear();
    }
    if (stopping_) {
      break;
    }
    if (attempted) {
      continue;  // more files may have arrived meanwhile
    }
    auto timeout = config_.poll_interval;
    if (scan_result.next_check) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
                             *scan_result.next_check - SteadyClock::now()) +
                         std::chrono::milliseconds(1);
      timeout = std::clamp(until, std::chrono::milliseconds(1), timeout);
    }
    watcher_->wait(timeout);
  }
}

// ---------------------------------------------------------------------------------------------
// Scanning and completeness

FileDropSource::ScanResult FileDropSource::scan() {
  ScanResult r;
  std::error_code ec;
  if (!fs::is_directory(config_.dir, ec)) {
    r.ok = false;
    r.problem = "directory " + config_.dir.string() + " is missing or not a directory";
    return r;
  }
  if (auto st = watcher_->add(config_.dir); !st) {
    log_.debug("watch_failed", {{"error", st.error().message}});
  }
  std::vector<Candidate> files;
  std::set<std::string> names;
  auto consider = [&](const fs::directory_entry& e) {
    std::error_code fec;
    if (!e.is_regular_file(fec)) {
      return;
    }
    auto st = statPath(e.path());
    if (!st) {
      return;
    }
    Candidate c;
    c.path = e.path();
    c.rel = e.path().lexically_relative(config_.dir).generic_string();
    c.size = st->size;
    c.mtime_ns = st->mtime_ns;
    names.insert(c.rel);
    files.push_back(std::move(c));
  };
  if (config_.recursive) {
    const fs::path archive = config_.archive_dir.lexically_normal();
    const fs::path error = config_.error_dir.lexically_normal();
    fs::recursive_directory_iterator it(config_.dir, fs::directory_options::skip_permission_denied,
                                        ec);
    if (ec) {
      r.ok = false;
      r.problem = "cannot list " + config_.dir.string() + ": " + ec.message();
      return r;
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) {
        break;
      }
      const fs::directory_entry& e = *it;
      std::error_code dec;
      if (e.is_directory(dec)) {
        const fs::path p = e.path().lexically_normal();
        const std::string name = e.path().filename().string();
        if (p == archive || p == error || (!name.empty() && name[0] == '.')) {
          it.disable_recursion_pending();
        } else {
          (void)watcher_->add(e.path());
        }
        continue;
      }
      consider(e);
    }
  } else {
    fs::directory_iterator it(config_.dir, fs::directory_options::skip_permission_denied, ec);
    if (ec) {
      r.ok = false;
      r.problem = "cannot list " + config_.dir.string() + ": " + ec.message();
      return r;
    }
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) {
        break;
      }
      consider(*it);
    }
  }

  const auto now = SteadyClock::now();
  auto later = [&](SteadyClock::time_point t) {
    if (!r.next_check || t < *r.next_check) {
      r.next_check = t;
    }
  };
  auto isMarker = [&](const std::string& name) {
    for (const auto& s : config_.marker_suffixes) {
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        return true;
      }
    }
    return false;
  };
  for (Candidate& c : files) {
    const std::string name = fs::path(c.rel).filename().string();
    bool skip = false;
    for (const auto& t : config_.temp_patterns) {
      skip = skip || globMatch(t, name, config_.ignore_case);
    }
    if (skip || (config_.complete == Completion::marker && isMarker(name))) {
      continue;
    }
    bool included = false;
    for (const auto& p : config_.include) {
      included = included || globMatchPath(p, c.rel, config_.ignore_case);
    }
    for (const auto& p : config_.exclude) {
      included = included && !globMatchPath(p, c.rel, config_.ignore_case);
    }
    if (!included) {
      continue;
    }
    if (auto it = retry_at_.find(c.rel); it != retry_at_.end()) {
      if (now < it->second) {
        later(it->second);
        continue;
      }
      retry_at_.erase(it);
    }
    switch (config_.complete) {
      case Completion::stable: {
        auto [it, inserted] = observed_.try_emplace(c.rel, Observed{c.size, c.mtime_ns, now});
        if (!inserted && (it->second.size != c.size || it->second.mtime_ns != c.mtime_ns)) {
          it->second = Observed{c.size, c.mtime_ns, now};
        }
        if (now - it->second.since >= config_.stable) {
          r.ready.push_back(c);
        } else {
          later(it->second.since + config_.stable);
        }
        break;
      }
      case Completion::marker: {
        const fs::path rel(c.rel);
        const std::string dir =
            rel.has_parent_path() ? rel.parent_path().generic_string() + "/" : "";
        const std::string stem = rel.stem().string();
        bool marked = false;
        for (const auto& s : config_.marker_suffixes) {
          marked = marked || names.count(c.rel + s) > 0 ||
                   (rel.has_extension() && names.count(dir + stem + s) > 0);
        }
        if (marked) {
          r.ready.push_back(c);
        }
        break;
      }
      case Completion::rename:
        r.ready.push_back(c);
        break;
    }
  }
  // Forget files that are gone.
  for (auto it = observed_.begin(); it != observed_.end();) {
    it = names.count(it->first) ? std::next(it) : observed_.erase(it);
  }
  for (auto it = retry_at_.begin(); it != retry_at_.end();) {
    it = names.count(it->first) ? std::next(it) : retry_at_.erase(it);
  }
  for (auto it = committed_not_disposed_.begin(); it != committed_not_disposed_.end();) {
    it = names.count(it->first) ? std::next(it) : committed_not_disposed_.erase(it);
  }
  std::sort(r.ready.begin(), r.ready.end(), [](const Candidate& a, const Candidate& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns < b.mtime_ns : a.rel < b.rel;
  });
  return r;
}

// Old progress entries: done files past the duplicate window, and abandoned partial ones.
void FileDropSource::prune(bool force) {
  const auto now = SteadyClock::now();
  if (!force && now < next_prune_) {
    return;
  }
  next_prune_ = now + kPruneEvery;
  auto all = sink_.watermarks(config_.name);
  if (!all) {
    if (!all.error().is(Errc::invalid_argument)) {
      log_.warn("prune_failed", {{"error", all.error().message}});
    }
    return;
  }
  const int64_t cutoff =
      clock_->nowMs() -
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.duplicate_window).count();
  store::AppendBatch batch;
  size_t pruned = 0;
  for (const auto& [key, value] : *all) {
    if (key.rfind("file:", 0) != 0) {
      continue;
    }
    auto p = Progress::parse(value);
    if (!p) {
      continue;
    }
    std::error_code ec;
    const bool old_done = p->state == "done" && p->done_ms < cutoff;
    const bool abandoned = p->state == "partial" && p->updated_ms < cutoff &&
                           !fs::exists(config_.dir / fs::path(p->name), ec);
    if (old_done || abandoned) {
      batch.watermarks.push_back(store::WatermarkUpdate{config_.name, key, std::nullopt});
    }
    if (batch.watermarks.size() >= 500) {
      pruned += batch.watermarks.size();
      (void)sink_.appendSync(std::move(batch));
      batch = store::AppendBatch{};
    }
  }
  if (!batch.watermarks.empty()) {
    pruned += batch.watermarks.size();
    (void)sink_.appendSync(std::move(batch));
  }
  if (pruned > 0) {
    log_.info("progress_pruned", {{"entries", static_cast<uint64_t>(pruned)}});
  }
}

}  // namespace psa::adapters::file
