// `pms-agent discover files DIR`: what a PMS drops into a directory, as structure only: file
// naming patterns (names grouped into globs), each file's format (CSV dialect, encoding and
// header; HL7 batch; X12 837/835 with envelope versions; FHIR/JSON) and, when watched, how the
// PMS finishes writing a file. CSV column NAMES are structure and are printed (only when the
// first row looks like a header); cell values never are.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/json.h"

namespace psa::adapters::discover {

/// The detected format of one file. Every string is a code, a column name or a PHI-free
/// parser reason.
struct FileFormatInfo {
  std::string format;  ///< csv, hl7, x12, fhir-json, json, ndjson, opaque, empty
  std::string error;   ///< fatal reader problem (PHI-free), empty if none
  // csv
  char delimiter = ',';
  std::string encoding;  ///< utf-8, windows-1252, utf-16 (unsupported)
  bool bom = false;
  bool quoted = false;
  std::string line_ending;  ///< LF, CRLF, CR, mixed
  bool header = false;      ///< the first row looks like column names
  std::vector<std::string> columns;
  uint64_t rows = 0;
  uint64_t bad_rows = 0;
  // x12 / hl7 / json
  std::set<std::string> codes;     ///< ST-01 sets, HL7 TYPE^TRIGGERs, FHIR resource types
  std::set<std::string> versions;  ///< ISA-12, GS-08/ST-03; HL7 MSH-12
  uint64_t units = 0;              ///< transaction sets, HL7 messages, JSON resources
  bool batch = false;              ///< HL7 FHS/BHS envelope

  /// Files of a pattern group share this (format + dialect + columns).
  std::string signature() const;
};

/// Detects the format of a file's bytes.
FileFormatInfo sniffFile(std::string_view bytes);

/// The glob a file name belongs to: digit runs become '*' ("visits_20261201_3.csv" ->
/// "visits_*_*.csv").
std::string namePattern(std::string_view name);

/// Names PMS exporters use while writing (the file-drop adapter's default temp_patterns).
bool isTempName(std::string_view name);
/// A completion marker name: NAME.done / NAME.ok / NAME.ready / NAME.trg (suffix returned).
std::string markerSuffix(std::string_view name);

/// What watching the directory showed about how files are finished.
struct WatchEvidence {
  uint64_t renames = 0;   ///< a temp name vanished while a final name appeared
  uint64_t markers = 0;   ///< marker files seen next to data files
  uint64_t grew = 0;      ///< final names seen growing (written in place)
  uint64_t appeared = 0;  ///< final names that appeared while watching
  std::set<std::string> marker_suffixes;
  bool watched = false;
};

/// Accumulates the files of one directory and renders report and suggestion. Not thread-safe.
class FileSurvey {
 public:
  /// `name` is the file name (a directory-relative path); `bytes` its content (or a prefix).
  void addFile(const std::string& name, std::string_view bytes);
  /// A temp or marker file seen in the directory (not analysed).
  void addAuxiliary(const std::string& name);
  void setWatch(const WatchEvidence& evidence) { watch_ = evidence; }

  /// Data files analysed.
  uint64_t files() const { return files_; }
  /// "rename", "marker" or "stable" (the file-drop `complete` value that fits).
  std::string completion() const;

  json::Value report() const;
  std::string summary() const;
  /// One `file-drop` adapter object for the directory at `path`.
  json::Value suggestion(const std::string& path, const std::string& name,
                         const std::string& vendor) const;

 private:
  struct Group {
    std::string pattern;
    FileFormatInfo info;  // of the first file
    uint64_t count = 0;
    uint64_t rows = 0;
    uint64_t units = 0;
    std::set<std::string> codes;
    std::set<std::string> versions;
  };
  std::vector<Group> groups_;
  uint64_t files_ = 0;
  uint64_t temp_files_ = 0;
  uint64_t marker_files_ = 0;
  std::set<std::string> marker_suffixes_;
  WatchEvidence watch_;
};

}  // namespace psa::adapters::discover

namespace psa::adapters::discover {

/// Watches `dir` (not recursive) for `duration` and reports how files were finished: temp
/// names renamed to final names, marker files, files growing in place. Uses the OS's change
/// notifications where available, plus rescans every 100 ms.
WatchEvidence watchDirectory(const std::filesystem::path& dir, std::chrono::milliseconds duration);

}  // namespace psa::adapters::discover
