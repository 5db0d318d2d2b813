#include "file/file_drop_source.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <future>
#include <set>

#include "psa/adapters/file/glob.h"
#include "psa/adapters/hl7/identity.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"

namespace psa::adapters::file {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxIssues = 100;  // dead-letter lines kept per file (watermark, report)
constexpr size_t kMaxIssueChars = 400;
constexpr auto kPruneEvery = std::chrono::hours(6);
constexpr auto kRetryUnreadable = std::chrono::seconds(60);
// A file another program still writes (Windows sharing violation) is looked at again soon.
constexpr auto kRetryBusy = std::chrono::seconds(2);
constexpr auto kMaxBackoff = std::chrono::seconds(30);

std::string hex(const unsigned char* p, size_t n) {
  static const char* const digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

// SHA-256 of a whole open file, read in chunks. Errc::closed when `stop` is raised.
Result<std::string> hashFile(const InputFile& file, uint64_t size, const std::atomic<bool>& stop) {
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Error(Errc::internal, "SHA-256 unavailable");
  }
  std::string buf(kReadChunk, '\0');
  uint64_t pos = 0;
  while (pos < size) {
    if (stop) {
      return Error(Errc::closed, "stopping");
    }
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kReadChunk, size - pos));
    auto n = file.readAt(pos, buf.data(), want);
    if (!n) {
      return std::move(n).error();
    }
    if (*n == 0) {
      break;
    }
    EVP_DigestUpdate(ctx.get(), buf.data(), *n);
    pos += *n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return hex(digest, len);
}

Result<std::string> readWhole(const InputFile& file, uint64_t size) {
  std::string text(static_cast<size_t>(size), '\0');
  uint64_t pos = 0;
  while (pos < size) {
    auto n = file.readAt(pos, text.data() + pos,
                         static_cast<size_t>(std::min<uint64_t>(kReadChunk, size - pos)));
    if (!n) {
      return std::move(n).error();
    }
    if (*n == 0) {
      text.resize(static_cast<size_t>(pos));
      break;
    }
    pos += *n;
  }
  return text;
}

std::string utcDatePath(int64_t unix_ms) {
  const std::tm tm = utcCalendar(unix_ms / 1000);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d/%02d/%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

// `path`, or `stem.N.ext` with the first N that does not exist yet.
fs::path uniquePath(const fs::path& path, std::string_view companion_suffix = {}) {
  std::error_code ec;
  auto free = [&](const fs::path& p) {
    return !fs::exists(p, ec) &&
           (companion_suffix.empty() ||
            !fs::exists(fs::path(p.string() + std::string(companion_suffix)), ec));
  };
  if (free(path)) {
    return path;
  }
  const std::string stem = path.stem().string();
  const std::string ext = path.extension().string();
  for (int n = 1; n < 100000; ++n) {
    fs::path p = path.parent_path() / (stem + "." + std::to_string(n) + ext);
    if (free(p)) {
      return p;
    }
  }
  return path.parent_path() / (stem + "." + std::to_string(std::rand()) + ext);
}

// Renames (or copies across file systems) `from` to `to`, or to a free name near it when
// `find_free_name`; returns where.
Result<fs::path> moveFile(const fs::path& from, const fs::path& to, bool find_free_name) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) {
    return Error(Errc::io, "cannot create " + to.parent_path().string() + ": " + ec.message());
  }
  const fs::path target = find_free_name ? uniquePath(to) : to;
  fs::rename(from, target, ec);
  if (ec == std::errc::cross_device_link) {
    const fs::path tmp = target.string() + ".copying";
    ec.clear();
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
    if (!ec) {
      fs::rename(tmp, target, ec);
    }
    if (!ec) {
      fs::remove(from, ec);
    } else {
      std::error_code ignore;
      fs::remove(tmp, ignore);
    }
  }
  if (ec) {
    return Error(Errc::io, "cannot move to " + target.string() + ": " + ec.message());
  }
  return target;
}

