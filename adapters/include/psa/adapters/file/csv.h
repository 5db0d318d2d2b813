// Streaming CSV (RFC 4180) reader for the file-drop adapter. The caller feeds the file in
// chunks of any size; the parser yields one record per data row: a JSON object keyed by
// the header row (`{"PatientId":"123","LastName":"DOE"}`, string values, header order),
// with the row's byte span and line numbers, or a per-row error. Memory is bounded by
// one record (CsvOptions::max_record_bytes) plus the chunk the caller feeds. A checkpoint
// taken after any row (byte offset + line + row + header + encoding) lets a new parser
// resume there after a crash, given the file's bytes from that offset on.
//
// Dialect:
//  - Delimiter ',' (default), ';', '\t' or '|'. Fields may be quoted with '"'; inside quotes
//    delimiters, CR and LF are data and '""' is one '"'. Line endings CRLF, LF and a lone
//    CR (classic Mac) all end a record; the last record needs no line ending.
//  - The first non-blank record is the header. Header names must be non-empty and unique
//    (after trimming when trimming applies); they become the JSON keys.
//  - Blank lines (a line with no bytes; with CsvTrim::all also a line of only spaces/tabs)
//    are skipped anywhere and are not rows.
//  - Line numbers are physical lines, 1-based: LF, CRLF and a lone CR each end one line,
//    also inside quoted fields. Byte offsets are 0-based from the start of the file (the
//    BOM counts).
//
// Errors:
//  - Per-row (the row is reported with CsvRow::error set, parsing continues with the next
//    row): ragged row (field count differs from the header's), a '"' inside an unquoted
//    field, text after a closing quote, invalid UTF-8 (encoding utf8). After a quote error
//    the rest of the row is read leniently (quotes as data) to find where the row ends.
//  - Fatal (next() returns the error, and keeps returning it): any problem in the header
//    row, a quoted field still open at end of input (reported at the line and byte of its
//    opening quote), a record longer than max_record_bytes, a UTF-16 byte-order mark, no
//    header at all (empty file).
// Every error names the physical line and byte offset where the problem is, and never
// quotes field content (PHI); header names, which are not PHI, may be quoted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/file/text_encoding.h"
#include "psa/store/result.h"

namespace psa::adapters::file {

/// Which whitespace (spaces, and tabs unless tab is the delimiter) is removed.
enum class CsvTrim : uint8_t {
  none,     ///< RFC 4180: every byte is data; `a, "b"` is an error (quote in unquoted field)
  headers,  ///< trim around header names only
  all,      ///< trim around header names and values; whitespace outside quotes is ignored,
            ///< inside quotes it is kept (`  "  x " ,` gives "  x ")
};

struct CsvOptions {
  char delimiter = ',';  ///< one of ',', ';', '\t', '|'
  TextEncoding encoding = TextEncoding::utf8;
  CsvTrim trim = CsvTrim::none;
  /// Largest record: its bytes as in the file, without the line ending (quoted line breaks
  /// count). Larger is a fatal error (usually a runaway quote). 16 B .. 1 GiB.
  size_t max_record_bytes = size_t{1} << 20;
  /// Most header columns (1 .. 65536).
  size_t max_columns = 1024;
};

/// What went wrong, for callers that branch (and for tests); the message says it in words.
enum class CsvErrc : uint8_t {
  ragged_row,                ///< per-row: field count differs from the header's
  quote_in_unquoted_field,   ///< per-row: '"' inside a field that did not start with '"'
  text_after_closing_quote,  ///< per-row: `"abc"x`
  invalid_utf8,              ///< per-row (fatal in the header)
  unterminated_quote,        ///< fatal: a quoted field is still open at end of input
  record_too_large,          ///< fatal
  missing_header,            ///< fatal: no header row (empty or blank file)
  empty_header_name,         ///< fatal
  duplicate_header_name,     ///< fatal
  too_many_columns,          ///< fatal: header wider than max_columns
  unsupported_encoding,      ///< fatal: UTF-16/UTF-32 byte-order mark
};

/// "ragged_row", "unterminated_quote", ...
std::string_view csvErrcName(CsvErrc code) noexcept;

/// Where and what. `message` starts "line L, byte B: " and is PHI-free.
struct CsvIssue {
  CsvErrc code = CsvErrc::ragged_row;
  uint64_t line = 0;    ///< physical line (1-based) of the offending byte
  uint64_t offset = 0;  ///< 0-based byte offset of the offending byte in the file
  std::string message;
};

/// One data row. Views stay valid until the next call of next(), feed() or finish().
struct CsvRow {
  uint64_t number = 0;        ///< 1-based data row number (header and blank lines not counted)
  uint64_t line = 0;          ///< physical line of the row's first byte
  uint64_t end_line = 0;      ///< physical line of its last byte (> line with quoted newlines)
  uint64_t begin_offset = 0;  ///< byte offset of its first byte
  uint64_t end_offset = 0;    ///< one past its line ending: where the next row starts
  std::string_view raw;       ///< the row's bytes as in the file, without the line ending
  /// Set when the row is bad: dead-letter `raw` with this reason and carry on. `json` and
  /// `fields` are then empty.
  std::optional<CsvIssue> error;
  /// `{"Key":"value",...}` in header order, valid UTF-8. The record payload (csv+json).
  std::string_view json;
  /// The values as UTF-8 (unquoted, unescaped, trimmed per CsvTrim), in header order.
  std::span<const std::string_view> fields;
};

/// Where to resume. Take it with CsvParser::checkpoint() after a row; store it (e.g. as a
/// watermark string via serialize()) in the same transaction as the rows before it.
struct CsvCheckpoint {
  uint64_t offset = 0;  ///< file offset of the next record (a record boundary)
  uint64_t line = 1;    ///< physical line number at `offset`
  uint64_t rows = 0;    ///< data rows consumed before `offset` (good and bad)
  /// Header names (UTF-8, as in the JSON keys); empty until the header has been read,
  /// in which case `offset` is 0.
  std::vector<std::string> header;
  /// The encoding in effect (a UTF-8 BOM turns windows1252 into utf8).
  TextEncoding encoding = TextEncoding::utf8;

