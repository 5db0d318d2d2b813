// Maps an HL7 v2 message (MSH-9 type and trigger) to a record kind (psa::store::Kind).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "psa/adapters/hl7/message.h"
#include "psa/store/record.h"
#include "psa/store/result.h"

namespace psa::adapters::hl7 {

/// The built-in mapping: ADT -> patient; SIU -> appointment; DFT, BAR -> billing;
/// MFN, PMU -> provider, except MFN^M15 and MFN^M16 (inventory/material item master) ->
/// inventory; ORU, ORM, OML, MDM, RDE, VXU, PPR -> clinical; anything else -> other.
/// Case-sensitive (HL7 codes are upper case).
store::Kind defaultKind(std::string_view type, std::string_view trigger);

/// The built-in mapping plus per-adapter overrides. Immutable after construction; safe to
/// share between threads.
class Classifier {
 public:
  /// Built-in mapping only.
  Classifier() = default;

  /// Overrides keyed "TYPE" or "TYPE^TRIGGER" (e.g. "ZPM" or "MFN^M02"); a TYPE^TRIGGER key
  /// wins over a TYPE key, which wins over the built-in mapping. Keys are upper-cased.
  /// Errors: Errc::invalid_argument for a malformed key (not 3 letters/digits, optionally
  /// followed by '^' and 1..8 letters/digits), naming the key.
  static Result<Classifier> withOverrides(const std::map<std::string, store::Kind>& overrides);

  /// Same, from config strings ({"ZPM": "patient"}); unknown kind names are errors too.
  static Result<Classifier> fromConfig(const std::map<std::string, std::string>& overrides);

  store::Kind classify(std::string_view type, std::string_view trigger) const;
  /// classify(msg.messageType(), msg.triggerEvent()).
  store::Kind classify(const Message& msg) const;

 private:
  std::vector<std::pair<std::string, store::Kind>> overrides_;  // sorted by key
};

}  // namespace psa::adapters::hl7