Status writeTextFile(const fs::path& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      return Error(Errc::io, "cannot write " + tmp.string());
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    return Error(Errc::io, "cannot write " + path.string() + ": " + ec.message());
  }
  return {};
}

std::string kindText(const FileProfile& p) {
  switch (p.format) {
    case FileFormat::hl7:
      return "per message type";
    case FileFormat::x12:
      return "billing";
    default:
      return std::string(store::kindName(p.kind));
  }
}

std::string clip(std::string s) {
  if (s.size() > kMaxIssueChars) {
    s.resize(kMaxIssueChars);
    s += "...";
  }
  return s;
}

}  // namespace

std::string fileWatermarkKey(std::string_view sha256_hex) {
  return "file:" + std::string(sha256_hex);
}

// ---------------------------------------------------------------------------------------------
// Progress: the value of a file's watermark.

struct FileDropSource::Progress {
  std::string state = "partial";  // "partial" | "done"
  std::string name;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string profile;
  std::string cp;
  uint64_t records = 0;
  uint64_t dead = 0;
  std::vector<std::string> issues;
  uint64_t issues_more = 0;
  int64_t started_ms = 0;
  int64_t updated_ms = 0;
  int64_t done_ms = 0;
  std::string error;

  std::string toJson() const {
    json::Value v = json::Value::object();
    v.set("v", json::Value::integer(1));
    v.set("state", json::Value::string(state));
    v.set("name", json::Value::string(name));
    v.set("size", json::Value::integer(static_cast<int64_t>(size)));
    v.set("mtime_ns", json::Value::integer(mtime_ns));
    v.set("profile", json::Value::string(profile));
    v.set("cp", json::Value::string(cp));
    v.set("records", json::Value::integer(static_cast<int64_t>(records)));
    v.set("dead", json::Value::integer(static_cast<int64_t>(dead)));
    json::Value list = json::Value::array();
    for (const auto& i : issues) {
      list.push(json::Value::string(i));
    }
    v.set("issues", std::move(list));
    v.set("issues_more", json::Value::integer(static_cast<int64_t>(issues_more)));
    v.set("started_ms", json::Value::integer(started_ms));
    v.set("updated_ms", json::Value::integer(updated_ms));
    v.set("done_ms", json::Value::integer(done_ms));
    if (!error.empty()) {
      v.set("error", json::Value::string(error));
    }
    return json::serialize(v);
  }

  static std::optional<Progress> parse(std::string_view text) {
    auto v = json::parse(text);
    if (!v || !v->isObject() || v->getInt("v") != 1) {
      return std::nullopt;
    }
    Progress p;
    p.state = v->getString("state");
    if (p.state != "partial" && p.state != "done") {
      return std::nullopt;
    }
    p.name = v->getString("name");
    p.size = static_cast<uint64_t>(v->getInt("size"));
    p.mtime_ns = v->getInt("mtime_ns");
    p.profile = v->getString("profile");
    p.cp = v->getString("cp");
    p.records = static_cast<uint64_t>(v->getInt("records"));
    p.dead = static_cast<uint64_t>(v->getInt("dead"));
    if (const auto* list = v->find("issues"); list != nullptr && list->isArray()) {
      for (const auto& i : list->items()) {
        p.issues.push_back(i.asString());
      }
    }
    p.issues_more = static_cast<uint64_t>(v->getInt("issues_more"));
    p.started_ms = v->getInt("started_ms");
    p.updated_ms = v->getInt("updated_ms");
    p.done_ms = v->getInt("done_ms");
    p.error = v->getString("error");
    return p;
  }
};

/// Everything about the file being ingested. Lives on the reader thread's stack; the reader
/// context points into it.
struct FileDropSource::Ingest {
  Candidate c;
  std::optional<InputFile> file;
  InputFile::Stat st;
  const FileProfile* profile = nullptr;
  std::string sha;
  std::string key;
  std::string text;
  hl7::Hl7File hl7;
  ReaderContext rctx;
  Progress committed;
  SteadyClock::time_point t0;
  uint64_t records_this_run = 0;
  uint64_t dead_this_run = 0;
  bool resumed = false;
};

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

