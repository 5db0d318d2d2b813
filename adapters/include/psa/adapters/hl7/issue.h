// Problems found while parsing or validating an HL7 v2 message, in the terms an ERR segment
// needs: an HL7 error code (table 0357), a location (segment, sequence, field, component)
// and a severity. Issue texts are PHI-free by construction: they name positions and rules,
// never echo message content.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::adapters::hl7 {

/// HL7 table 0357 "Message error condition codes".
enum class ErrorCode : uint16_t {
  none = 0,                ///< message accepted
  segment_sequence = 100,  ///< segment sequence error (also: bad or missing segment)
  required_field_missing = 101,
  data_type = 102,  ///< data type error (malformed value)
  table_value_not_found = 103,
  unsupported_message_type = 200,
  unsupported_event_code = 201,
  unsupported_processing_id = 202,
  unsupported_version_id = 203,
  unknown_key_identifier = 204,
  duplicate_key_identifier = 205,
  application_record_locked = 206,
  application_internal_error = 207,  ///< also used for receiver limits (size, counts)
};

/// The table 0357 text, e.g. "Required field missing".
std::string_view errorCodeText(ErrorCode code);

/// HL7 table 0516 (ERR-4).
enum class Severity : uint8_t { error, warning, information };

/// "E", "W" or "I".
std::string_view severityCode(Severity severity);

/// Where in a message a problem is. Numbers are 1-based; 0 means "not applicable/unknown".
struct Location {
  std::string segment;  ///< segment id ("PID"); empty when unknown or not a valid id
  int sequence = 0;     ///< occurrence of that segment id in the message (1 = first)
  int field = 0;
  int repetition = 0;
  int component = 0;
  int subcomponent = 0;

  /// Path form: "PID-5.2", "OBX[3]-5", "MSH-9.2", "PID" (segment only); "" when unknown.
  std::string toString() const;

  friend bool operator==(const Location&, const Location&) = default;
};

/// Appends "-F", then "[R]" when repetition > 0, ".C" and ".S" when given: the field part of a
/// location or a path ("PID-5[2].1"), written one way for both.
void appendFieldPosition(std::string& out, int field, int repetition, int component,
                         int subcomponent);

/// One parse or validation problem.
struct Issue {
  ErrorCode code = ErrorCode::none;
  Severity severity = Severity::error;
  Location location;
  size_t byte_offset = 0;           ///< from the start of the text given to the parser
  size_t segment_index = 0;         ///< 0-based position of the segment in the message
  Errc errc = Errc::invalid_input;  ///< Errc::limit for exceeded limits
  std::string text;                 ///< PHI-free description, e.g. "required field missing"

  /// "HL7 101 (Required field missing) at MSH-10: <text> [segment 1, byte 57]".
  std::string describe() const;
  /// An Error (errc + describe()).
  Error toError() const;
};

}  // namespace psa::adapters::hl7
