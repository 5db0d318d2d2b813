#include "psa/store/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>

#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "psa/store/os/system_log.h"

namespace psa::log {
namespace {

constexpr size_t kRecentCapacity = 2000;

struct Sink {
  std::timed_mutex mu;  // timed: the fatal path waits for it only so long
  std::atomic<int> level{static_cast<int>(Level::info)};
  std::atomic<bool> to_stderr{true};
  std::ofstream file;
  std::filesystem::path path;
  uint64_t file_bytes = 0;
  uint64_t max_bytes = 0;
  int keep = 0;
  std::deque<std::string> recent;
  std::atomic<uint64_t> counts[5] = {};
};

Sink& sink() {
  static Sink* s = new Sink();  // never destroyed: loggers may run during static destruction
  return *s;
}

void rotateLocked(Sink& s) {
  if (!s.file.is_open()) {
    return;
  }
  s.file.close();
  std::error_code ec;
  for (int i = s.keep - 1; i >= 1; --i) {
    auto from = s.path;
    from += "." + std::to_string(i);
    auto to = s.path;
    to += "." + std::to_string(i + 1);
    std::filesystem::rename(from, to, ec);
  }
  if (s.keep > 0) {
    auto to = s.path;
    to += ".1";
    std::filesystem::rename(s.path, to, ec);
  } else {
    std::filesystem::remove(s.path, ec);
  }
  s.file.open(s.path, std::ios::app | std::ios::binary);
  s.file_bytes = 0;
}

bool needsQuoting(std::string_view v) {
  if (v.empty()) {
    return true;
  }
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view levelName(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::off: return "off";
  }
  return "info";
}

bool parseLevel(std::string_view text, Level& out) {
  if (text == "debug") {
    out = Level::debug;
  } else if (text == "info") {
    out = Level::info;
  } else if (text == "warn" || text == "warning") {
    out = Level::warn;
  } else if (text == "error") {
    out = Level::error;
  } else if (text == "off") {
    out = Level::off;
  } else {
    return false;
  }
  return true;
}

std::string quoteValue(std::string_view v) {
  return needsQuoting(v) ? json::quote(v, json::QuoteStyle::logfmt) : std::string(v);
}

Field::Field(std::string_view key, const std::error_code& ec)
    : key_(key), value_(std::string(ec.category().name()) + ":" + std::to_string(ec.value())) {}

std::string Field::formatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

Logger::Logger(std::string component, std::string instance)
    : component_(std::move(component)), instance_(std::move(instance)) {}

bool Logger::enabled(Level lvl) const {
  return static_cast<int>(lvl) >= sink().level.load(std::memory_order_relaxed) &&
         lvl != Level::off;
}

void Logger::debug(std::string_view event, std::initializer_list<Field> fields) const {
  write(Level::debug, event, fields);
}
void Logger::info(std::string_view event, std::initializer_list<Field> fields) const {
  write(Level::info, event, fields);
}
void Logger::warn(std::string_view event, std::initializer_list<Field> fields) const {
  write(Level::warn, event, fields);
}
void Logger::error(std::string_view event, std::initializer_list<Field> fields) const {
  write(Level::error, event, fields);
}

namespace {

std::string formatLine(Level lvl, const std::string& component, const std::string& instance,
                       std::string_view event, std::initializer_list<Field> fields) {
  std::string line;
  line.reserve(128);
  line += formatRfc3339(Clock::system()->nowMs());
  line += " level=";
  line += levelName(lvl);
  line += " comp=";
  line += quoteValue(component);
  if (!instance.empty()) {
    line += " inst=";
    line += quoteValue(instance);
  }
  line += " event=";
  line += quoteValue(event);
  for (const Field& f : fields) {
    line.push_back(' ');
    line += f.key();
    line.push_back('=');
    line += quoteValue(f.value());
  }
  return line;
}

void writeSystemLogFor(Level lvl, const std::string& line) {
  if (lvl >= Level::warn) {
    os::writeSystemLog(lvl == Level::warn ? os::SystemLogLevel::warning : os::SystemLogLevel::error,
                       line);
  }
}

void writeStderrLine(const std::string& line) {
  std::string out = line;
  out.push_back('\n');
  os::writeStandardError(out);
}

// Caller holds s.mu.
void deliverLocked(Sink& s, Level lvl, std::string line, bool force_stderr) {
  s.counts[static_cast<int>(lvl)].fetch_add(1, std::memory_order_relaxed);
  if (force_stderr || s.to_stderr.load(std::memory_order_relaxed)) {
    writeStderrLine(line);
  }
  writeSystemLogFor(lvl, line);
  if (s.file.is_open()) {
    s.file << line << '\n';
    s.file.flush();
    s.file_bytes += line.size() + 1;
    if (s.max_bytes > 0 && s.file_bytes >= s.max_bytes) {
      rotateLocked(s);
    }
  }
  s.recent.push_back(std::move(line));
  if (s.recent.size() > kRecentCapacity) {
    s.recent.pop_front();
  }
}

}  // namespace

void Logger::write(Level lvl, std::string_view event, std::initializer_list<Field> fields) const {
  if (!enabled(lvl)) {
    return;
  }
  std::string line = formatLine(lvl, component_, instance_, event, fields);
  Sink& s = sink();
  std::lock_guard lock(s.mu);
  deliverLocked(s, lvl, std::move(line), false);
}

bool Logger::writeForExit(Level lvl, std::string_view event, std::initializer_list<Field> fields,
                          std::chrono::milliseconds wait) const {
  std::string line = formatLine(lvl, component_, instance_, event, fields);
  Sink& s = sink();
  std::unique_lock lock(s.mu, std::defer_lock);
  if (!lock.try_lock_for(wait)) {
    writeStderrLine(line);
    writeSystemLogFor(lvl, line);
    return false;
  }
  const bool to_file = s.file.is_open();
  deliverLocked(s, lvl, std::move(line), true);
  if (s.file.is_open()) {
    s.file.flush();
  }
  return !to_file || s.file.good();
}

void setLevel(Level lvl) { sink().level.store(static_cast<int>(lvl)); }

Level level() { return static_cast<Level>(sink().level.load()); }

bool setFile(const std::filesystem::path& path, uint64_t max_bytes, int keep) {
  Sink& s = sink();
  std::lock_guard lock(s.mu);
  if (s.file.is_open()) {
    s.file.close();
  }
  if (path.empty()) {
    return true;
  }
  s.file.clear();
  s.file.open(path, std::ios::app | std::ios::binary);
  if (!s.file.is_open()) {
    return false;
  }
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  s.file_bytes = ec ? 0 : size;
  s.path = path;
  s.max_bytes = max_bytes;
  s.keep = keep;
  return true;
}

void setStderr(bool enabled) { sink().to_stderr.store(enabled); }

void flush() {
  Sink& s = sink();
  std::lock_guard lock(s.mu);
  if (s.file.is_open()) {
    s.file.flush();
  }
}

std::vector<std::string> recentLines(size_t n) {
  Sink& s = sink();
  std::lock_guard lock(s.mu);
  n = std::min(n, s.recent.size());
  return {s.recent.end() - static_cast<std::ptrdiff_t>(n), s.recent.end()};
}

uint64_t linesWritten(Level lvl) {
  const int i = static_cast<int>(lvl);
  return (i >= 0 && i < 5) ? sink().counts[i].load() : 0;
}

}  // namespace psa::log
