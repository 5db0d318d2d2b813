// libFuzzer target for the field policy. The first byte picks the payload format (HL7, CSV row
// JSON, vendor JSON, FHIR JSON, vendor XML) and the rule set; the rest is the payload. Checks, besides
// ASan/UBSan: a payload that parsed before the policy still parses after it as the same format
// (HL7: same segment count, same field count per segment); applying the policy again changes
// nothing more than masking already did; the dead-letter path never throws.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "psa/adapters/hl7/message.h"
#include "psa/adapters/policy/field_policy.h"
#include "psa/store/json.h"

namespace {

using namespace psa::adapters;
using psa::store::Kind;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_field_policy invariant failed: %s\n", what);
    std::abort();
  }
}

policy::Rule rule(const char* format, const char* field, policy::Action action, int keep = 4) {
  policy::Rule r;
  r.format = format;
  r.field = field;
  r.action = action;
  r.keep = keep;
  return r;
}

const policy::FieldPolicy& policyFor(int which) {
  static const policy::FieldPolicyPtr defaults = *policy::FieldPolicy::build({});
  static const policy::FieldPolicyPtr all = [] {
    policy::PolicySettings s;
    s.rules = {rule("hl7v2", "PID-11", policy::Action::drop),
               rule("hl7v2", "PID-7", policy::Action::generalize),
               rule("hl7v2", "PID-5.1", policy::Action::hash),
               rule("hl7v2", "PID-3@MR", policy::Action::mask, 2),
               rule("hl7v2", "IN1-36", policy::Action::drop),
               rule("csv+json", "zip", policy::Action::generalize),
               rule("csv+json", "last", policy::Action::hash),
               rule("csv+json", "phone", policy::Action::drop),
               rule("vendor+json", "*.dob", policy::Action::generalize),
               rule("vendor+json", "patient.name", policy::Action::drop),
               rule("vendor+json", "*.mrn", policy::Action::hash),
               rule("fhir+json", "Patient.birthDate", policy::Action::generalize),
               rule("fhir+json", "Patient.name", policy::Action::drop),
               rule("fhir+json", "Patient.identifier[system=urn:mrn]", policy::Action::hash)};
    return *policy::FieldPolicy::build(s, std::string(32, 'k'));
  }();
  return which == 0 ? *defaults : *all;
}

void checkHl7(std::string_view in, std::string_view out) {
  hl7::Message a;
  hl7::Message b;
  check(static_cast<bool>(a.parse(in)), "input parsed");
  check(static_cast<bool>(b.parse(out)), "HL7 output parses");
  check(a.segmentCount() == b.segmentCount(), "same segment count");
  for (size_t i = 0; i < a.segmentCount(); ++i) {
    check(a.segmentId(i) == b.segmentId(i), "same segment ids");
    check(a.fieldCount(i) == b.fieldCount(i), "same field count");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  static const char* kFormats[] = {"hl7v2", "csv+json", "vendor+json", "fhir+json"};
  const std::string_view format = (data[0] & 8) != 0 ? "vendor+xml" : kFormats[data[0] & 3];
  const policy::FieldPolicy& p = policyFor((data[0] >> 2) & 1);
  const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);

  const policy::Outcome o = p.apply(Kind::patient, format, payload);
  if (o.changed) {
    check(o.parsed, "changed only what parsed");
    if (format == "hl7v2") {
      checkHl7(payload, o.payload);
    } else if (format == "vendor+xml") {
      // Element text masked in place, one '*' per character (a multi-byte one shrinks).
      check(o.payload.size() <= payload.size(), "XML masked in place");
    } else {
      check(static_cast<bool>(psa::json::parse(o.payload)), "JSON output parses");
    }
    // A second pass finds nothing new to mask (hash tokens and generalized values are stable;
    // a drop leaves nothing).
    const policy::Outcome again = p.apply(Kind::patient, format, o.payload);
    check(again.parsed, "output parses for the policy too");
    check(again.counts.masked == 0 && again.counts.hashed == 0, "idempotent mask and hash");
  }
  (void)p.applyToDeadLetter(Kind::patient, format, payload);
  (void)p.applyToDeadLetter(Kind::patient, "binary", payload);
  return 0;
}
