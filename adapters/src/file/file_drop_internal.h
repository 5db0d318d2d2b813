// Internal to the file-drop source, shared by its pieces (file_drop_source.cpp: lifecycle,
// scanning and pruning; file_drop_ingest.cpp: one file into the store; file_drop_dispose.cpp:
// archive, error directory and reports): the value of a file's watermark (Progress), the state
// of the file being ingested (Ingest), and the helpers more than one piece uses.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "file/file_drop_source.h"
#include "psa/adapters/hl7/batch.h"
#include "psa/store/json.h"

namespace psa::adapters::file {

using SteadyClock = std::chrono::steady_clock;

/// How long an unreadable file (or one that failed for a reason that may pass) waits before it
/// is looked at again.
inline constexpr auto kRetryUnreadable = std::chrono::seconds(60);

/// "2026/12/07": the dated sub-folder of archive/ and error/ for a UTC time.
std::string utcDatePath(int64_t unix_ms);

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

}  // namespace psa::adapters::file
