// Splitting a text file (file-drop adapter, `pms-agent hl7 inspect FILE`) into HL7 messages.
//
// Accepted layouts (CR, LF and CRLF line ends, also mixed; a UTF-8 BOM is skipped):
//  - plain concatenation: every MSH segment starts a new message;
//  - messages separated by blank lines: a blank (or whitespace-only) line ends a message;
//  - batch form: [FHS] { [BHS] messages [BTS] } [FTS]. BTS-1 (message count) and FTS-1
//    (batch count) are exposed so the caller can check them (checkCounts()).
// Rules: FHS only as the first segment; nothing but blank lines after FTS; a BHS while a
// batch is open closes it (no BTS); a BTS without an open BHS closes an implicit batch of the
// messages since the previous batch; a non-MSH segment is part of the current message unless a
// blank line or an envelope segment came in between, in which case it is an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "psa/store/result.h"

namespace psa::adapters::hl7 {

struct SplitLimits {
  size_t max_file_bytes = size_t{1} << 30;  ///< 1 GiB
  size_t max_messages = 1000000;
  size_t max_batches = 100000;
};

/// One message of a file: a view of the file text from its MSH segment to the end of its last
/// segment including that segment's terminator (bytes exactly as in the file).
struct FileMessage {
  std::string_view text;
  size_t line = 0;    ///< 1-based line of the MSH segment
  size_t offset = 0;  ///< byte offset of the MSH segment in the file
};

/// A BHS..BTS batch (or an implicit one closed by a BTS).
struct Batch {
  std::string_view header;                 ///< the BHS segment (no terminator), empty if none
  std::string_view trailer;                ///< the BTS segment (no terminator), empty if none
  std::optional<uint64_t> declared_count;  ///< BTS-1, when present and not empty
  size_t first_message = 0;                ///< index into Hl7File::messages
  size_t message_count = 0;
  size_t line = 0;  ///< 1-based line of the BHS (or first message) segment
};

struct Hl7File {
  std::vector<FileMessage> messages;
  std::vector<Batch> batches;                    ///< explicit batches only (BHS and/or BTS)
  std::string_view file_header;                  ///< the FHS segment (no terminator), or empty
  std::string_view file_trailer;                 ///< the FTS segment (no terminator), or empty
  std::optional<uint64_t> declared_batch_count;  ///< FTS-1

  /// Checks each BTS-1 against its batch's message count and FTS-1 against the number of
  /// batches (a file without BHS/BTS but with messages counts as one batch).
  /// Errors: Errc::invalid_input, e.g. "batch 2 (line 14): BTS-1 declares 3 messages, found 2".
  Status checkCounts() const;
};

/// Splits `text` (which must outlive the result: views point into it).
/// Errors: Errc::invalid_input with the 1-based line ("line 7: segment outside a message",
/// "line 3: FHS after the start of the file", "line 9: BTS-1 is not a number",
/// "line 12: data after FTS"); Errc::limit for SplitLimits.
Result<Hl7File> splitMessages(std::string_view text, const SplitLimits& limits = {});

}  // namespace psa::adapters::hl7
