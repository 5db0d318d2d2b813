// Field-by-field rendering of a parsed message for `pms-agent hl7 inspect FILE [--json]`.
// The output contains message content (PHI): it is for a technician's terminal, never a log.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "psa/adapters/hl7/message.h"

namespace psa::adapters::hl7 {

struct InspectOptions {
  bool include_empty = false;  ///< also list present-but-empty elements
};

/// One leaf (the smallest element present) of a message.
struct Leaf {
  std::string_view path;  ///< e.g. "PID-5.1"; valid only during the callback
  size_t segment = 0;     ///< 0-based segment index
  int field = 0;
  int repetition = 0;    ///< 0 when not part of the path (single repetition)
  int component = 0;     ///< 0 when not part of the path
  int subcomponent = 0;  ///< 0 when not part of the path
  Element element;
  bool literal = false;  ///< MSH-1/MSH-2 (and FHS/BHS): raw delimiters, not unescaped
};

/// Calls `fn` for every leaf in message order. Paths are the shortest that Message::get()
/// resolves to the same element: the segment occurrence only when the id repeats
/// ("OBX[2]-5"), the repetition only when the field repeats ("PID-3[2].1"), the component only
/// when the repetition has several ("PID-5.1"), the sub-component likewise ("PID-3.4.2").
/// A segment whose id is not three upper-case letters/digits is named by position ("#5-1").
/// Empty leaves are skipped unless include_empty. One pass over each field: O(message size).
void forEachLeaf(const Message& msg, const InspectOptions& options,
                 const std::function<void(const Leaf&)>& fn);

/// The leaf's value as UTF-8 (escapes resolved unless literal; MSH-18 charset).
std::string leafValue(const Message& msg, const Leaf& leaf);

/// One line per leaf: `PID-5.1 = DOE`; an explicit null shows as `""`; control characters in
/// values as \n \r \t \xHH.
std::string inspectText(const Message& msg, const InspectOptions& options = {});

/// {"type":"ADT","trigger":"A01","structure":"ADT_A01","control_id":"...","version":"2.5.1",
///  "charset":"ASCII","delimiters":"|^~\\&","segments":5,
///  "fields":[{"path":"MSH-1","value":"|"},...,{"path":"PID-8","value":null}]}
/// Values are UTF-8 JSON strings; an explicit HL7 null is JSON null.
std::string inspectJson(const Message& msg, const InspectOptions& options = {});

/// `s` (UTF-8) as a JSON string literal with quotes; control characters escaped.
std::string jsonString(std::string_view s);

}  // namespace psa::adapters::hl7
