// Write requests (issue 15): every field of the contract payload, every error, body checks
// per format, and the result document.
#include "psa/adapters/write/write_request.h"

#include <gtest/gtest.h>

#include <string>

#include "psa/store/json.h"

namespace psa::adapters::write {
namespace {

constexpr const char* kId = "01JEKX4Z9Q8M3T6V7W2Y5B0C1D";
constexpr const char* kHl7 =
    "MSH|^~\\&|PS|CLOUD|PMS|CLINIC|||SIU^S12|||2.5.1\r"
    "SCH|A1\rPID|1||MRN123\r";

json::Value good() {
  return json::parse(std::string(R"({"id":")") + kId +
                     R"(","agent_id":"practice-1","issued_at":"2026-12-07T18:00:00Z",)"
                     R"("expires_at":"2026-12-07T19:00:00.500+01:00","target":"pms-hl7-out",)"
                     R"("op":"create","kind":"appointment","format":"hl7v2","resource":null,)"
                     R"("resource_id":null,"if_match":null,"body":"x"})")
      .value();
}

std::string with(const std::string& key, json::Value v) {
  json::Value doc = good();
  doc.set(key, std::move(v));
  return json::serialize(doc);
}

std::string without(const std::string& key) {
  json::Value doc = good();
  doc.erase(key);
  return json::serialize(doc);
}

// The error message of parsing `payload` (empty when it parses).
std::string errorOf(const std::string& payload, const WriteLimits& limits = {}) {
  auto r = parseWriteRequest(payload, limits);
  return r ? std::string() : r.error().message;
}

TEST(WriteRequest, ParsesEveryField) {
  json::Value doc = good();
  doc.set("resource", json::Value::string("Appointment"));
  doc.set("resource_id", json::Value::string("A-77"));
  doc.set("if_match", json::Value::string("W/\"3\""));
  doc.set("body", json::Value::string(kHl7));
  doc.set("future_field", json::Value::integer(1));  // additive contract: ignored
  auto r = parseWriteRequest(json::serialize(doc));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->id, kId);
  EXPECT_EQ(r->agent_id, "practice-1");
  EXPECT_EQ(r->issued_at_ms, 1796666400000);
  EXPECT_EQ(r->expires_at_ms, 1796666400000 + 500);
  EXPECT_EQ(r->target, "pms-hl7-out");
  EXPECT_EQ(r->op, WriteOp::create);
  EXPECT_EQ(r->kind, Kind::appointment);
  EXPECT_EQ(r->format, WriteFormat::hl7v2);
  EXPECT_EQ(r->resource, "Appointment");
  EXPECT_EQ(r->resource_id, "A-77");
  EXPECT_EQ(r->if_match, "W/\"3\"");
  EXPECT_EQ(r->body, kHl7);
}

TEST(WriteRequest, NullableFieldsMayBeAbsent) {
  json::Value doc = good();
  doc.erase("resource");
  doc.erase("resource_id");
  doc.erase("if_match");
  auto r = parseWriteRequest(json::serialize(doc));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->resource);
  EXPECT_FALSE(r->resource_id);
  EXPECT_FALSE(r->if_match);
}

TEST(WriteRequest, EnumsRoundTrip) {
  for (const char* op : {"create", "update", "cancel", "delete", "send"}) {
    auto r = parseWriteRequest(with("op", json::Value::string(op)));
    ASSERT_TRUE(r) << op;
    EXPECT_EQ(writeOpName(r->op), op);
  }
  for (const char* f : {"hl7v2", "fhir+json", "vendor+json", "csv"}) {
    auto r = parseWriteRequest(with("format", json::Value::string(f)));
    ASSERT_TRUE(r) << f;
    EXPECT_EQ(writeFormatName(r->format), f);
  }
  for (Kind k : store::kAllKinds) {
    auto r = parseWriteRequest(with("kind", json::Value::string(std::string(store::kindName(k)))));
    ASSERT_TRUE(r) << store::kindName(k);
    EXPECT_EQ(r->kind, k);
  }
}

TEST(WriteRequest, EveryRequiredFieldIsNamedWhenMissing) {
  for (const char* f :
       {"id", "agent_id", "issued_at", "expires_at", "target", "op", "kind", "format", "body"}) {
    EXPECT_EQ(errorOf(without(f)), std::string("write request: ") + f + ": missing") << f;
    EXPECT_EQ(errorOf(with(f, json::Value::integer(7))),
              std::string("write request: ") + f + ": expected a string, found number")
        << f;
  }
}

