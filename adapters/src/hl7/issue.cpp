#include "psa/adapters/hl7/issue.h"

namespace psa::adapters::hl7 {

std::string_view errorCodeText(ErrorCode code) {
  switch (code) {
    case ErrorCode::none:
      return "Message accepted";
    case ErrorCode::segment_sequence:
      return "Segment sequence error";
    case ErrorCode::required_field_missing:
      return "Required field missing";
    case ErrorCode::data_type:
      return "Data type error";
    case ErrorCode::table_value_not_found:
      return "Table value not found";
    case ErrorCode::unsupported_message_type:
      return "Unsupported message type";
    case ErrorCode::unsupported_event_code:
      return "Unsupported event code";
    case ErrorCode::unsupported_processing_id:
      return "Unsupported processing id";
    case ErrorCode::unsupported_version_id:
      return "Unsupported version id";
    case ErrorCode::unknown_key_identifier:
      return "Unknown key identifier";
    case ErrorCode::duplicate_key_identifier:
      return "Duplicate key identifier";
    case ErrorCode::application_record_locked:
      return "Application record locked";
    case ErrorCode::application_internal_error:
      return "Application internal error";
  }
  return "Application internal error";
}

std::string_view severityCode(Severity severity) {
  switch (severity) {
    case Severity::error:
      return "E";
    case Severity::warning:
      return "W";
    case Severity::information:
      return "I";
  }
  return "E";
}

std::string Location::toString() const {
  if (segment.empty()) {
    return {};
  }
  std::string out = segment;
  if (sequence > 1) {
    out += '[' + std::to_string(sequence) + ']';
  }
  if (field <= 0) {
    return out;
  }
  // The first repetition is the field itself: "PID-3", not "PID-3[1]".
  appendFieldPosition(out, field, repetition > 1 ? repetition : 0, component, subcomponent);
  return out;
}

void appendFieldPosition(std::string& out, int field, int repetition, int component,
                         int subcomponent) {
  out += '-' + std::to_string(field);
  if (repetition > 0) {
    out += '[' + std::to_string(repetition) + ']';
  }
  if (component > 0) {
    out += '.' + std::to_string(component);
    if (subcomponent > 0) {
      out += '.' + std::to_string(subcomponent);
    }
  }
}

std::string Issue::describe() const {
  std::string out = "HL7 " + std::to_string(static_cast<int>(code)) + " (" +
                    std::string(errorCodeText(code)) + ")";
  std::string where = location.toString();
  if (!where.empty()) {
    out += " at " + where;
  }
  if (!text.empty()) {
    out += ": " + text;
  }
  out += " [segment " + std::to_string(segment_index + 1) + ", byte " +
         std::to_string(byte_offset) + "]";
  return out;
}

Error Issue::toError() const { return Error(errc, describe()); }

}  // namespace psa::adapters::hl7
