// `pms-agent discover hl7`: the STRUCTURE of a site's HL7 v2 feed, learnt from sample files or
// a test feed, as counts only. The profiler never keeps a field value in its report: message
// types, triggers, versions, segment ids and identifier type codes are printed only when they
// have the shape HL7 gives them (upper-case letters/digits of a few characters), so a value
// in the wrong place cannot leak through them; sending applications and facilities are
// reported as the number of distinct values; everything else is a field reference and a count.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/json.h"

namespace psa::adapters::discover {

/// Counts per message type (`ADT^A01`).
struct Hl7TypeStats {
  uint64_t count = 0;
  std::map<std::string, uint64_t> segments;  ///< segment id -> messages that carry it
  std::map<std::string, uint64_t> fields;    ///< "PID-19" -> messages where it holds a value
  /// "PID-3" -> identifier type code (CX.5, e.g. MR, SS; "(none)" when absent) -> repetitions.
  std::map<std::string, std::map<std::string, uint64_t>> identifier_types;
};

/// Accumulates messages and renders the report. Not thread-safe.
class Hl7Profiler {
 public:
  /// Every message of one file's bytes: an MLLP capture (starts with 0x0B) or HL7 text (one or
  /// more messages, blank lines or FHS/BHS batch envelopes between them, CR/LF/CRLF). A file
  /// that cannot be split is counted in file_errors with the splitter's PHI-free reason.
  /// Returns the number of messages found.
  size_t addFile(std::string_view bytes);
  /// One message (e.g. an MLLP frame). Malformed messages are counted with the parser's error
  /// code and location.
  void addMessage(std::string_view text);

  uint64_t messages() const { return messages_; }
  uint64_t malformed() const { return malformed_; }
  /// Messages that parsed (the ones the report describes).
  uint64_t analysed() const { return messages_ - malformed_; }
  const std::map<std::string, Hl7TypeStats>& types() const { return types_; }
  /// "PID-19" / "PID-3 (SS)" -> messages with an SSN-like value there.
  const std::map<std::string, uint64_t>& ssnFields() const { return ssn_; }

  /// The suggested `message_types` allow-list: every TYPE^TRIGGER seen, sorted.
  std::vector<std::string> suggestedMessageTypes() const;
  /// Minimum-necessary notes ("PID-19 carries SSN-like values in 37 of 40 messages ...").
  std::vector<std::string> policyNotes() const;

  /// The whole report as one JSON object (see the README "Onboarding a new site").
  json::Value report() const;
  /// The human summary.
  std::string summary() const;

 private:
  void profile(std::string_view text);

  uint64_t files_ = 0;
  uint64_t messages_ = 0;
  uint64_t malformed_ = 0;
  uint64_t batches_ = 0;
  std::map<std::string, uint64_t> file_errors_;   // PHI-free reason -> files
  std::map<std::string, uint64_t> parse_errors_;  // "HL7 100 at MSH" -> messages
  std::map<std::string, uint64_t> validation_;    // "HL7 101 at MSH-10" -> messages
  std::map<std::string, uint64_t> versions_;
  std::map<std::string, uint64_t> encodings_;
  std::map<std::string, uint64_t> charsets_;
  std::map<std::string, uint64_t> processing_ids_;
  std::set<std::string> sending_apps_;  // values kept in memory only, reported as a count
  std::set<std::string> sending_facilities_;
  std::map<std::string, Hl7TypeStats> types_;
  std::map<std::string, uint64_t> ssn_;
  std::map<std::string, uint64_t> z_segments_;
};

/// True for text HL7 prints as a code: 1..max upper-case ASCII letters or digits. Everything
/// the report prints from inside a message passes this test (or is a count).
bool isPrintableCode(std::string_view text, size_t max_len);

/// `text` with every byte outside printable ASCII (and space) replaced by '?': reader messages
/// and delimiters are printed through it, so a report is always valid UTF-8.
std::string printableAscii(std::string_view text);

/// True for `ddd-dd-dddd` or `ddddddddd` (dashes optional, each independently).
bool looksLikeSsn(std::string_view text);

}  // namespace psa::adapters::discover
