// The log facade: one line per event, key=value fields, PHI-free by construction.
//
// A Logger takes an event name and typed fields (ids, kinds, counts, error codes). There is
// deliberately no way to format a payload: payload bytes travel inside Sensitive<T>, which
// has no conversion to a log field, so patient data cannot reach a log line by accident.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace psa {

/// Wraps a value that may contain PHI. It cannot be logged or streamed; reading it needs an
/// explicit reveal() at the place that legitimately processes the data.
template <class T>
class Sensitive {
 public:
  Sensitive() = default;
  explicit Sensitive(T value) : value_(std::move(value)) {}
  const T& reveal() const& { return value_; }
  T& reveal() & { return value_; }
  T&& reveal() && { return std::move(value_); }

 private:
  T value_{};
};

namespace log {

enum class Level : int { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

std::string_view levelName(Level level);
/// Parses "debug", "info", "warn"/"warning", "error", "off". Returns false if unknown.
bool parseLevel(std::string_view text, Level& out);

/// One key=value pair. Constructible from identifiers, numbers and error codes only.
class Field {
 public:
  Field(std::string_view key, std::string_view value) : key_(key), value_(value) {}
  Field(std::string_view key, const std::string& value) : key_(key), value_(value) {}
  Field(std::string_view key, const char* value) : key_(key), value_(value ? value : "") {}
  Field(std::string_view key, bool value) : key_(key), value_(value ? "true" : "false") {}
  template <class N, std::enable_if_t<std::is_arithmetic_v<N> && !std::is_same_v<N, bool>, int> = 0>
  Field(std::string_view key, N value) : key_(key), value_(formatNumber(value)) {}
  Field(std::string_view key, const std::error_code& ec);
  template <class T>
  Field(std::string_view, const Sensitive<T>&) = delete;  // PHI never reaches a log line

  std::string_view key() const { return key_; }
  const std::string& value() const { return value_; }

 private:
  template <class N>
  static std::string formatNumber(N value) {
    if constexpr (std::is_floating_point_v<N>) {
      return formatDouble(static_cast<double>(value));
    } else {
      return std::to_string(value);
    }
  }
  static std::string formatDouble(double v);

  std::string_view key_;
  std::string value_;
};

/// Per-component logger carrying the component and instance name (e.g. "mllp", "cerner-adt").
/// Cheap to copy; thread-safe.
class Logger {
 public:
  explicit Logger(std::string component, std::string instance = {});

  void debug(std::string_view event, std::initializer_list<Field> fields = {}) const;
  void info(std::string_view event, std::initializer_list<Field> fields = {}) const;
  void warn(std::string_view event, std::initializer_list<Field> fields = {}) const;
  void error(std::string_view event, std::initializer_list<Field> fields = {}) const;
  void write(Level level, std::string_view event, std::initializer_list<Field> fields) const;
  /// For fatalInvariant() (fatal.h) only: writes like write() whatever the level, waiting at
  /// most `wait` for the log's lock (the thread that broke an invariant may hold it), also to
  /// standard error when that was turned off, then flushes the file. Without the lock in time
  /// the line goes to standard error and the OS log only. Returns whether the file (if any) got
  /// the line.
  bool writeForExit(Level level, std::string_view event, std::initializer_list<Field> fields,
                    std::chrono::milliseconds wait) const;
  bool enabled(Level level) const;

  const std::string& component() const { return component_; }
  const std::string& instance() const { return instance_; }

 private:
  std::string component_;
  std::string instance_;
};

/// Global configuration. All functions are thread-safe.
void setLevel(Level level);
Level level();
/// Also write to `path`, rotating when it exceeds max_bytes (keeping `keep` old files).
/// Returns false (and keeps logging to stderr) if the file cannot be opened.
bool setFile(const std::filesystem::path& path, uint64_t max_bytes, int keep);
/// Stop writing to stderr (tests that capture output use this with a file).
void setStderr(bool enabled);
/// Hands what the log file's stream buffers to the OS (each line is flushed as it is written;
/// this is for callers about to exit without running destructors).
void flush();
/// The last `n` formatted lines written by this process (for support bundles).
std::vector<std::string> recentLines(size_t n);
/// Counts of lines written per level since start (for status).
uint64_t linesWritten(Level level);

/// Formats one value the way it appears in a line: bare if safe, else double-quoted.
std::string quoteValue(std::string_view value);

}  // namespace log
}  // namespace psa