// ---------------------------------------------------------------------------------------------
// One file

FileDropSource::Outcome FileDropSource::deferFile(const Candidate& c,
                                                  std::chrono::milliseconds delay) {
  retry_at_[c.rel] = SteadyClock::now() + delay;
  return Outcome::deferred;
}

FileDropSource::Outcome FileDropSource::ingest(const Candidate& c) {
  Ingest in;
  in.c = c;
  in.t0 = SteadyClock::now();
  {
    std::lock_guard lock(status_mu_);
    current_file_ = c.rel;
  }
  auto opened = InputFile::open(c.path);
  if (!opened) {
    if (opened.error().is(Errc::not_found)) {
      return Outcome::deferred;  // gone meanwhile (renamed by its writer, taken by someone)
    }
    if (opened.error().is(Errc::busy)) {
      // Still open for writing by the PMS (Windows sharing violation): never read it half
      // written; look again shortly.
      log_.debug("file_busy", {{"file", c.rel}});
      {
        std::lock_guard lock(status_mu_);
        status_.counters["files_busy"] += 1;  // deferrals, not files
      }
      return deferFile(c, kRetryBusy);
    }
    log_.error("file_unreadable", {{"file", c.rel}, {"error", opened.error().message}});
    FatalIssue issue{"unreadable", 0, 0,
                     opened.error().message + " (check the file's owner and mode)"};
    in.profile = &config_.profileFor(c.rel);
    return failFile(in, issue, true);
  }
  in.file.emplace(std::move(opened).value());
  auto st = in.file->stat();
  if (!st) {
    return deferFile(c, kRetryUnreadable);
  }
  in.st = *st;
  if (auto it = committed_not_disposed_.find(c.rel);
      it != committed_not_disposed_.end() && it->second == in.st) {
    std::string where;
    if (!dispose(c, where)) {
      return deferFile(c, kRetryUnreadable);
    }
    committed_not_disposed_.erase(c.rel);
    removeMarkers(c);
    return Outcome::done;
  }
  in.profile = &config_.profileFor(c.rel);
  const FileProfile& prof = *in.profile;

  // Pass 1: content identity (and, for formats read whole, the content itself).
  if (prof.format == FileFormat::hl7 || prof.format == FileFormat::opaque) {
    const size_t limit =
        prof.format == FileFormat::hl7 ? config_.hl7_max_file_bytes : config_.opaque_max_bytes;
    if (in.st.size > limit) {
      const std::string key =
          prof.format == FileFormat::hl7 ? "hl7.max_file_bytes" : "opaque.max_file_bytes";
      return failFile(in,
                      FatalIssue{"file_too_large", 0, 0,
                                 "file is " + std::to_string(in.st.size) + " bytes; " + key +
                                     " is " + std::to_string(limit)},
                      true);
    }
    auto text = readWhole(*in.file, in.st.size);
    if (!text) {
      log_.error("file_read_failed", {{"file", c.rel}, {"error", text.error().message}});
      return deferFile(c, kRetryUnreadable);
    }
    in.text = std::move(text).value();
    in.sha = psa::sha256Hex(in.text);
  } else {
    auto sha = hashFile(*in.file, in.st.size, stopping_);
    if (!sha && sha.error().is(Errc::closed)) {
      return Outcome::stopped;
    }
    if (!sha) {
      log_.error("file_read_failed", {{"file", c.rel}, {"error", sha.error().message}});
      return deferFile(c, kRetryUnreadable);
    }
    in.sha = std::move(sha).value();
  }
  auto st2 = in.file->stat();
  if (!st2 || !(*st2 == in.st)) {
    // Still being written after all: start the completeness wait again.
    log_.info("file_changed_while_reading", {{"file", c.rel}});
    observed_.erase(c.rel);
    return deferFile(c, std::max(config_.poll_interval, std::chrono::milliseconds(1000)));
  }
  in.key = fileWatermarkKey(in.sha);
  in.rctx.config = &config_;
  in.rctx.profile = in.profile;
  in.rctx.file = &*in.file;
  in.rctx.file_size = in.st.size;
  in.rctx.text = in.text;
  in.rctx.label = c.rel;
  if (prof.format == FileFormat::hl7) {
    hl7::SplitLimits limits;
    limits.max_file_bytes = config_.hl7_max_file_bytes;
    auto split = hl7::splitMessages(in.text, limits);
    if (!split) {
      return failFile(in, FatalIssue{"hl7_file", 0, 0, split.error().message}, true);
    }
    in.hl7 = std::move(split).value();
    if (auto counts = in.hl7.checkCounts(); !counts) {
      return failFile(in, FatalIssue{"hl7_batch_count", 0, 0, counts.error().message}, true);
    }
    in.rctx.hl7_file = &in.hl7;
  }

  // What do we already know about this content?
  auto wm = sink_.watermark(config_.name, in.key);
  if (!wm) {
    log_.error("watermark_read_failed", {{"file", c.rel}, {"error", wm.error().message}});
    return deferFile(c, std::chrono::seconds(5));
  }
  if (wm->has_value()) {
    auto p = Progress::parse(**wm);
    if (!p) {
      log_.error("progress_unreadable", {{"file", c.rel}});
      return failFile(
          in,
          FatalIssue{"progress_unreadable", 0, 0,
                     "the stored progress of this content is unreadable; not ingesting it "
                     "again (it may have been ingested already)"},
          false);
    }
    if (p->state == "done") {
      in.committed = std::move(*p);
      const bool same = in.committed.name == c.rel && in.committed.size == in.st.size &&
                        in.committed.mtime_ns == in.st.mtime_ns;
      if (same) {
        log_.info("file_already_ingested", {{"file", c.rel}, {"records", in.committed.records}});
        return finishDone(in, false);
      }
      log_.warn("file_duplicate", {{"file", c.rel},
                                   {"first_ingested_as", in.committed.name},
                                   {"records", in.committed.records}});
      if (config_.duplicates == DuplicatePolicy::error) {
        return failFile(in,
                        FatalIssue{"duplicate", 0, 0,
                                   "same content as " + in.committed.name + ", ingested at " +
                                       formatRfc3339(in.committed.done_ms) + " (" +
                                       std::to_string(in.committed.records) + " records)"},
                        true);
      }
      return finishDone(in, true);
    }
    if (p->profile != prof.fingerprint()) {
      return failFile(in,
                      FatalIssue{"settings_changed", 0, 0,
                                 "this content was partly ingested (" + std::to_string(p->records) +
                                     " records) with settings \"" + p->profile +
                                     "\"; the settings for it are now \"" + prof.fingerprint() +
                                     "\". Restore the old settings to resume it"},
                      false);
    }
    in.committed = std::move(*p);
    in.resumed = true;
    log_.info("file_resumed", {{"file", c.rel}, {"records_done", in.committed.records}});
  } else {
    // Pass 2 (new content only): a file with a fatal error is moved aside before any of it
    // is ingested.
    if (prof.format == FileFormat::csv || prof.format == FileFormat::x12) {
      auto reader = makeReader(in.rctx, "");
      if (!reader) {
        return failFile(in, FatalIssue{"settings", 0, 0, reader.error().message}, true);
      }
      Item item;
      for (;;) {
        auto r = (*reader)->next(item);
        if (!r) {
          if (r.error().is(Errc::io)) {
            log_.error("file_read_failed", {{"file", c.rel}, {"error", r.error().message}});
            return deferFile(c, kRetryUnreadable);
          }
          return failFile(in, (*reader)->fatal(), true);
        }
        if (*r == Item::Type::end) {
          break;
        }
        if (stopping_) {
          return Outcome::stopped;
        }
      }
    }
    in.committed.name = c.rel;
    in.committed.size = in.st.size;
    in.committed.mtime_ns = in.st.mtime_ns;
    in.committed.profile = prof.fingerprint();
    in.committed.started_ms = clock_->nowMs();
  }
  return pump(in);
}

