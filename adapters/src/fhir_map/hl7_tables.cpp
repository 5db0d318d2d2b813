// The HL7 v2 -> FHIR R4 mapping tables (version psa-v2-fhir-1), after the HL7 V2-to-FHIR
// implementation guide (segment maps PID[Patient], PV1[Encounter], IN1[Coverage],
// SCH[Appointment], OBR[DiagnosticReport], OBX[Observation], RXA/RXR[Immunization]; datatype maps CX, XPN, XAD, XTN,
// CWE, TS; the vocabulary maps of the code tables below). Change a row -> bump
// kMappingVersion (hl7_to_fhir.h) and the golden files.
// clang-format off
#include <cctype>

#include "fhir_map/hl7_tables.h"
#include "psa/adapters/api/http.h"

namespace psa::adapters::fhir_map {
namespace {

#define PSA_N(a) (sizeof(a) / sizeof((a)[0]))

// ---- segment maps ----
constexpr FieldRule kPid[] = {
    {3, 0, Conv::cx, "identifier[]", ""},
    {19, 0, Conv::ssn, "identifier[]", ""},
    {5, 0, Conv::xpn, "name[]", ""},
    {7, 0, Conv::date, "birthDate", ""},
    {8, 0, Conv::code, "gender", "administrative-gender"},
    {11, 0, Conv::xad, "address[]", ""},
    {13, 0, Conv::xtn, "telecom[]", "home"},
    {14, 0, Conv::xtn, "telecom[]", "work"},
    {15, 0, Conv::cwe, "communication[].language", "urn:ietf:bcp:47"},
    {16, 0, Conv::cwe, "maritalStatus", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"},
    {29, 0, Conv::date_time, "deceasedDateTime", ""},
};

constexpr FieldRule kPv1[] = {
    {2, 0, Conv::coding, "class", "patient-class"},
    {4, 0, Conv::cwe, "type[]", "http://terminology.hl7.org/CodeSystem/v2-0007"},
    {10, 0, Conv::cwe, "serviceType", "http://terminology.hl7.org/CodeSystem/v2-0069"},
    {19, 0, Conv::cx, "identifier[]", ""},
    {44, 0, Conv::date_time, "period.start", ""},
    {45, 0, Conv::date_time, "period.end", ""},
};

constexpr FieldRule kIn1[] = {
    {2, 0, Conv::plan_class, "class[]", "plan"},
    {3, 0, Conv::payor, "payor[]", ""},
    {8, 0, Conv::plan_class, "class[]", "group"},
    {12, 0, Conv::date_time, "period.start", ""},
    {13, 0, Conv::date_time, "period.end", ""},
    {36, 0, Conv::string, "subscriberId", ""},
};

constexpr FieldRule kSch[] = {
    {1, 0, Conv::ei, "identifier[]", "PLAC"},
    {2, 0, Conv::ei, "identifier[]", "FILL"},
    {7, 0, Conv::cwe, "reasonCode[]", "http://terminology.hl7.org/CodeSystem/v2-0276"},
    {8, 0, Conv::cwe, "appointmentType", "http://terminology.hl7.org/CodeSystem/v2-0277"},
    {9, 0, Conv::minutes, "minutesDuration", ""},
    {11, 4, Conv::instant, "start", ""},
    {11, 5, Conv::instant, "end", ""},
    {25, 0, Conv::code, "status", "appointment-status"},
};

constexpr FieldRule kAis[] = {
    {3, 0, Conv::cwe, "serviceType[]", ""},
};

constexpr FieldRule kAip[] = {
    {3, 0, Conv::xcn_actor, "participant[].actor", ""},
};

constexpr FieldRule kObr[] = {
    {2, 0, Conv::ei, "identifier[]", "PLAC"},
    {3, 0, Conv::ei, "identifier[]", "FILL"},
    {4, 0, Conv::cwe, "code", ""},
    {7, 0, Conv::date_time, "effectiveDateTime", ""},
    {22, 0, Conv::instant, "issued", ""},
    {25, 0, Conv::code, "status", "report-status"},
};

constexpr FieldRule kObx[] = {
    {3, 0, Conv::cwe, "code", ""},
    {5, 0, Conv::obx_value, "value", ""},
    {7, 0, Conv::range_text, "referenceRange[]", ""},
    {8, 0, Conv::cwe, "interpretation[]", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"},
    {11, 0, Conv::code, "status", "observation-status"},
    {14, 0, Conv::date_time, "effectiveDateTime", ""},
};

constexpr FieldRule kRxa[] = {
    {3, 0, Conv::date_time, "occurrenceDateTime", ""},
    {5, 0, Conv::cwe, "vaccineCode", "http://hl7.org/fhir/sid/cvx"},
    {15, 0, Conv::string, "lotNumber", ""},
    {16, 0, Conv::date, "expirationDate", ""},
    {20, 0, Conv::code, "status", "immunization-status"},
};

constexpr FieldRule kRxr[] = {
    {1, 0, Conv::cwe, "route", ""},
    {2, 0, Conv::cwe, "site", "http://terminology.hl7.org/CodeSystem/v2-0163"},
};

// ---- message maps ----
constexpr ResourceRule kAdtResources[] = {
    {"Patient", "PID", false, true, kPid, PSA_N(kPid)},
    {"Encounter", "PV1", false, false, kPv1, PSA_N(kPv1)},
    {"Coverage", "IN1", true, false, kIn1, PSA_N(kIn1)},
};
// A28 and A31 (person information) carry no visit: no Encounter even with a PV1.
constexpr ResourceRule kPersonResources[] = {
    {"Patient", "PID", false, true, kPid, PSA_N(kPid)},
    {"Coverage", "IN1", true, false, kIn1, PSA_N(kIn1)},
};

constexpr DefaultRule kAdtDefaults[] = {
    {"A01 A02 A06 A07", "Encounter", "status", "\"in-progress\"", true,
     "V2-to-FHIR ADT_A01/A02/A06/A07 message maps: the patient is admitted or transferred"},
    {"A03", "Encounter", "status", "\"finished\"", true, "V2-to-FHIR ADT_A03: discharge"},
    {"A04", "Encounter", "status", "\"arrived\"", true, "V2-to-FHIR ADT_A04: registration"},
    {"A05", "Encounter", "status", "\"planned\"", true, "V2-to-FHIR ADT_A05: pre-admission"},
    {"A08", "Encounter", "status", "\"unknown\"", false,
     "A08 updates a record and says nothing of the visit's state"},
    {"*", "Coverage", "status", "\"active\"", false, "V2-to-FHIR IN1[Coverage]: status active"},
};

constexpr RefRule kAdtRefs[] = {
    {"Encounter", "subject", "Patient"},
    {"Coverage", "beneficiary", "Patient"},
};

constexpr ResourceRule kSiuResources[] = {
    {"Patient", "PID", false, true, kPid, PSA_N(kPid)},
    {"Appointment", "SCH", false, true, kSch, PSA_N(kSch)},
    {"Appointment", "AIS", true, false, kAis, PSA_N(kAis)},
    {"Appointment", "AIP", true, false, kAip, PSA_N(kAip)},
};

constexpr DefaultRule kSiuDefaults[] = {
    {"S12 S13 S14", "Appointment", "status", "\"booked\"", false,
     "SIU^S12 books (S13 reschedules, S14 modifies) an appointment when SCH-25 says nothing"},
    {"S15", "Appointment", "status", "\"cancelled\"", true, "SIU^S15: cancellation"},
    {"S26", "Appointment", "status", "\"noshow\"", true, "SIU^S26: the patient did not show"},
    {"*", "Appointment", "participant[].status", "\"accepted\"", false,
     "participant status is 1..1; a scheduled participant has accepted"},
};

constexpr RefRule kSiuRefs[] = {
    {"Appointment", "participant[].actor", "Patient"},
};

constexpr ResourceRule kOruResources[] = {
    {"Patient", "PID", false, true, kPid, PSA_N(kPid)},
    {"DiagnosticReport", "OBR", true, true, kObr, PSA_N(kObr)},
    {"Observation", "OBX", true, false, kObx, PSA_N(kObx)},
};

constexpr DefaultRule kOruDefaults[] = {
    {"*", "DiagnosticReport", "status", "\"final\"", false,
     "an ORU^R01 without OBR-25 reports a final result"},
    {"*", "DiagnosticReport", "category[]",
     "{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0074\",\"code\":\"LAB\"}]}",
     false, "ORU^R01 carries laboratory results (US Core DiagnosticReport Lab)"},
    {"*", "Observation", "category[]",
     "{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"laboratory\"}]}",
     false, "ORU^R01 carries laboratory results (US Core Laboratory Result Observation)"},
};

// DiagnosticReport.result and Observation.subject: the engine pairs each OBX with the OBR
// before it, and links the report to those observations only.
constexpr RefRule kOruRefs[] = {
    {"DiagnosticReport", "subject", "Patient"},
    {"Observation", "subject", "Patient"},
    {"DiagnosticReport", "result[]", "Observation"},
};

constexpr ResourceRule kVxuResources[] = {
    {"Patient", "PID", false, true, kPid, PSA_N(kPid)},
    {"Immunization", "RXA", false, true, kRxa, PSA_N(kRxa)},
    {"Immunization", "RXR", false, false, kRxr, PSA_N(kRxr)},
};

constexpr DefaultRule kVxuDefaults[] = {
    {"*", "Immunization", "status", "\"completed\"", false,
     "V2-to-FHIR RXA[Immunization]: an empty RXA-20 means the dose was given"},
};

constexpr RefRule kVxuRefs[] = {
    {"Immunization", "patient", "Patient"},
};

constexpr MessageMap kMessages[] = {
    {"ADT", "A01 A02 A03 A04 A05 A06 A07 A08", store::Kind::patient, kAdtResources,
     PSA_N(kAdtResources), kAdtDefaults, PSA_N(kAdtDefaults), kAdtRefs, PSA_N(kAdtRefs)},
    {"ADT", "A28 A31", store::Kind::patient, kPersonResources, PSA_N(kPersonResources),
     kAdtDefaults, PSA_N(kAdtDefaults), kAdtRefs, PSA_N(kAdtRefs)},
    {"SIU", "S12 S13 S14 S15 S26", store::Kind::appointment, kSiuResources, PSA_N(kSiuResources),
     kSiuDefaults, PSA_N(kSiuDefaults), kSiuRefs, PSA_N(kSiuRefs)},
    {"ORU", "R01", store::Kind::clinical, kOruResources, PSA_N(kOruResources), kOruDefaults,
     PSA_N(kOruDefaults), kOruRefs, PSA_N(kOruRefs)},
    {"VXU", "V04", store::Kind::clinical, kVxuResources, PSA_N(kVxuResources), kVxuDefaults,
     PSA_N(kVxuDefaults), kVxuRefs, PSA_N(kVxuRefs)},
};

// ---- code tables (V2-to-FHIR vocabulary maps) ----
struct CodeRow {
  const char* table;
  const char* from;
  const char* to;
};

constexpr CodeRow kCodes[] = {
    // HL7 table 0001 -> administrative-gender
    {"administrative-gender", "M", "male"}, {"administrative-gender", "F", "female"},
    {"administrative-gender", "O", "other"}, {"administrative-gender", "A", "other"},
    {"administrative-gender", "U", "unknown"}, {"administrative-gender", "N", "unknown"},
    // table 0004 -> v3 ActCode (Encounter.class)
    {"patient-class", "E", "EMER"}, {"patient-class", "I", "IMP"},
    {"patient-class", "O", "AMB"}, {"patient-class", "P", "PRENC"},
    {"patient-class", "B", "IMP"},
    // table 0278 (SCH-25) -> appointmentstatus
    {"appointment-status", "PENDING", "pending"}, {"appointment-status", "WAITLIST", "waitlist"},
    {"appointment-status", "BOOKED", "booked"}, {"appointment-status", "STARTED", "arrived"},
    {"appointment-status", "COMPLETE", "fulfilled"}, {"appointment-status", "CANCELLED", "cancelled"},
    {"appointment-status", "DC", "cancelled"}, {"appointment-status", "DELETED", "entered-in-error"},
    {"appointment-status", "OVERBOOK", "booked"}, {"appointment-status", "NOSHOW", "noshow"},
    // table 0123 (OBR-25) -> diagnostic-report-status
    {"report-status", "O", "registered"}, {"report-status", "I", "registered"},
    {"report-status", "S", "partial"}, {"report-status", "A", "partial"},
    {"report-status", "R", "partial"}, {"report-status", "P", "preliminary"},
    {"report-status", "C", "corrected"}, {"report-status", "F", "final"},
    {"report-status", "X", "cancelled"},
    // table 0085 (OBX-11) -> observation-status
    {"observation-status", "C", "corrected"}, {"observation-status", "D", "entered-in-error"},
    {"observation-status", "F", "final"}, {"observation-status", "I", "registered"},
    {"observation-status", "O", "registered"}, {"observation-status", "P", "preliminary"},
    {"observation-status", "R", "preliminary"}, {"observation-status", "S", "preliminary"},
    {"observation-status", "U", "final"}, {"observation-status", "W", "entered-in-error"},
    {"observation-status", "X", "cancelled"},
    // table 0322 (RXA-20) -> immunization-status
    {"immunization-status", "CP", "completed"}, {"immunization-status", "PA", "completed"},
    {"immunization-status", "RE", "not-done"}, {"immunization-status", "NA", "not-done"},
    // table 0200 (XPN.7) -> name-use
    {"name-use", "L", "official"}, {"name-use", "D", "usual"}, {"name-use", "M", "maiden"},
    {"name-use", "N", "nickname"}, {"name-use", "A", "usual"}, {"name-use", "S", "anonymous"},
    {"name-use", "T", "temp"}, {"name-use", "B", "official"},
    // table 0190 (XAD.7) -> address-use
    {"address-use", "H", "home"}, {"address-use", "B", "work"}, {"address-use", "O", "work"},
    {"address-use", "C", "temp"}, {"address-use", "BA", "billing"},
    // table 0201 (XTN.2) -> contact-point-use
    {"contact-point-use", "PRN", "home"}, {"contact-point-use", "ORN", "home"},
    {"contact-point-use", "VHN", "home"}, {"contact-point-use", "WPN", "work"},
    {"contact-point-use", "PRS", "mobile"},
    // table 0202 (XTN.3) -> contact-point-system
    {"contact-point-system", "PH", "phone"}, {"contact-point-system", "CP", "phone"},
    {"contact-point-system", "FX", "fax"}, {"contact-point-system", "BP", "pager"},
    {"contact-point-system", "INTERNET", "email"}, {"contact-point-system", "X.400", "email"},
    {"contact-point-system", "MD", "other"}, {"contact-point-system", "TDD", "other"},
    {"contact-point-system", "TTY", "other"},
};

struct SystemRow {
  const char* name;
  const char* uri;
};

constexpr SystemRow kSystems[] = {
    {"LN", "http://loinc.org"}, {"I10", "http://hl7.org/fhir/sid/icd-10-cm"},
    {"I10C", "http://hl7.org/fhir/sid/icd-10-cm"}, {"I9C", "http://hl7.org/fhir/sid/icd-9-cm"},
    {"SCT", "http://snomed.info/sct"}, {"SNM", "http://snomed.info/sct"},
    {"CPT", "http://www.ama-assn.org/go/cpt"}, {"C4", "http://www.ama-assn.org/go/cpt"},
    {"UCUM", "http://unitsofmeasure.org"}, {"CVX", "http://hl7.org/fhir/sid/cvx"},
    {"NDC", "http://hl7.org/fhir/sid/ndc"}, {"RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"},
    {"patient-class", "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
};

}  // namespace

const MessageMap* findMessageMap(std::string_view type, std::string_view trigger) {
  if (trigger.size() != 3) {
    return nullptr;
  }
  for (const MessageMap& m : kMessages) {
    if (!api::iequals(type, m.type)) {
      continue;
    }
    for (std::string_view events(m.events); !events.empty();) {
      if (api::iequals(events.substr(0, 3), trigger)) {
        return &m;
      }
      events = events.size() > 4 ? events.substr(4) : std::string_view();
    }
  }
  return nullptr;
}

std::optional<std::string_view> mapCode(std::string_view table, std::string_view code) {
  for (const CodeRow& row : kCodes) {
    if (table == row.table && api::iequals(code, row.from)) {
      return std::string_view(row.to);
    }
  }
  return std::nullopt;
}

std::string_view codeTableSystem(std::string_view table) {
  for (const SystemRow& row : kSystems) {
    if (table == row.name) {
      return row.uri;
    }
  }
  return {};
}

std::string codingSystem(std::string_view name) {
  for (const SystemRow& row : kSystems) {
    if (api::iequals(name, row.name)) {
      return row.uri;
    }
  }
  // HL7nnnn: a v2 table.
  if (name.size() == 7 && api::iequals(name.substr(0, 3), "HL7")) {
    bool digits = true;
    for (char c : name.substr(3)) {
      digits = digits && std::isdigit(static_cast<unsigned char>(c));
    }
    if (digits) {
      return "http://terminology.hl7.org/CodeSystem/v2-" + std::string(name.substr(3));
    }
  }
  return {};
}

}  // namespace psa::adapters::fhir_map