TEST(WriteRequest, BadValuesAreNamedWithoutEchoingThem) {
  const std::string secret = "ZZSECRET";
  struct Case {
    const char* field;
    std::string value;
    const char* expect;
  } cases[] = {
      {"id", secret, "id: expected a ULID"},
      {"id", "01jekx4z9q8m3t6v7w2y5b0c1d", "id: expected a ULID"},  // lower case
      {"id", "81JEKX4Z9Q8M3T6V7W2Y5B0C1D", "id: expected a ULID"},  // beyond 48 bits
      {"id", "01JEKX4Z9Q8M3T6V7W2Y5B0C1I", "id: expected a ULID"},  // I is not Crockford
      {"id", "01JEKX4Z9Q8M3T6V7W2Y5B0C1", "id: expected a ULID"},   // 25 characters
      {"agent_id", "", "agent_id: expected 1-128 printable"},
      {"agent_id", "a/" + secret, "agent_id: expected 1-128 printable"},
      {"agent_id", "a\x01", "agent_id: expected 1-128 printable"},
      {"agent_id", std::string(129, 'a'), "agent_id: expected 1-128 printable"},
      {"issued_at", secret, "issued_at: expected an RFC 3339 time"},
      {"issued_at", "2026-12-07 18:00:00", "issued_at: expected an RFC 3339 time"},
      {"expires_at", "2026-13-07T18:00:00Z", "expires_at: expected an RFC 3339 time"},
      {"expires_at", "2026-12-07T17:59:59Z", "expires_at: not after issued_at"},
      {"target", "Bad" + secret, "target: expected an adapter name"},
      {"target", "-x", "target: expected an adapter name"},
      {"target", std::string(64, 'a'), "target: expected an adapter name"},
      {"op", secret, "op: expected one of create, update, cancel, delete, send"},
      {"op", "CREATE", "op: expected one of"},
      {"kind", secret,
       "kind: expected one of patient, appointment, clinical, billing, provider, inventory, "
       "other"},
      {"format", secret, "format: expected one of hl7v2, fhir+json, vendor+json, csv"},
      {"resource", "", "resource: expected 1-256 printable characters, or null"},
      {"resource_id", std::string(257, 'x'), "resource_id: expected 1-256 printable"},
      {"if_match", "a\nb" + secret, "if_match: expected 1-256 printable"},
  };
  for (const auto& c : cases) {
    const std::string err = errorOf(with(c.field, json::Value::string(c.value)));
    EXPECT_NE(err.find(std::string("write request: ") + c.expect), std::string::npos)
        << c.field << " -> " << err;
    EXPECT_EQ(err.find(secret), std::string::npos) << err;
  }
  EXPECT_EQ(errorOf(with("resource", json::Value::integer(1))),
            "write request: resource: expected a string or null, found number");
}

TEST(WriteRequest, ShapeAndSizeErrors) {
  EXPECT_EQ(errorOf("[]"), "write request: expected a JSON object, found array");
  EXPECT_NE(errorOf("{\"id\":").find("write request: not JSON: line 1"), std::string::npos);
  // A duplicate member could make two readers see two different requests.
  const std::string dup = json::serialize(good()).insert(1, "\"op\":\"delete\",");
  EXPECT_NE(errorOf(dup).find("duplicate key \"op\""), std::string::npos);

  WriteLimits small;
  small.max_body_bytes = 4;
  auto body = parseWriteRequest(with("body", json::Value::string("12345")), small);
  ASSERT_FALSE(body);
  EXPECT_TRUE(body.error().is(Errc::limit));
  EXPECT_EQ(body.error().message, "write request: body: larger than 4 bytes");
  small.max_payload_bytes = 10;
  auto whole = parseWriteRequest(json::serialize(good()), small);
  ASSERT_FALSE(whole);
  EXPECT_TRUE(whole.error().is(Errc::limit));
}

TEST(WriteRequest, IdOfARejectedPayload) {
  EXPECT_EQ(requestIdOf(with("op", json::Value::string("nope"))), kId);
  EXPECT_EQ(requestIdOf(with("id", json::Value::string("not-a-ulid"))), "");
  EXPECT_EQ(requestIdOf("{"), "");
}

