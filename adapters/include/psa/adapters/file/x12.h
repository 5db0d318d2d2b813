// Streaming ASC X12 (005010) reader for the file-drop adapter: 837 claims, 835 remittances
// and any other transaction set. The caller feeds the file in chunks of any size; the
// parser validates the envelope (ISA/IEA, GS/GE, ST/SE) and yields one record per
// transaction set. Memory is bounded by one transaction set (X12Options) plus the chunk
// the caller feeds; a checkpoint after any transaction set lets a new parser resume there.
//
// Delimiters come from the fixed-length (106-byte) ISA segment of each interchange:
// element separator = byte 3, repetition separator = ISA-11 (none when ISA-11 is a letter
// or digit, as in 004010's 'U'), component separator = ISA-16, segment terminator = the
// byte after ISA-16. CR and LF between segments (after a terminator) are tolerated and
// skipped unless one of them is the terminator itself. A file may hold several
// interchanges; whitespace before an ISA and after the last IEA is ignored.
//
// Record payload (format `x12`, kind `billing`): a self-describing interchange holding just
// that one transaction set:
//     <ISA as in the file> <GS as in the file> <ST..SE bytes exactly as in the file>
//     GE*1*<GS-06>~ IEA*1*<ISA-13>~
// with the file's own delimiters, and after each synthesised/enveloping segment the same
// line break (none, LF, CRLF) that followed the file's ISA. Why: an ST..SE alone cannot be
// parsed without the ISA's delimiters, and the cloud needs the sender/receiver ids, the
// functional group (GS-01, GS-08 version) and the original control numbers to
// de-duplicate and to acknowledge (999/TA1). Re-enveloping with the original control
// numbers and counts of 1 keeps every record a valid interchange any X12 tool reads.
//
// Errors:
//  - Per transaction set (X12Transaction::error set, parsing continues): SE-01 is not the
//    number of segments ST..SE, SE-02 differs from ST-02. The 999 semantics: that set is
//    rejected, its group goes on.
//  - Fatal (next() returns the error, and keeps returning it): no ISA / truncated or
//    malformed ISA, a segment with an invalid id, a segment or transaction set over the
//    limits, a segment outside the envelope level where it may appear (e.g. CLM between
//    GE and IEA, ST without GS), a missing SE/GE/IEA (an envelope segment appearing where
//    the closing one was due, or end of file), GE-01/GE-02 or IEA-01/IEA-02 mismatches,
//    non-numeric counts, text after the last IEA.
// Every error message starts "segment N (line L, byte B): " — N is the 1-based index of the
// segment in the file (the ISA of the first interchange is 1), L the 1-based line (1 + LF
// bytes before it), B the 0-based byte offset of the segment's first byte — and never
// contains element data other than segment ids, counts and control numbers (no PHI).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::file {

struct X12Options {
  /// Largest segment including its terminator (1 KiB .. 16 MiB).
  size_t max_segment_bytes = size_t{64} << 10;
  /// Largest transaction set, ST through SE as in the file (1 KiB .. 1 GiB). An 837 batch
  /// of a few thousand claims is a few MiB.
  size_t max_transaction_bytes = size_t{16} << 20;
};

/// The delimiters of an interchange.
struct X12Delimiters {
  char element = '*';
  char component = ':';
  char repetition = '^';  ///< '\0' when the interchange has none
  char segment = '~';

  friend bool operator==(const X12Delimiters&, const X12Delimiters&) = default;
};

enum class X12Errc : uint8_t {
  not_x12,                ///< fatal: the file does not start with an ISA segment
  truncated_isa,          ///< fatal: fewer than 106 bytes of ISA before end of file
  invalid_isa,            ///< fatal: ISA not of the fixed layout, bad delimiters, ISA-13
  invalid_segment,        ///< fatal: empty segment or segment id not 2-3 of [A-Z0-9]
  unterminated_segment,   ///< fatal: end of file inside a segment
  segment_too_large,      ///< fatal
  transaction_too_large,  ///< fatal
  unexpected_segment,     ///< fatal: a segment where the envelope does not allow it
  missing_se,             ///< fatal
  missing_ge,             ///< fatal
  missing_iea,            ///< fatal
  invalid_element,        ///< fatal: a required envelope element missing or not numeric
  se_count_mismatch,      ///< per transaction set
  se_control_mismatch,    ///< per transaction set
  ge_count_mismatch,      ///< fatal
  ge_control_mismatch,    ///< fatal
  iea_count_mismatch,     ///< fatal
  iea_control_mismatch,   ///< fatal
};