// Streams the file from the committed checkpoint into the store: one batch in flight while
// the next is read; batches commit strictly in order, each with the checkpoint after its last
// item. On a failed commit everything after the committed checkpoint is read again.
FileDropSource::Outcome FileDropSource::pump(Ingest& in) {
  struct Inflight {
    std::future<Result<store::AppendResult>> result;
    Progress after;
    size_t issue_begin = 0;
    size_t issue_count = 0;
    uint64_t records = 0;
    uint64_t dead = 0;
    uint64_t bytes = 0;
  };
  auto submit = [&](store::AppendBatch batch, const Progress& p, Inflight& f) {
    batch.watermarks.push_back(store::WatermarkUpdate{config_.name, in.key, p.toJson()});
    auto promise = std::make_shared<std::promise<Result<store::AppendResult>>>();
    f.result = promise->get_future();
    f.after = p;
    sink_.append(std::move(batch),
                 [promise](Result<store::AppendResult> r) { promise->set_value(std::move(r)); });
  };
  std::chrono::milliseconds backoff(0);
  bool paused = false;
  // Handles a failed commit: true = read again from the committed checkpoint.
  auto onFailure = [&](const Error& err, Outcome& out) -> bool {
    if (err.is(Errc::closed)) {
      out = Outcome::stopped;
      return false;
    }
    if (err.is(Errc::invalid_argument) || err.is(Errc::limit)) {
      out = failFile(in,
                     FatalIssue{"store_refused", 0, 0, "the store refused a batch: " + err.message},
                     in.committed.records + in.committed.dead == 0);
      return false;
    }
    backoff = std::min<std::chrono::milliseconds>(
        kMaxBackoff, backoff.count() == 0 ? std::chrono::milliseconds(500) : backoff * 2);
    if (err.is(Errc::full)) {
      if (!paused) {
        log_.warn("paused_store_full",
                  {{"file", in.c.rel}, {"records_done", in.committed.records}});
      }
      paused = true;
      count("store_full_waits");
      setState("paused", true, "store full: waiting for the queue to drain");
    } else {
      log_.error("commit_failed",
                 {{"file", in.c.rel}, {"error", err.code}, {"retry_ms", backoff.count()}});
      setState("failed", false, "commit failed: " + err.message);
    }
    if (!sleepFor(backoff)) {
      out = Outcome::stopped;
      return false;
    }
    return true;
  };
  auto applyCommitted = [&](Inflight& f, store::AppendResult& res, Progress& work) {
    for (size_t j = 0; j < f.issue_count && j < res.dead_ids.size(); ++j) {
      const std::string tag = " -> dead letter " + res.dead_ids[j];
      f.after.issues[f.issue_begin + j] += tag;
      if (f.issue_begin + j < work.issues.size()) {
        work.issues[f.issue_begin + j] += tag;
      }
    }
    in.committed = std::move(f.after);
    in.records_this_run += f.records;
    in.dead_this_run += f.dead;
    uint64_t dups = 0;
    for (const auto& a : res.records) {
      dups += a.duplicate ? 1 : 0;
    }
    count("records", f.records - dups);
    if (dups > 0) {
      count("duplicate_records", dups);
    }
    count("dead_letters", f.dead);
    count("bytes", f.bytes);
    count("commits");
    if (paused) {
      log_.info("resumed_store_accepts", {{"file", in.c.rel}});
      paused = false;
    }
    backoff = std::chrono::milliseconds(0);
    {
      std::lock_guard lock(status_mu_);
      if (status_.state != "watching") {
        status_.state = "watching";
        status_.healthy = true;
      }
      if (f.records > 0) {
        status_.last_message_ms = clock_->nowMs();
      }
    }
    log_.debug(
        "file_progress",
        {{"file", in.c.rel}, {"records", in.committed.records}, {"dead", in.committed.dead}});
  };

  for (;;) {  // (re)start at the committed checkpoint
    auto reader_r = makeReader(in.rctx, in.committed.cp);
    if (!reader_r) {
      return failFile(in,
                      FatalIssue{"checkpoint", 0, 0, "cannot resume: " + reader_r.error().message},
                      in.committed.records + in.committed.dead == 0);
    }
    FormatReaderPtr reader = std::move(reader_r).value();
    Progress work = in.committed;
    std::optional<Inflight> inflight;
    bool restart = false;
    Item item;
    while (!restart) {
      store::AppendBatch batch;
      Inflight next;
      next.issue_begin = work.issues.size();
      bool eof = false;
      std::optional<Error> fatal;
      const int64_t now = clock_->nowMs();
      while (batch.records.size() + batch.dead.size() < config_.batch_records &&
             next.bytes < config_.batch_bytes) {
        auto r = reader->next(item);
        if (!r) {
          fatal = std::move(r).error();
          break;
        }
        if (*r == Item::Type::end) {
          eof = true;
          break;
        }
        next.bytes += item.record.payload.reveal().size();
        item.record.received_at_ms = now;
        if (*r == Item::Type::record) {
          batch.records.push_back(std::move(item.record));
          ++next.records;
          ++work.records;
        } else {
          if (work.issues.size() < kMaxIssues) {
            work.issues.push_back(clip(item.reason));
          } else {
            ++work.issues_more;
          }
          batch.dead.push_back(
              store::DeadLetterInput{std::move(item.record), std::move(item.reason)});
          ++next.dead;
          ++work.dead;
        }
      }
      next.issue_count = work.issues.size() - next.issue_begin;
      work.cp = reader->checkpoint();
      work.updated_ms = now;
      if (inflight) {  // the previous batch settles first
        auto res = inflight->result.get();
        if (!res) {
          Outcome out;
          if (!onFailure(res.error(), out)) {
            return out;
          }
          restart = true;
          break;
        }
        applyCommitted(*inflight, *res, work);
        inflight.reset();
      }
      if (fatal) {
        if (fatal->is(Errc::io)) {
          log_.error("file_read_failed", {{"file", in.c.rel}, {"error", fatal->message}});
          return deferFile(in.c, kRetryUnreadable);
        }
        // Keep what came before the error (only reachable when the file differs from what the
        // validation pass read, or for errors that pass does not see).
        work.error = reader->fatal().message;
        Inflight last = std::move(next);
        submit(std::move(batch), work, last);
        auto res = last.result.get();
        if (!res) {
          Outcome out;
          if (!onFailure(res.error(), out)) {
            return out;
          }
          restart = true;
          break;
        }
        applyCommitted(last, *res, work);
        return failFile(in, reader->fatal(), false);
      }
      if (stopping_ && !eof) {
        return Outcome::stopped;  // this batch is dropped; a restart resumes at `committed`
      }
      if (eof) {
        work.state = "done";
        work.done_ms = now;
      }
      inflight.emplace(std::move(next));
      submit(std::move(batch), work, *inflight);
      if (eof) {
        auto res = inflight->result.get();
        if (!res) {
          Outcome out;
          if (!onFailure(res.error(), out)) {
            return out;
          }
          restart = true;
          break;
        }
        applyCommitted(*inflight, *res, work);
        return finishDone(in, false);
      }
    }
    if (inflight) {
      // A restart after a failed batch: its successor (if any) was never submitted.
      inflight.reset();
    }
  }
}