  /// A compact, versioned, printable-prefix text form (header names are length-prefixed).
  std::string serialize() const;
  /// Inverse of serialize(). Errc::invalid_argument on anything malformed.
  static Result<CsvCheckpoint> deserialize(std::string_view text);

  friend bool operator==(const CsvCheckpoint&, const CsvCheckpoint&) = default;
};

/// Incremental CSV parser. Not thread-safe: use one instance from one strand. Movable.
///
/// Use:
///   auto p = CsvParser::create(opts, checkpoint);  // checkpoint {} = start of file
///   loop: feed(next chunk of the file from checkpoint.offset on), then call next() until it
///   returns Step::need_input; at end of file call finish() and next() until Step::end.
/// The parser keeps only the unfinished record; feeding further chunks before next() has
/// returned need_input grows its buffer by those chunks (the caller's choice).
class CsvParser {
 public:
  enum class Step : uint8_t {
    row,         ///< row() holds a data row (check row().error)
    need_input,  ///< feed more bytes, or finish() at end of file
    end,         ///< all input consumed (after finish())
  };

  /// Errc::invalid_argument for options out of range or a checkpoint that cannot be used
  /// (header missing with offset > 0, header present with offset 0, duplicate names).
  static Result<CsvParser> create(const CsvOptions& options, const CsvCheckpoint& from = {});

  CsvParser(CsvParser&&) noexcept;
  CsvParser& operator=(CsvParser&&) noexcept;
  ~CsvParser();

  /// Appends the next bytes of the file (copied). Ignored after finish() or a fatal error.
  void feed(std::string_view bytes);
  /// Marks end of file: the last record may end without a line ending.
  void finish();

  /// Advances to the next row. A fatal error is returned as Errc::invalid_input
  /// (Errc::limit for record_too_large / too_many_columns), message as CsvIssue::message;
  /// fatalIssue() then has the details. Never throws on any input.
  Result<Step> next();

  /// The row of the last Step::row.
  const CsvRow& row() const;
  /// The header (empty until read).
  const std::vector<std::string>& header() const;
  /// Resume point after the last row returned (or after the header / at the start).
  CsvCheckpoint checkpoint() const;
  /// The fatal error, once next() has returned one.
  const CsvIssue* fatalIssue() const;
  /// Bytes held for the unfinished record (for memory accounting).
  size_t bufferedBytes() const;

 private:
  struct Impl;
  explicit CsvParser(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psa::adapters::file