/// "not_x12", "se_count_mismatch", ...
std::string_view x12ErrcName(X12Errc code) noexcept;

struct X12Issue {
  X12Errc code = X12Errc::not_x12;
  uint64_t segment = 0;  ///< 1-based segment index in the file
  uint64_t line = 0;     ///< 1-based line of the segment's first byte
  uint64_t offset = 0;   ///< 0-based byte offset of the segment's first byte
  std::string message;   ///< "segment N (line L, byte B): ..." PHI-free
};

/// One transaction set. Views stay valid until the next call of next(), feed() or finish().
struct X12Transaction {
  uint64_t number = 0;         ///< 1-based transaction set number in the file
  uint64_t line = 0;           ///< line of the ST
  uint64_t end_line = 0;       ///< line of the SE's terminator
  uint64_t begin_offset = 0;   ///< byte offset of the ST
  uint64_t end_offset = 0;     ///< one past the SE's terminator
  uint64_t first_segment = 0;  ///< segment index of the ST in the file
  uint64_t segment_count = 0;  ///< segments ST..SE inclusive, as counted
  std::string_view payload;    ///< the record payload (see the file comment)
  std::string_view body;       ///< ST..SE exactly as in the file
  std::string_view transaction_set_id;         ///< ST-01: "837", "835", ...
  std::string_view control_number;             ///< ST-02
  /// ST-03 when present (005010), else GS-08: e.g. "005010X222A1" (837P), "005010X221A1".
  std::string_view implementation_convention;
  std::string_view functional_id;        ///< GS-01: "HC" (837), "HP" (835), ...
  std::string_view group_control;        ///< GS-06
  std::string_view interchange_control;  ///< ISA-13
  std::string_view sender_id;            ///< GS-02
  std::string_view receiver_id;          ///< GS-03
  X12Delimiters delimiters;
  /// Set when the set is bad (SE count/control): dead-letter `payload` and carry on.
  std::optional<X12Issue> error;
};

/// Where to resume: right after a transaction set, inside its functional group.
struct X12Checkpoint {
  uint64_t offset = 0;        ///< file offset to resume at
  uint64_t line = 1;          ///< line at `offset`
  uint64_t segments = 0;      ///< segments before `offset`
  uint64_t transactions = 0;  ///< transaction sets before `offset`
  std::string isa;            ///< the open interchange's ISA (106 bytes); empty = none open
  std::string line_break;     ///< CR/LF that followed that ISA's terminator
  std::string gs;             ///< the open group's GS with its terminator; empty = none open
  uint64_t groups = 0;        ///< GS count so far in the open interchange
  uint64_t sets = 0;          ///< ST count so far in the open group
  uint64_t isa_segment = 0;   ///< segment index of that ISA (for messages)
  uint64_t gs_segment = 0;    ///< segment index of that GS (for messages)

  std::string serialize() const;
  /// Inverse of serialize(); Errc::invalid_argument on anything malformed.
  static Result<X12Checkpoint> deserialize(std::string_view text);

  friend bool operator==(const X12Checkpoint&, const X12Checkpoint&) = default;
};

/// Incremental X12 parser. Not thread-safe: one instance per strand. Movable.
/// Same protocol as CsvParser: feed() chunks, next() until need_input, finish() at EOF,
/// next() until end.
class X12Parser {
 public:
  enum class Step : uint8_t {
    transaction,  ///< transaction() holds a set (check its error)
    need_input,
    end,
  };

  /// Errc::invalid_argument for options out of range or an unusable checkpoint.
  static Result<X12Parser> create(const X12Options& options, const X12Checkpoint& from = {});

  X12Parser(X12Parser&&) noexcept;
  X12Parser& operator=(X12Parser&&) noexcept;
  ~X12Parser();

  /// Appends the next bytes of the file (copied). Ignored after finish() or a fatal error.
  void feed(std::string_view bytes);
  /// Marks end of file.
  void finish();
  /// Advances to the next transaction set. Fatal errors: Errc::invalid_input (Errc::limit
  /// for the size limits) with X12Issue::message; fatalIssue() has the details.
  Result<Step> next();

  const X12Transaction& transaction() const;
  /// Resume point after the last transaction set returned (start of file before any).
  X12Checkpoint checkpoint() const;
  const X12Issue* fatalIssue() const;
  /// Bytes held (the unfinished transaction set).
  size_t bufferedBytes() const;
  /// Interchanges closed by a valid IEA so far (in this parser's run).
  uint64_t interchangesClosed() const;

 private:
  struct Impl;
  explicit X12Parser(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psa::adapters::file