FileDropSource::Outcome FileDropSource::finishDone(Ingest& in, bool duplicate) {
  std::string where;
  if (!duplicate && in.committed.dead > 0) {
    // Written before the file moves, so its text can say where the file went.
    fs::path planned("deleted");
    if (config_.after == AfterIngest::archive) {
      planned = config_.archive_dir;
      if (config_.archive_dated) {
        planned /= utcDatePath(clock_->nowMs());
      }
      planned /= fs::path(in.c.rel);
    }
    writeRowReport(in, planned.string());
  }
  if (!dispose(in.c, where)) {
    committed_not_disposed_[in.c.rel] = in.st;
    return deferFile(in.c, kRetryUnreadable);
  }
  committed_not_disposed_.erase(in.c.rel);
  removeMarkers(in.c);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - in.t0).count();
  if (duplicate) {
    log_.info("file_duplicate_skipped", {{"file", in.c.rel}, {"to", where}});
  } else {
    log_.info("file_ingested", {{"file", in.c.rel},
                                {"format", fileFormatName(in.profile->format)},
                                {"records", in.committed.records},
                                {"dead", in.committed.dead},
                                {"records_this_run", in.records_this_run},
                                {"resumed", in.resumed},
                                {"bytes", in.st.size},
                                {"ms", static_cast<int64_t>(ms)},
                                {"to", where}});
  }
  std::lock_guard lock(status_mu_);
  last_file_ = in.c.rel;
  status_.counters[duplicate ? "files_duplicate" : "files_ingested"] += 1;
  status_.healthy = status_.state != "failed";
  return Outcome::done;
}

