// The messages of an HL7 file a technician exported (hl7 inspect, hl7 send, validate).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/result.h"

namespace psa::agent {

struct FileMessages {
  std::string text;  // the file
  struct Item {
    std::string_view body;
    size_t line = 0;   // 0 for MLLP captures
    size_t frame = 0;  // 1-based frame number for MLLP captures
  };
  std::vector<Item> items;
  std::vector<std::string> frames;  // MLLP capture: frame copies (items view them)
};

/// Reads FILE: HL7 text (one or many messages, blank-line separated or batch form) or an MLLP
/// capture (starts with 0x0B). Errors name the file and the line.
Result<std::unique_ptr<FileMessages>> readMessages(const std::string& file);

/// "line 12" or "frame 3".
std::string where(const FileMessages::Item& item);

}  // namespace psa::agent
