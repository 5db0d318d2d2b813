// Private parts of the field policy: compiled element references per format, the value
// transforms, and the per-format rewriters (each splices new bytes over the old value and
// leaves every other byte of the payload as it was).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/policy/field_policy.h"

namespace psa::adapters::policy {

/// What to do with one matched value.
struct LeafAction {
  Action action = Action::mask;
  int keep = 4;
};

/// The transform of one scalar value (already unescaped). nullopt: leave it as it is (empty,
/// or already in the target form). `utf8`: count characters, not bytes, when masking.
/// Counts the change it makes.
std::optional<std::string> transformValue(const LeafAction& act, std::string_view value,
                                          const std::string& key, bool utf8, Counts& counts);

/// A replacement of the payload's bytes [begin, end) by `text`.
struct Edit {
  size_t begin;
  size_t end;
  std::string text;
};

/// `text` with `edits` spliced in, in payload order; an edit that starts inside an earlier one
/// is skipped (a rewriter never produces one: matched values are not descended into).
std::string applyEdits(std::string_view text, std::vector<Edit> edits);

/// "h:" + 32 hex digits of HMAC-SHA256(key, value).
std::string hashToken(const std::string& key, std::string_view value);

/// Normalised name (lower case, '_' '-' ' ' '.' removed) is like a Social Security number
/// field: ssn, *ssn, social_security*, ...
bool ssnLikeName(std::string_view name);

/// One HL7 reference: SEG-F[.C[.S]][@TYPE].
struct Hl7Ref {
  std::string segment;
  int field = 0;
  int component = 0;
  int subcomponent = 0;
  std::string type;  ///< CX.5 filter ("SS"); empty: every repetition
};
std::optional<Hl7Ref> parseHl7Ref(std::string_view text);

/// A dotted JSON member path (vendor JSON) or a CSV column.
struct JsonRef {
  std::vector<std::string> path;  ///< keys from the root (or the tail, with any_depth)
  bool any_depth = false;
  bool ssn_like = false;  ///< the default: the last key is SSN-like, at any depth
};
std::optional<JsonRef> parseJsonRef(std::string_view text);

struct CsvRef {
  std::string column;  ///< lower case
  bool ssn_like = false;
};
std::optional<CsvRef> parseCsvRef(std::string_view text);

/// Resource.element[.element...] with an optional [system=URI] filter on the last element.
struct FhirRef {
  std::string resource;           ///< "Patient", or "*" for any resource type
  std::vector<std::string> path;  ///< elements below the resource
  std::string system;             ///< identifier system filter; empty: none
};
std::optional<FhirRef> parseFhirRef(std::string_view text);

template <class Ref>
struct Bound {
  Ref ref;
  LeafAction act;
  std::string kind;  ///< "*" or a kind name
  bool appliesTo(store::Kind k) const { return kind == "*" || kind == store::kindName(k); }
};

struct FieldPolicy::Compiled {
  std::vector<Bound<Hl7Ref>> hl7;
  std::vector<Bound<JsonRef>> vendor;
  std::vector<Bound<CsvRef>> csv;
  std::vector<Bound<FhirRef>> fhir;
};

Outcome rewriteHl7(std::string_view payload, const std::vector<const Bound<Hl7Ref>*>& rules,
                   const std::string& key);
Outcome rewriteVendorJson(std::string_view payload, const std::vector<const Bound<JsonRef>*>& rules,
                          const std::string& key);
Outcome rewriteCsvJson(std::string_view payload, const std::vector<const Bound<CsvRef>*>& rules,
                       const std::string& key);
Outcome rewriteFhirJson(std::string_view payload, const std::vector<const Bound<FhirRef>*>& rules,
                        const std::string& key);

/// The default SSN mask on vendor XML: the text of elements named like an SSN.
Outcome maskXmlSsnElements(std::string_view payload);

/// The dead-letter fallback for a payload no parser understood: masks 123-45-6789 shapes
/// anywhere, and a 9-digit value in PID-19 position of HL7-looking text, to the last four.
Outcome maskSsnShapes(std::string_view payload);

}  // namespace psa::adapters::policy