bool FileDropSource::dispose(const Candidate& c, std::string& where) {
  if (config_.after == AfterIngest::remove) {
    std::error_code ec;
    fs::remove(c.path, ec);
    if (ec) {
      log_.error("delete_failed", {{"file", c.rel}, {"error", ec.message()}});
      setState("watching", false, "cannot delete " + c.rel + ": " + ec.message());
      return false;
    }
    where = "deleted";
    return true;
  }
  fs::path target = config_.archive_dir;
  if (config_.archive_dated) {
    target /= utcDatePath(clock_->nowMs());
  }
  target /= fs::path(c.rel);
  auto moved = moveFile(c.path, target, true);
  if (!moved) {
    log_.error("archive_failed", {{"file", c.rel}, {"error", moved.error().message}});
    setState("watching", false, "cannot archive " + c.rel + ": " + moved.error().message);
    return false;
  }
  where = moved->string();
  return true;
}

void FileDropSource::removeMarkers(const Candidate& c) {
  if (config_.complete != Completion::marker) {
    return;
  }
  std::error_code ec;
  for (const auto& s : config_.marker_suffixes) {
    fs::remove(fs::path(c.path.string() + s), ec);
    if (c.path.has_extension()) {
      fs::path stem_marker = c.path.parent_path() / (c.path.stem().string() + s);
      // Only if no other data file shares the stem.
      bool shared = false;
      fs::directory_iterator it(c.path.parent_path(), ec);
      for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const fs::path& p = it->path();
        if (p != stem_marker && p.stem() == c.path.stem() && p != c.path &&
            it->is_regular_file(ec) && p.extension() != s) {
          shared = true;
        }
      }
      if (!shared) {
        fs::remove(stem_marker, ec);
      }
    }
  }
}

