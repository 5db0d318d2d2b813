// FHIR wire formats: searchset/history Bundle pages (payload spans are the server's exact
// bytes), Bulk NDJSON lines and manifests, kinds, identities, and every bad-input error with
// its exact message.
#include <gtest/gtest.h>

#include "psa/adapters/api/fhir.h"

namespace api = psa::adapters::api;
using psa::store::Kind;

namespace {

std::string payload(std::string_view text, const api::FhirItem& item) {
  return std::string(text.substr(item.offset, item.length));
}

TEST(FhirPage, SearchsetWithNextLinkTotalAndExactPayloadBytes) {
  const std::string text = R"({"resourceType":"Bundle","type":"searchset","total":3,
    "meta":{"lastUpdated":"2026-11-25T10:00:00.123Z"},
    "link":[{"relation":"self","url":"https://h/P?x"},{"relation":"next","url":"https://h/P?_page_token=a%7Cb"}],
    "entry":[{"fullUrl":"https://h/Patient/1","resource":{"resourceType":"Patient","id":"1","meta":{"versionId":"3","lastUpdated":"2026-11-20T00:00:00Z"},"name":[{"family":"Ünïcode"}]},"search":{"mode":"match"}},
             {"resource": {"resourceType" : "Patient", "id":"e.2-x", "meta":{"lastUpdated":"2026-11-21T00:00:00Z"}}},
             {"resource":{"resourceType":"OperationOutcome","id":"w"},"search":{"mode":"outcome"}}]})";
  auto page = api::parseBundlePage(text);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->bundle_type, "searchset");
  EXPECT_EQ(page->last_updated, "2026-11-25T10:00:00.123Z");
  EXPECT_EQ(page->next_url, "https://h/P?_page_token=a%7Cb");
  EXPECT_EQ(page->total, 3);
  EXPECT_EQ(page->outcome_entries, 1u);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(payload(text, page->items[0]),
            R"({"resourceType":"Patient","id":"1","meta":{"versionId":"3","lastUpdated":"2026-11-20T00:00:00Z"},"name":[{"family":"Ünïcode"}]})");
  EXPECT_EQ(payload(text, page->items[1]),
            R"({"resourceType" : "Patient", "id":"e.2-x", "meta":{"lastUpdated":"2026-11-21T00:00:00Z"}})");
  EXPECT_EQ(api::fhirIdentity(page->items[0].ref, false), "Patient/1/_history/3");
  EXPECT_EQ(api::fhirIdentity(page->items[1].ref, false), "Patient/e.2-x@2026-11-21T00:00:00Z");
}

TEST(FhirPage, LastPageHasNoNextAndEmptyBundleIsFine) {
  auto page = api::parseBundlePage(R"({"resourceType":"Bundle","type":"searchset"})");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->next_url, "");
  EXPECT_TRUE(page->items.empty());
  EXPECT_EQ(page->total, std::nullopt);
}

TEST(FhirPage, HistoryDeleteEntriesCarryTheEntryAndTheDeletionVersion) {
  const std::string text = R"({"resourceType":"Bundle","type":"history","entry":[
    {"fullUrl":"https://h/Observation/9","request":{"method":"DELETE","url":"Observation/9"},"response":{"status":"204 No Content","etag":"W/\"4\"","lastModified":"2026-11-25T10:00:00Z"}},
    {"resource":{"resourceType":"Observation","id":"8","meta":{"versionId":"2"}},"request":{"method":"PUT","url":"Observation/8"}}]})";
  auto page = api::parseBundlePage(text);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->items.size(), 2u);
  const auto& del = page->items[0];
  EXPECT_TRUE(del.deleted);
  EXPECT_EQ(del.ref.type, "Observation");
  EXPECT_EQ(del.ref.id, "9");
  EXPECT_EQ(del.ref.version_id, "4");
  EXPECT_EQ(payload(text, del).substr(0, 44), R"({"fullUrl":"https://h/Observation/9","reques)");
  EXPECT_EQ(api::fhirIdentity(del.ref, true), "Observation/9/_history/4/deleted");
  EXPECT_FALSE(page->items[1].deleted);
}

TEST(FhirPage, ErrorsNameTheProblemAndItsPlace) {
  auto check = [](const std::string& text, const std::string& want) {
    auto r = api::parseBundlePage(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().message, want) << text;
  };
  check("", "Bundle page: line 1 column 1: unexpected end of input, expected a value");
  check(R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient")",
        "Bundle page: line 1 column 72: unterminated object, expected ',' or '}'");
  check("[]", "expected a Bundle object (byte 0)");
  check(R"({"resourceType":"Patient","id":"1"})", "resourceType: expected \"Bundle\" (byte 0)");
  check(R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad _count"}]})",
        "got an OperationOutcome instead of a Bundle: code=invalid: bad _count (byte 0)");
  check(R"({"resourceType":"Bundle","entry":{}})", "entry: expected an array (byte 33)");
  check(R"({"resourceType":"Bundle","entry":[{"fullUrl":"x"}]})",
        "entry[0]: entry without resource (byte 34)");
  check(R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}}]})",
        "entry[0].resource: missing or invalid id (byte 46)");
  check(R"({"resourceType":"Bundle","entry":[{"resource":{"id":"1"}}]})",
        "entry[0].resource: missing resourceType (byte 46)");
  check(R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1","meta":"x"}}]})",
        "entry[0].resource.meta: expected an object (byte 88)");
  check(R"({"resourceType":"Bundle","total":-1})", "total: expected a non-negative integer (byte 33)");
  check(R"({"resourceType":"Bundle","link":[{"relation":"next"}]})",
        "link[0].url: next link without url (byte 33)");
  check(R"({"resourceType":"Bundle","entry":[{"request":{"method":"DELETE","url":"nonsense"}}]})",
        "entry[0].request.url: expected Type/id in a DELETE entry (byte 45)");
}

