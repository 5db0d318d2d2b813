// Structural validation of a parsed HL7 v2 message, producing Issues ready for an ERR segment.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "psa/adapters/hl7/issue.h"
#include "psa/adapters/hl7/message.h"

namespace psa::adapters::hl7 {

/// Per-adapter validation settings. Empty lists mean "the default".
struct ValidationRules {
  /// Segment ids that must occur at least once (e.g. {"PID"}); missing -> HL7 100.
  std::vector<std::string> required_segments;
  /// Accepted MSH-12.1 values; default 2.1, 2.2, 2.3, 2.3.1, 2.4, 2.5, 2.5.1, 2.6, 2.7, 2.7.1,
  /// 2.8, 2.8.1, 2.8.2. Anything else -> HL7 203.
  std::vector<std::string> accepted_versions;
  /// Accepted MSH-11.1 values when MSH-11 is present; default P, T, D. Else -> HL7 202.
  std::vector<std::string> accepted_processing_ids;
  /// If not empty, only these message types are accepted: "ADT" (any trigger) or "ADT^A08".
  /// A type not listed -> HL7 200; a listed type with an unlisted trigger -> HL7 201.
  std::vector<std::string> accepted_message_types;
  /// Stop after this many issues.
  size_t max_issues = 8;
};

/// Checks, in this order (each failure one Issue with location, code and PHI-free text):
///  - first segment is MSH (100 at the first segment);
///  - every segment id is three upper-case letters or digits (100; the location names the
///    segment only when its id is well-formed, so no content is echoed);
///  - MSH occurs once (100 at the second MSH);
///  - MSH-1 is one printable non-alphanumeric character, MSH-2 four or five distinct such
///    characters different from MSH-1 (102 at MSH-1 / MSH-2);
///  - MSH-9.1 message type and MSH-9.2 trigger event present (101; the trigger is not required
///    for ACK messages; v2.1 messages may carry it in EVN-1), MSH-10 present (101), MSH-12
///    present (101);
///  - MSH-12.1 an accepted version (203), MSH-11.1 an accepted processing id (202), the message
///    type/trigger accepted (200/201);
///  - each required segment present (100).
/// Appends to `out` (which it does not clear) and returns true when nothing was added.
/// Allocates nothing for a valid message. Thread-safe (const inputs).
bool validate(const Message& msg, const ValidationRules& rules, std::vector<Issue>& out);

/// Convenience: the issues of `msg` (empty when valid).
std::vector<Issue> validate(const Message& msg, const ValidationRules& rules = {});

}  // namespace psa::adapters::hl7
