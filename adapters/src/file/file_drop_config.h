// The file-drop adapter's configuration: schema (for `config validate`) and the typed,
// validated settings the source runs on.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "psa/adapters/file/csv.h"
#include "psa/adapters/file/x12.h"
#include "psa/adapters/hl7/classify.h"
#include "psa/adapters/hl7/validate.h"
#include "psa/store/json.h"
#include "psa/store/record.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::adapters::file {

enum class FileFormat : uint8_t { csv, hl7, x12, opaque };

std::string_view fileFormatName(FileFormat f);

struct CsvSettings {
  CsvOptions options;
  bool header = true;                ///< false: `columns` name the fields
  std::vector<std::string> columns;  ///< used when header is false
};

/// The settings one file is read with: the adapter's, or the first matching pattern's.
struct FileProfile {
  FileFormat format = FileFormat::csv;
  store::Kind kind = store::Kind::other;  ///< csv and opaque (hl7 classifies, x12 is billing)
  CsvSettings csv;

  /// A compact text of everything that affects how a file is cut into records, stored with
  /// a file's checkpoint so a resume under different settings is detected.
  std::string fingerprint() const;
};

struct FilePattern {
  std::string match;
  FileProfile profile;
};

enum class Completion : uint8_t { stable, marker, rename };
enum class AfterIngest : uint8_t { archive, remove };
enum class DuplicatePolicy : uint8_t { skip, error };
enum class WatchMode : uint8_t { automatic, poll };

struct FileDropConfig {
  std::string name;
  std::string vendor;
  std::filesystem::path dir;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  bool recursive = false;
  bool ignore_case = false;

  FileProfile defaults;
  std::vector<FilePattern> patterns;

  // HL7 v2 files
  hl7::ValidationRules hl7_rules;
  hl7::Classifier hl7_classifier;
  bool hl7_dedupe = true;
  size_t hl7_max_file_bytes = size_t{256} << 20;
  // X12
  X12Options x12;
  // opaque
  size_t opaque_max_bytes = size_t{16} << 20;

  Completion complete = Completion::stable;
  std::chrono::milliseconds stable{5000};
  std::vector<std::string> marker_suffixes;
  std::vector<std::string> temp_patterns;

  AfterIngest after = AfterIngest::archive;
  std::filesystem::path archive_dir;
  std::filesystem::path error_dir;
  bool archive_dated = true;
  DuplicatePolicy duplicates = DuplicatePolicy::skip;
  std::chrono::hours duplicate_window{24 * 30};

  WatchMode watch = WatchMode::automatic;
  std::chrono::milliseconds poll_interval{2000};
  size_t batch_records = 2000;
  size_t batch_bytes = size_t{4} << 20;

  /// The profile for a file (relative path, '/' separated).
  const FileProfile& profileFor(std::string_view relative_path) const;
};

/// Schema of one `file-drop` adapter object (common adapter fields first).
schema::ObjectSchemaPtr fileDropSchema();

/// Typed settings from an adapter object already validated against fileDropSchema()
/// (defaults are filled in here too). Relative directories resolve against `state_dir`.
/// Errc::invalid_argument for what the schema cannot express (naming the key).
Result<FileDropConfig> parseFileDropConfig(const json::Value& config,
                                           const std::filesystem::path& state_dir);

}  // namespace psa::adapters::file