TEST(FhirPage, ParseErrorsNeverQuoteTheServersText) {
  // A page cut inside a patient's name: the parser's message would quote the "key".
  auto r = api::parseBundlePage(R"({"resourceType":"Bundle","entry":[{"resource":{"Smith, John" 1}}]})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("Smith"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message, "Bundle page: line 1 column 62: expected ':' after key \"...\"");
  EXPECT_EQ(api::scrubParseError("a \"secret\" b \"x"), "a \"...\" b \"...");
}

TEST(FhirPage, DepthAndEntryLimits) {
  std::string deep = R"({"resourceType":"Bundle","x":)";
  for (int i = 0; i < 100; ++i) deep += "[";
  auto r = api::parseBundlePage(deep);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(psa::Errc::limit));
  api::FhirLimits limits;
  limits.max_entries = 1;
  auto many = api::parseBundlePage(
      R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"1"}},{"resource":{"resourceType":"Patient","id":"2"}}]})",
      limits);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().message, "Bundle page: more than 1 entries");
}

TEST(FhirNdjson, ResourceLineDeletedLineAndTypeCheck) {
  const std::string line = R"({"resourceType":"Encounter","id":"7","meta":{"versionId":"1"}})";
  auto item = api::parseNdjsonResource(line + "\r", "Encounter");
  ASSERT_TRUE(item);
  EXPECT_EQ(payload(line, *item), line);
  auto wrong = api::parseNdjsonResource(line, "Patient");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "NDJSON line: resourceType Encounter in a Patient file (byte 0)");
  auto bad = api::parseNdjsonResource(R"({"resourceType":"Encounter","id":"7")");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "NDJSON line: line 1 column 37: unterminated object, expected ',' or '}'");

  const std::string del = R"({"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Observation/1"}},{"request":{"method":"DELETE","url":"Observation/2"}}]})";
  auto items = api::parseNdjsonDeleted(del);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ(payload(del, (*items)[1]), R"({"request":{"method":"DELETE","url":"Observation/2"}})");
  EXPECT_EQ(api::fhirIdentity((*items)[1].ref, true), "Observation/2/deleted");
  auto notdel = api::parseNdjsonDeleted(R"({"resourceType":"Bundle","entry":[{"request":{"method":"PUT","url":"A/1"}}]})");
  ASSERT_FALSE(notdel);
  EXPECT_EQ(notdel.error().message, "entry[0]: expected a DELETE request (byte 34)");
}

TEST(FhirBulk, ManifestParsesAndRejectsMissingTransactionTime) {
  auto m = api::parseBulkManifest(R"({"transactionTime":"2026-11-25T21:16:44.730Z","request":"x","requiresAccessToken":true,
      "output":[{"type":"Patient","url":"https://h/f/Patient-1.ndjson","count":2}],
      "deleted":[{"type":"Bundle","url":"https://h/f/del.ndjson","count":1}],"error":[]})");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->transaction_time, "2026-11-25T21:16:44.730Z");
  ASSERT_EQ(m->output.size(), 1u);
  EXPECT_EQ(m->output[0].count, 2);
  EXPECT_EQ(m->deleted[0].url, "https://h/f/del.ndjson");
  auto bad = api::parseBulkManifest(R"({"output":[]})");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "transactionTime: missing or not an instant (byte 0)");
  auto nourl = api::parseBulkManifest(R"({"transactionTime":"2026-11-25T21:16:44Z","output":[{"type":"Patient"}]})");
  ASSERT_FALSE(nourl);
  EXPECT_EQ(nourl.error().message, "output[0].url: missing (byte 52)");
}

TEST(FhirKinds, ResourceTypesMapToTheSixKinds) {
  EXPECT_EQ(api::kindForFhirType("Patient"), Kind::patient);
  EXPECT_EQ(api::kindForFhirType("RelatedPerson"), Kind::patient);
  EXPECT_EQ(api::kindForFhirType("Appointment"), Kind::appointment);
  EXPECT_EQ(api::kindForFhirType("Slot"), Kind::appointment);
  EXPECT_EQ(api::kindForFhirType("Observation"), Kind::clinical);
  EXPECT_EQ(api::kindForFhirType("ChargeItem"), Kind::billing);
  EXPECT_EQ(api::kindForFhirType("Coverage"), Kind::billing);
  EXPECT_EQ(api::kindForFhirType("Practitioner"), Kind::provider);
  EXPECT_EQ(api::kindForFhirType("Location"), Kind::provider);
  EXPECT_EQ(api::kindForFhirType("Device"), Kind::inventory);
  EXPECT_EQ(api::kindForFhirType("SupplyDelivery"), Kind::inventory);
  EXPECT_EQ(api::kindForFhirType("Basic"), Kind::other);
}

TEST(FhirErrors, SummaryOfOperationOutcomeAndOAuthErrors) {
  EXPECT_EQ(api::summarizeErrorBody(R"({"resourceType":"OperationOutcome","issue":[{"code":"throttled","diagnostics":"slow down\n"}]})"),
            "code=throttled: slow down?");
  EXPECT_EQ(api::summarizeErrorBody(R"({"error":"invalid_client","error_description":"bad signature"})"),
            "code=invalid_client: bad signature");
  EXPECT_EQ(api::summarizeErrorBody(R"({"detail":"Request was throttled."})"), "Request was throttled.");
  EXPECT_EQ(api::summarizeErrorBody("<html>"), "");
  EXPECT_EQ(api::summarizeErrorBody(std::string(R"({"error":"x","error_description":")") + std::string(300, 'a') + "\"}").size(),
            std::string("code=x: ").size() + 160 + 3);
}

}  // namespace
