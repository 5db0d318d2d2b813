// Where a file of the file-drop source goes when it is done or failed: archive/ (dated) or
// deleted, error/ with a reason file, and the row report of the lines that became dead letters.
#include <cstdlib>
#include <ctime>
#include <fstream>

#include "file/file_drop_internal.h"
#include "psa/store/clock.h"

namespace psa::adapters::file {

namespace fs = std::filesystem;

namespace {

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

}  // namespace

std::string utcDatePath(int64_t unix_ms) {
  const std::tm tm = utcCalendar(unix_ms / 1000);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d/%02d/%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
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

}  // namespace psa::adapters::file