namespace {

std::string reportHeader(const std::string& adapter, const std::string& rel, uint64_t size,
                         const std::string& sha, const FileProfile& profile) {
  std::string r = "pms-agent file-drop report\n";
  r += "adapter:   " + adapter + "\n";
  r += "file:      " + rel + " (" + std::to_string(size) + " bytes" +
       (sha.empty() ? std::string() : ", sha256 " + sha) + ")\n";
  r += "format:    " + std::string(fileFormatName(profile.format)) + ", kind " + kindText(profile) +
       "\n";
  return r;
}

void appendIssues(std::string& r, const std::vector<std::string>& issues, uint64_t more,
                  uint64_t total) {
  r += "dead-lettered (" + std::to_string(total) +
       "; inspect with `pms-agent queue dead`, retry with `pms-agent queue retry ID`):\n";
  for (const auto& i : issues) {
    r += "  " + i + "\n";
  }
  if (more > 0) {
    r += "  ... and " + std::to_string(more) + " more\n";
  }
}

}  // namespace

void FileDropSource::writeRowReport(Ingest& in, const std::string& disposed_to) {
  std::string r = reportHeader(config_.name, in.c.rel, in.st.size, in.sha, *in.profile);
  r += "result:    ingested " + std::to_string(in.committed.records) + " records; " +
       std::to_string(in.committed.dead) + " dead-lettered; the file was " +
       (disposed_to == "deleted" ? std::string("deleted") : "archived to " + disposed_to) + "\n";
  appendIssues(r, in.committed.issues, in.committed.issues_more, in.committed.dead);
  r += "time:      " + formatRfc3339(clock_->nowMs()) + "\n";
  const fs::path path = uniquePath(config_.error_dir / fs::path(in.c.rel + ".error.txt"));
  if (auto st = writeTextFile(path, r); !st) {
    log_.error("report_write_failed", {{"file", in.c.rel}, {"error", st.error().message}});
    return;
  }
  log_.warn("file_rows_dead_lettered",
            {{"file", in.c.rel}, {"dead", in.committed.dead}, {"report", path.string()}});
  std::lock_guard lock(status_mu_);
  last_error_file_ = path.string();
}