TEST(WriteBody, Hl7NeedsOneParsableMessageWithMshType) {
  EXPECT_TRUE(validateBodyFor(WriteFormat::hl7v2, kHl7));
  EXPECT_TRUE(validateBodyFor(WriteFormat::hl7v2, "MSH|^~\\&|A|B|||||ADT^A08\nPID|1\n"));
  auto expectError = [](std::string_view body, std::string_view part) {
    auto st = validateBodyFor(WriteFormat::hl7v2, body);
    ASSERT_FALSE(st) << body;
    EXPECT_NE(st.error().message.find(part), std::string::npos) << st.error().message;
    EXPECT_EQ(st.error().message.rfind("body: ", 0), 0u);
    EXPECT_EQ(st.error().message.find("ZZSECRET"), std::string::npos);
  };
  expectError("", "body: empty");
  expectError("PID|1||ZZSECRET\r", "HL7 10");  // no MSH: the parser's code and location
  expectError("FHS|^~\\&\rMSH|^~\\&|A|B|||||ADT^A08\r", "expected MSH");
  expectError("MSH|^~\\&|ZZSECRET\rPID|1\r", "HL7 101 (Required field missing) at MSH-9.1");
  expectError("MSH|^~\\&|A|B|||||ADT\rPID|1\r", "MSH-9.2");
  expectError("MSH|^~\\&|A|B|||||ADT^A08\rMSH|^~\\&|A|B|||||ADT^A08\r", "more than one MSH");
}

TEST(WriteBody, FhirNeedsAResourceObject) {
  EXPECT_TRUE(validateBodyFor(WriteFormat::fhir_json,
                              R"({"resourceType":"Appointment","status":"booked"})"));
  for (const char* bad : {"[1]", R"({"status":"booked"})", R"({"resourceType":7})",
                          R"({"resourceType":"appointment"})",
                          "{\"resourceType\":", R"({"resourceType":"Appointment"} x)"}) {
    auto st = validateBodyFor(WriteFormat::fhir_json, bad);
    EXPECT_FALSE(st) << bad;
    if (!st) {
      EXPECT_EQ(st.error().message.rfind("body: ", 0), 0u) << st.error().message;
    }
  }
}

TEST(WriteBody, VendorJsonAndCsvAreWellFormed) {
  EXPECT_TRUE(validateBodyFor(WriteFormat::vendor_json, R"({"appointmentid":"1"})"));
  EXPECT_TRUE(validateBodyFor(WriteFormat::vendor_json, R"([{"a":1}])"));
  EXPECT_FALSE(validateBodyFor(WriteFormat::vendor_json, "\"text\""));
  EXPECT_FALSE(validateBodyFor(WriteFormat::vendor_json, "{"));

  EXPECT_TRUE(validateBodyFor(WriteFormat::csv, "id,when\n1,2026-12-08\n"));
  auto ragged = validateBodyFor(WriteFormat::csv, "id,when\n1,2,ZZSECRET\n");
  ASSERT_FALSE(ragged);
  EXPECT_NE(ragged.error().message.find("line 2"), std::string::npos) << ragged.error().message;
  EXPECT_EQ(ragged.error().message.find("ZZSECRET"), std::string::npos);
  EXPECT_FALSE(validateBodyFor(WriteFormat::csv, "id,when\n"));
  EXPECT_FALSE(validateBodyFor(WriteFormat::csv, "id,when\n\"1,2\n"));
}

TEST(WriteResult, CompactSingleLineJson) {
  WriteResult r;
  r.id = kId;
  r.status = WriteStatus::delivered;
  r.target = "pms-hl7-out";
  r.pms_ref = "0Q8M3T6V7W2Y5B0C1D";
  r.attempts = 2;
  r.at_ms = 1796666400123;
  EXPECT_EQ(r.toJson(),
            std::string(R"({"id":")") + kId +
                R"(","status":"delivered","reason":null,"error":null,"target":"pms-hl7-out",)"
                R"("pms_ref":"0Q8M3T6V7W2Y5B0C1D","attempts":2,"at":"2026-12-07T18:00:00.123Z"})");
  r.status = WriteStatus::rejected;
  r.reason = std::string(kReasonBadRequest);
  r.error = "write request: op: expected one of\ncreate";
  const std::string json = r.toJson();
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_NE(json.find(R"("status":"rejected","reason":"bad_request")"), std::string::npos);
  for (auto s :
       {WriteStatus::accepted, WriteStatus::failed, WriteStatus::expired, WriteStatus::cancelled}) {
    EXPECT_FALSE(writeStatusName(s).empty());
  }
}

}  // namespace
}  // namespace psa::adapters::write
