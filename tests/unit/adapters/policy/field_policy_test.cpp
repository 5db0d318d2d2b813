// The field policy per format and action: what changes, what stays byte-identical, and that
// the result still parses as its format.
#include "psa/adapters/policy/field_policy.h"

#include <gtest/gtest.h>

#include "psa/adapters/hl7/message.h"
#include "psa/store/json.h"

namespace psa::adapters::policy {
namespace {

using store::Kind;

const std::string kKey(32, 'k');

FieldPolicyPtr make(std::vector<Rule> rules, bool default_ssn = true) {
  PolicySettings s;
  s.rules = std::move(rules);
  s.default_ssn_mask = default_ssn;
  auto p = FieldPolicy::build(std::move(s), kKey);
  EXPECT_TRUE(p) << (p ? "" : p.error().message);
  return *p;
}

Rule rule(std::string format, std::string field, Action action, int keep = 4) {
  Rule r;
  r.format = std::move(format);
  r.field = std::move(field);
  r.action = action;
  r.keep = keep;
  return r;
}

std::string hl7Field(const std::string& msg, const std::string& path) {
  hl7::Message m;
  EXPECT_TRUE(m.parse(msg));
  return m.decode(m.get(path));
}

const std::string kAdt =
    "MSH|^~\\&|EPIC|CLINIC|PSA|CLOUD|20260101120000||ADT^A08|MSG001|P|2.5.1\r"
    "PID|1||MRN123^^^HOSP^MR~987654321^^^SSA^SS||ZZMARKER^PAT\\T\\ONE||19800214|F|||"
    "12 Main St^^Springfield^IL^62704||555-0100|||||ACC9|987-65-4321\r"
    "PV1|1|O\r";

TEST(FieldPolicyHl7, DefaultMasksPid19AndSsTypedPid3KeepingEverythingElse) {
  auto p = make({});
  Outcome o = p->apply(Kind::patient, "hl7v2", kAdt);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(o.counts.masked, 2u);
  EXPECT_EQ(o.payload.find("987-65-4321"), std::string::npos);
  EXPECT_EQ(o.payload.find("987654321"), std::string::npos);
  EXPECT_EQ(hl7Field(o.payload, "PID-19"), "*******4321");
  EXPECT_EQ(hl7Field(o.payload, "PID-3[2].1"), "*****4321");
  EXPECT_EQ(hl7Field(o.payload, "PID-3[2].5"), "SS");
  EXPECT_EQ(hl7Field(o.payload, "PID-3[1].1"), "MRN123");
  // Every other byte as received, the escape in PID-5 included.
  std::string expected = kAdt;
  expected.replace(expected.find("987654321"), 9, "*****4321");
  expected.replace(expected.find("987-65-4321"), 11, "*******4321");
  EXPECT_EQ(o.payload, expected);
  EXPECT_EQ(hl7Field(o.payload, "PID-5.2"), "PAT&ONE");
}

TEST(FieldPolicyHl7, MaskingTwiceChangesNothing) {
  auto p = make({});
  Outcome once = p->apply(Kind::patient, "hl7v2", kAdt);
  Outcome twice = p->apply(Kind::patient, "hl7v2", once.payload);
  EXPECT_FALSE(twice.changed);
  EXPECT_EQ(twice.counts.total(), 0u);
}

TEST(FieldPolicyHl7, DropEmptiesTheField) {
  auto p = make({rule("hl7v2", "PID-11", Action::drop)});
  Outcome o = p->apply(Kind::patient, "hl7v2", kAdt);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(o.counts.dropped, 1u);
  hl7::Message m;
  ASSERT_TRUE(m.parse(o.payload));
  EXPECT_TRUE(m.get("PID-11").empty());
  EXPECT_EQ(o.payload.find("Springfield"), std::string::npos);
  EXPECT_EQ(hl7Field(o.payload, "PID-13"), "555-0100");  // later fields stay in place
}

TEST(FieldPolicyHl7, HashIsStableKeyedAndFreeOfDelimiters) {
  auto p = make({rule("hl7v2", "PID-18", Action::hash)});
  Outcome a = p->apply(Kind::patient, "hl7v2", kAdt);
  Outcome b = p->apply(Kind::patient, "hl7v2", kAdt);
  ASSERT_TRUE(a.changed);
  EXPECT_EQ(a.counts.hashed, 1u);
  EXPECT_EQ(a.payload, b.payload);
  const std::string token = hl7Field(a.payload, "PID-18");
  EXPECT_EQ(token.size(), 34u);
  EXPECT_EQ(token.substr(0, 2), "h:");
  PolicySettings other;
  other.rules = {rule("hl7v2", "PID-18", Action::hash)};
  auto q = *FieldPolicy::build(other, std::string(32, 'x'));
  EXPECT_NE(hl7Field(q->apply(Kind::patient, "hl7v2", kAdt).payload, "PID-18"), token);
}

TEST(FieldPolicyHl7, GeneralizeBirthDateAndZip) {
  auto p = make(
      {rule("hl7v2", "PID-7", Action::generalize), rule("hl7v2", "PID-11.5", Action::generalize)});
  Outcome o = p->apply(Kind::patient, "hl7v2", kAdt);
  EXPECT_EQ(o.counts.generalized, 2u);
  EXPECT_EQ(hl7Field(o.payload, "PID-7"), "1980");
  EXPECT_EQ(hl7Field(o.payload, "PID-11.5"), "627");
  EXPECT_EQ(hl7Field(o.payload, "PID-11.3"), "Springfield");
}

TEST(FieldPolicyHl7, ConfiguredRuleWinsOverTheDefault) {
  auto p = make({rule("hl7v2", "PID-19", Action::hash)});
  Outcome o = p->apply(Kind::patient, "hl7v2", kAdt);
  EXPECT_EQ(hl7Field(o.payload, "PID-19").substr(0, 2), "h:");
  EXPECT_EQ(o.counts.hashed, 1u);
  EXPECT_EQ(o.counts.masked, 1u);  // PID-3 SS by the default
}

TEST(FieldPolicyHl7, MaskCharacterThatIsADelimiterIsEscaped) {
  // '*' as the component separator: the mask must not add structure.
  const std::string msg =
      "MSH|*~\\&|A|B|C|D|20260101||ADT*A08|X1|P|2.5\rPID|1||||||||||||||||||123-45-6789\r";
  auto p = make({});
  Outcome o = p->apply(Kind::patient, "hl7v2", msg);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(hl7Field(o.payload, "PID-19"), "*******6789");
  hl7::Message m;
  ASSERT_TRUE(m.parse(o.payload));
  EXPECT_EQ(m.componentCount(1, 19, 1), 1);
}

TEST(FieldPolicyHl7, DefaultOffLeavesTheMessageAlone) {
  auto p = make({}, false);
  EXPECT_FALSE(p->apply(Kind::patient, "hl7v2", kAdt).changed);
}

TEST(FieldPolicyHl7, KindFilter) {
  Rule r = rule("hl7v2", "PID-7", Action::drop);
  r.kind = "billing";
  auto p = make({r}, false);
  EXPECT_FALSE(p->apply(Kind::patient, "hl7v2", kAdt).changed);
  EXPECT_TRUE(p->apply(Kind::billing, "hl7v2", kAdt).changed);
}

TEST(FieldPolicyHl7, UnparseableHl7IsLeftToTheDeadLetterFallback) {
  auto p = make({});
  const std::string bad = "PID|1||||||||||||||||||987654321|x\rgarbage 123-45-6789";
  Outcome o = p->apply(Kind::patient, "hl7v2", bad);
  EXPECT_FALSE(o.parsed);
  EXPECT_FALSE(o.changed);
  Outcome d = p->applyToDeadLetter(Kind::patient, "hl7v2", bad);
  ASSERT_TRUE(d.changed);
  EXPECT_EQ(d.payload, "PID|1||||||||||||||||||*****4321|x\rgarbage *******6789");
  EXPECT_EQ(d.counts.masked, 2u);
}

TEST(FieldPolicyCsv, DefaultMasksSsnLikeColumnsCaseInsensitively) {
  auto p = make({});
  const std::string row =
      R"({"PatientID":"P1","Last":"ZZMARKER","Patient_SSN":"987-65-4321","SSN":"123456789","Zip":"62704"})";
  Outcome o = p->apply(Kind::patient, "csv+json", row);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(o.counts.masked, 2u);
  EXPECT_EQ(
      o.payload,
      R"({"PatientID":"P1","Last":"ZZMARKER","Patient_SSN":"*******4321","SSN":"*****6789","Zip":"62704"})");
  EXPECT_TRUE(json::parse(o.payload));
}

TEST(FieldPolicyCsv, ActionsByColumnName) {
  auto p =
      make({rule("csv+json", "last", Action::hash), rule("csv+json", "zip", Action::generalize),
            rule("csv+json", "DOB", Action::generalize), rule("csv+json", "phone", Action::drop)});
  const std::string row =
      R"({"Last":"ZZMARKER","Zip":"62704-1234","dob":"1980-02-14","Phone":"555-0100"})";
  Outcome o = p->apply(Kind::patient, "csv+json", row);
  auto doc = json::parse(o.payload);
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->getString("Last").substr(0, 2), "h:");
  EXPECT_EQ(doc->getString("Zip"), "627");
  EXPECT_EQ(doc->getString("dob"), "1980");
  EXPECT_EQ(doc->getString("Phone"), "");
  EXPECT_EQ(o.counts.hashed, 1u);
  EXPECT_EQ(o.counts.generalized, 2u);
  EXPECT_EQ(o.counts.dropped, 1u);
}

TEST(FieldPolicyVendorJson, DefaultMasksSsnMembersAtAnyDepth) {
  auto p = make({});
  const std::string body =
      R"({"id":7,"ssn":"987-65-4321","patient":{"SSN":987654321,"name":"ZZMARKER"},)"
      R"("guarantors":[{"social_security_number":"111-22-3333"}]})";
  Outcome o = p->apply(Kind::patient, "vendor+json", body);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(o.counts.masked, 3u);
  EXPECT_EQ(o.payload,
            R"({"id":7,"ssn":"*******4321","patient":{"SSN":"*****4321","name":"ZZMARKER"},)"
            R"("guarantors":[{"social_security_number":"*******3333"}]})");
}

TEST(FieldPolicyVendorJson, PathsAnchoredAndAnyDepth) {
  auto p = make({rule("vendor+json", "patient.dob", Action::generalize),
                 rule("vendor+json", "*.phone", Action::drop)},
                false);
  const std::string body =
      R"({"dob":"1999-01-01","patient":{"dob":"1980-02-14","contacts":[{"phone":"555"}]}})";
  Outcome o = p->apply(Kind::patient, "vendor+json", body);
  EXPECT_EQ(o.payload,
            R"({"dob":"1999-01-01","patient":{"dob":"1980","contacts":[{"phone":null}]}})");
}

TEST(FieldPolicyFhir, DefaultMasksUsSsnIdentifiersOnly) {
  auto p = make({});
  const std::string bundle =
      R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","identifier":[)"
      R"({"system":"urn:mrn","value":"MRN1"},)"
      R"({"system":"http://hl7.org/fhir/sid/us-ssn","value":"987-65-4321"}],"birthDate":"1980-02-14"}}]})";
  Outcome o = p->apply(Kind::patient, "fhir+json", bundle);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(o.counts.masked, 1u);
  EXPECT_NE(o.payload.find(R"("value":"MRN1")"), std::string::npos);
  EXPECT_NE(o.payload.find(R"("value":"*******4321")"), std::string::npos);
}

TEST(FieldPolicyFhir, ResourcePaths) {
  auto p = make({rule("fhir+json", "Patient.birthDate", Action::generalize),
                 rule("fhir+json", "Patient.address.postalCode", Action::generalize),
                 rule("fhir+json", "Patient.name", Action::drop)});
  const std::string patient =
      R"({"resourceType":"Patient","name":[{"family":"ZZMARKER"}],"birthDate":"1980-02-14",)"
      R"("address":[{"city":"Springfield","postalCode":"62704"}]})";
  Outcome o = p->apply(Kind::patient, "fhir+json", patient);
  EXPECT_EQ(o.payload, R"({"resourceType":"Patient","name":null,"birthDate":"1980",)"
                       R"("address":[{"city":"Springfield","postalCode":"627"}]})");
}

TEST(FieldPolicyVendorXml, DefaultMasksSsnElementsText) {
  auto p = make({});
  const std::string soap =
      "<s:Envelope><s:Body><Patient><LastName>ZZMARKER</LastName>"
      "<SocialSecurityNumber>987654321</SocialSecurityNumber><k:SSN>987-65-4321</k:SSN>"
      "<SSN/><GuarantorSSN>A&amp;B</GuarantorSSN></Patient></s:Body></s:Envelope>";
  Outcome o = p->apply(Kind::patient, "vendor+xml", soap);
  ASSERT_TRUE(o.changed);
  EXPECT_EQ(o.counts.masked, 2u);
  EXPECT_EQ(o.payload,
            "<s:Envelope><s:Body><Patient><LastName>ZZMARKER</LastName>"
            "<SocialSecurityNumber>*****4321</SocialSecurityNumber><k:SSN>*******4321</k:SSN>"
            "<SSN/><GuarantorSSN>A&amp;B</GuarantorSSN></Patient></s:Body></s:Envelope>");
  EXPECT_FALSE(make({}, false)->apply(Kind::patient, "vendor+xml", soap).changed);
}

TEST(FieldPolicySettings, SchemaRejectsReferencesThatFitNoFormat) {
  auto doc = json::parse(R"({"rules":[{"format":"hl7v2","field":"patient.ssn","action":"mask"},
    {"format":"fhir+json","field":"ssn","action":"drop"},
    {"field":"PID-19","action":"shred"},
    {"format":"csv+json","field":"SSN","action":"mask","keep":2}]})");
  ASSERT_TRUE(doc);
  std::vector<schema::Issue> issues;
  schema::validate(*doc, *policySchema(), "policy", issues);
  ASSERT_EQ(issues.size(), 3u);
  EXPECT_EQ(issues[0].path, "policy.rules[0].field");
  EXPECT_EQ(issues[0].line, 1u);
  EXPECT_EQ(issues[1].path, "policy.rules[1].field");
  EXPECT_EQ(issues[1].line, 2u);
  EXPECT_EQ(issues[2].path, "policy.rules[2].action");
  EXPECT_EQ(issues[2].line, 3u);
}

TEST(FieldPolicySettings, ReadAndDescribe) {
  auto doc = json::parse(
      R"({"rules":[{"kind":"patient","format":"hl7v2","field":"PID-19","action":"hash"}],"default_ssn_mask":false})");
  ASSERT_TRUE(doc);
  const json::Value filled = schema::withDefaults(*doc, *policySchema());
  PolicySettings s = readPolicySettings(&filled);
  EXPECT_FALSE(s.default_ssn_mask);
  ASSERT_EQ(s.rules.size(), 1u);
  EXPECT_EQ(s.rules[0].action, Action::hash);
  EXPECT_TRUE(s.hashes());
  EXPECT_EQ(
      json::serialize(s.describe()),
      R"({"default_ssn_mask":false,"rules":[{"kind":"patient","format":"hl7v2","field":"PID-19","action":"hash"}]})");
  EXPECT_FALSE(FieldPolicy::build(s, ""));  // a hash rule needs the key
  EXPECT_TRUE(readPolicySettings(nullptr).default_ssn_mask);
}

}  // namespace
}  // namespace psa::adapters::policy
