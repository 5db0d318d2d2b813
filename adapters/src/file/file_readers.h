// Reading one dropped file: the open file itself (InputFile, one descriptor used for every
// pass, so a rename or replace of the path cannot mix two files) and the per-format readers
// that cut it into records and dead letters, resumable from a serialised checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "file/file_drop_config.h"
#include "file/input_file.h"
#include "psa/adapters/hl7/batch.h"
#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::adapters::file {

/// A fatal problem of a file: what and where. PHI-free.
struct FatalIssue {
  std::string code;   ///< "unterminated_quote", "ge_count_mismatch", "hl7_split", ...
  uint64_t line = 0;  ///< 0 = not applicable
  uint64_t offset = 0;
  std::string message;  ///< includes the location in words
};

/// One step of a reader.
struct Item {
  enum class Type : uint8_t { record, dead, end };
  Type type = Type::end;
  store::Record record;  ///< record, or the dead letter's record
  std::string reason;    ///< dead letters: PHI-free, with row/line/byte
};

/// Cuts one file into items. Not thread-safe.
class FormatReader {
 public:
  virtual ~FormatReader() = default;
  /// The next item; an Error is fatal for the file (fatal() has the details).
  virtual Result<Item::Type> next(Item& out) = 0;
  /// Where to resume after the last item returned (stored in the file's watermark).
  virtual std::string checkpoint() const = 0;
  /// The checkpoint in words: "line 14, byte 2033".
  virtual std::string position() const = 0;
  virtual const FatalIssue& fatal() const = 0;
};

using FormatReaderPtr = std::unique_ptr<FormatReader>;

/// What a reader needs. `file` for csv and x12; `text` (the whole file) for hl7 and opaque,
/// with `hl7_file` the split of `text`. All must outlive the reader.
struct ReaderContext {
  const FileDropConfig* config = nullptr;
  const FileProfile* profile = nullptr;
  const InputFile* file = nullptr;
  uint64_t file_size = 0;
  std::string_view text;
  const hl7::Hl7File* hl7_file = nullptr;
  std::string label;  ///< the file's relative path, for dead-letter reasons
};

/// A reader positioned at `checkpoint` ("" = start of file). Errc::invalid_argument when the
/// checkpoint cannot be used with this file and profile.
Result<FormatReaderPtr> makeReader(const ReaderContext& ctx, const std::string& checkpoint);

/// Bytes per read() of the streaming readers (and of the hashing pass).
inline constexpr size_t kReadChunk = size_t{256} << 10;

}  // namespace psa::adapters::file