bool FileDropSource::moveToError(const Candidate& c, const std::string& report,
                                 std::string& where) {
  const fs::path target = uniquePath(config_.error_dir / fs::path(c.rel), ".error.txt");
  const fs::path report_path = target.string() + ".error.txt";
  if (auto st = writeTextFile(report_path, report); !st) {
    log_.error("report_write_failed", {{"file", c.rel}, {"error", st.error().message}});
  }
  auto moved = moveFile(c.path, target, false);
  if (!moved) {
    log_.error("move_to_error_failed", {{"file", c.rel}, {"error", moved.error().message}});
    std::error_code ec;
    fs::remove(report_path, ec);
    return false;
  }
  where = moved->string();
  std::lock_guard lock(status_mu_);
  last_error_file_ = where + ".error.txt";
  return true;
}

FileDropSource::Outcome FileDropSource::failFile(Ingest& in, const FatalIssue& issue,
                                                 bool nothing_ingested) {
  const FileProfile& profile = in.profile ? *in.profile : config_.defaults;
  std::string r =
      reportHeader(config_.name, in.c.rel, in.st.size ? in.st.size : in.c.size, in.sha, profile);
  r += "result:    FAILED, moved to the error directory; ";
  if (nothing_ingested) {
    r += "nothing of it was ingested\n";
  } else {
    r += std::to_string(in.committed.records) + " records before the error were ingested (" +
         std::to_string(in.committed.dead) +
         " dead-lettered); dropping the same file again resumes "
         "after them\n";
  }
  r += "error:     " + issue.code;
  if (issue.line > 0) {
    r += " at line " + std::to_string(issue.line) + ", byte " + std::to_string(issue.offset);
  }
  r += "\n           " + issue.message + "\n";
  if (!nothing_ingested && in.committed.dead > 0) {
    appendIssues(r, in.committed.issues, in.committed.issues_more, in.committed.dead);
  }
  r += "time:      " + formatRfc3339(clock_->nowMs()) + "\n";
  std::string where;
  if (!moveToError(in.c, r, where)) {
    setState("watching", false, "cannot move " + in.c.rel + " to " + config_.error_dir.string());
    return deferFile(in.c, kRetryUnreadable);
  }
  removeMarkers(in.c);
  log_.error("file_failed",
             {{"file", in.c.rel},
              {"code", issue.code},
              {"line", issue.line},
              {"byte", issue.offset},
              {"records_ingested", nothing_ingested ? uint64_t{0} : in.committed.records},
              {"to", where}});
  std::lock_guard lock(status_mu_);
  status_.last_error =
      in.c.rel + ": " + issue.code + (issue.line ? " at line " + std::to_string(issue.line) : "");
  status_.last_error_ms = clock_->nowMs();
  status_.counters["files_failed"] += 1;
  return Outcome::failed;
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
