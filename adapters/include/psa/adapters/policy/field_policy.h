// Minimum-necessary field policy (issue 16): rules that drop, mask, hash or generalize
// elements of a record's payload before it is stored, so a value the policy removes is never at
// rest, in a dead letter, in a support bundle or in what the cloud receives.
//
// A rule is data: {kind, format, field, action[, keep]}. `field` is an element reference in the
// syntax of the payload format it applies to:
//   hl7v2        SEG-F[.C[.S]][@TYPE]   every occurrence of SEG, every repetition of field F;
//                                       "@TYPE" keeps only repetitions whose component 5 (CX.5,
//                                       identifier type) is TYPE and then means component 1
//                                       (PID-3@SS: the SSN repetitions of the identifier list)
//   csv+json     a column name, case-insensitive
//   vendor+json  a dotted member path from the root (patient.ssn); "*.name" is the member `name`
//                at any depth; arrays on the way are searched item by item
//   fhir+json    Resource.element[.element...], optionally Resource.identifier[system=URI]
//                (the identifiers with that system; the action then applies to their `value`);
//                resources nested in a Bundle or `contained` are found too
// A rule whose format is "*" applies to every format whose syntax its field fits.
//
// Actions (values only: structure is kept, so the payload still parses as its format):
//   drop        HL7: the element becomes empty; JSON: null; CSV: ""
//   mask        keep the last `keep` characters (default 4), each other character becomes '*'
//   hash        "h:" + the first 16 bytes (32 hex digits) of HMAC-SHA256(site key, value):
//               the same value gives the same token at this site; irreversible
//   generalize  a date (YYYY..., YYYY-MM-DD...) becomes its year, a ZIP code (5 or 9 digits,
//               12345-6789) its first three digits; any other value is dropped
//
// The default SSN rules (on unless `default_ssn_mask` is false) mask to the last four: HL7
// PID-19, PID-3/MRG-1 repetitions typed SS, NK1-37, GT1-12, IN2-2; vendor JSON members named
// ssn / social_security_number (any case, any depth); CSV columns named like an SSN; FHIR
// identifiers with system http://hl7.org/fhir/sid/us-ssn; vendor XML elements named like an
// SSN (<SocialSecurityNumber>). Configured rules take precedence over the defaults on the same
// element (configured rules do not address XML).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "psa/store/json.h"
#include "psa/store/record.h"
#include "psa/store/result.h"
#include "psa/store/schema.h"

namespace psa::adapters::policy {

enum class Action : uint8_t { drop, mask, hash, generalize };

std::string_view actionName(Action action);

struct Rule {
  std::string kind = "*";    ///< a kind name ("patient") or "*"
  std::string format = "*";  ///< "hl7v2", "csv+json", "vendor+json", "fhir+json" or "*"
  std::string field;         ///< element reference (see the file comment)
  Action action = Action::mask;
  int keep = 4;  ///< mask: characters kept at the end
};

/// How many values the policy changed (never the values themselves).
struct Counts {
  uint64_t masked = 0;
  uint64_t dropped = 0;
  uint64_t hashed = 0;
  uint64_t generalized = 0;

  Counts& operator+=(const Counts& other);
  uint64_t total() const { return masked + dropped + hashed + generalized; }
  json::Value toJson() const;
};

/// The `policy` section of the configuration.
struct PolicySettings {
  std::vector<Rule> rules;
  bool default_ssn_mask = true;

  /// True if some rule hashes (the site key is then needed).
  bool hashes() const;
  /// The rules as JSON, for the audit log and status (no values, only references).
  json::Value describe() const;
};

/// Schema of the `policy` section (rules are checked field by field: unknown format or kind,
/// a reference that fits no format, keep out of range...).
schema::ObjectSchemaPtr policySchema();

/// The settings of a `policy` section already validated against policySchema() (absent or
/// null: the defaults).
PolicySettings readPolicySettings(const json::Value* section);

/// What applying the policy to one payload did.
struct Outcome {
  bool changed = false;  ///< `payload` holds the rewritten bytes
  bool parsed = true;    ///< false: the payload did not parse as its format (left unchanged)
  std::string payload;
  Counts counts;
};

/// The compiled policy. Immutable and thread-safe once built.
class FieldPolicy {
 public:
  /// `hash_key` (at least 32 bytes) is required when settings.hashes(). Errors:
  /// Errc::invalid_argument (a rule that cannot compile, a missing key).
  static Result<std::shared_ptr<const FieldPolicy>> build(PolicySettings settings,
                                                          std::string hash_key = {});

  const PolicySettings& settings() const { return settings_; }

  /// Applies the rules for (kind, format) to `payload`. A payload that does not parse as its
  /// format is left unchanged with parsed = false.
  Outcome apply(store::Kind kind, std::string_view format, std::string_view payload) const;

  /// For a dead letter: apply(); when the payload does not parse as its format (or is of a
  /// format the rules do not address), and the default SSN mask is on, the conservative
  /// fallback: anything shaped like an SSN (123-45-6789, and 9 digits in an HL7 PID-19
  /// position) is masked to its last four.
  Outcome applyToDeadLetter(store::Kind kind, std::string_view format,
                            std::string_view payload) const;

  struct Compiled;
  ~FieldPolicy();

 private:
  FieldPolicy() = default;
  PolicySettings settings_;
  std::string key_;
  std::unique_ptr<Compiled> compiled_;
};

using FieldPolicyPtr = std::shared_ptr<const FieldPolicy>;

}  // namespace psa::adapters::policy
