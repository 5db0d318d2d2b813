// Watching a drop directory for a while to learn how the PMS finishes its files. Works on names
// and sizes only (never reads content): a temp name that vanishes while a final name appears is
// a rename; a marker file is a marker; a final name whose size changes between scans is written
// in place (the file-drop adapter's `stable` completion).
#include <map>
#include <set>

#include "psa/adapters/discover/file_survey.h"
#include "psa/adapters/file/dir_watcher.h"
#include "psa/store/os/utf8_path.h"

namespace psa::adapters::discover {
namespace {

namespace fs = std::filesystem;

std::map<std::string, uintmax_t> scan(const fs::path& dir) {
  std::map<std::string, uintmax_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code sec;
    if (!it->is_regular_file(sec)) {
      continue;
    }
    const uintmax_t size = it->file_size(sec);
    out[os::pathToUtf8(it->path().filename())] = sec ? 0 : size;
  }
  return out;
}

}  // namespace

WatchEvidence watchDirectory(const fs::path& dir, std::chrono::milliseconds duration) {
  WatchEvidence ev;
  ev.watched = true;
  file::DirWatcherPtr watcher;
  if (auto native = file::makeNativeWatcher(); native && native.value()->add(dir)) {
    watcher = std::move(native).value();
  } else {
    watcher = file::makePollingWatcher();
  }
  auto before = scan(dir);
  std::set<std::string> temps_gone_pending;  // temp names that vanished, not yet matched
  std::set<std::string> seen_growing;
  const auto deadline = std::chrono::steady_clock::now() + duration;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    watcher->wait(std::min(left, std::chrono::milliseconds(100)));
    auto after = scan(dir);
    for (const auto& [name, size] : before) {
      if (!after.count(name) && isTempName(name)) {
        temps_gone_pending.insert(name);
      }
    }
    for (const auto& [name, size] : after) {
      auto old = before.find(name);
      const bool aux = isTempName(name) || !markerSuffix(name).empty();
      if (old == before.end()) {
        if (const std::string suffix = markerSuffix(name); !suffix.empty()) {
          ++ev.markers;
          ev.marker_suffixes.insert(suffix);
        } else if (!aux) {
          ++ev.appeared;
          if (!temps_gone_pending.empty()) {
            ++ev.renames;
            temps_gone_pending.erase(temps_gone_pending.begin());
          }
        }
      } else if (!aux && old->second != size && seen_growing.insert(name).second) {
        ++ev.grew;
      }
    }
    before = std::move(after);
  }
  return ev;
}

}  // namespace psa::adapters::discover
