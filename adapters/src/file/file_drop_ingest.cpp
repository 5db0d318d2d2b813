// One file of the file-drop source into the store: open, hash, resume from the committed
// checkpoint, stream batches (each committed with the file's progress), then finish.
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <future>

#include "file/file_drop_internal.h"
#include "psa/adapters/hl7/identity.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"

namespace psa::adapters::file {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxIssues = 100;  // dead-letter lines kept per file (watermark, report)
constexpr size_t kMaxIssueChars = 400;
// A file another program still writes (Windows sharing violation) is looked at again soon.
constexpr auto kRetryBusy = std::chrono::seconds(2);
constexpr auto kMaxBackoff = std::chrono::seconds(30);

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
  std::string out;
  appendHex(out, digest, len);
  return out;
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

std::string clip(std::string s) {
  if (s.size() > kMaxIssueChars) {
    s.resize(kMaxIssueChars);
    s += "...";
  }
  return s;
}

}  // namespace

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

  // Waits for a submitted batch: true once it is committed and its progress applied; false
  // when it failed, with `restart` set (read again from the committed checkpoint) or else `out`
  // saying how the file ends.
  auto settle = [&](Inflight& f, Progress& work, bool& restart, Outcome& out) -> bool {
    auto res = f.result.get();
    if (!res) {
      restart = onFailure(res.error(), out);
      return false;
    }
    applyCommitted(f, *res, work);
    return true;
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
        Outcome out;
        if (!settle(*inflight, work, restart, out)) {
          if (!restart) {
            return out;
          }
          break;
        }
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
        Outcome out;
        if (!settle(last, work, restart, out)) {
          if (!restart) {
            return out;
          }
          break;
        }
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
        Outcome out;
        if (!settle(*inflight, work, restart, out)) {
          if (!restart) {
            return out;
          }
          break;
        }
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

}  // namespace psa::adapters::file
