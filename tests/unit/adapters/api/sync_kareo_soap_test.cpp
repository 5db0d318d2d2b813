// The kareo-soap strategy against an in-process Kareo SOAP service and the real store: the
// initial GetAllPatients batches (StartKey -> Key), then GetPatients from the watermark; an
// in-band security failure is a clear authorisation error and moves nothing.
#include "rest_sync_fixture.h"

namespace psa::test {
namespace {

constexpr const char* kAuth =
    R"("auth":{"type":"kareo","customer_key":"ck-1","username":"svc","password":"pw"})";

std::string soap(const std::string& op, const std::string& inner, bool security_ok = true) {
  return std::string(R"(<?xml version="1.0" encoding="utf-8"?>)") +
         R"(<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>)" + "<" + op +
         R"(Response xmlns="http://www.kareo.com/api/schemas/" )" +
         R"(xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><)" + op + "Result>" +
         "<ErrorResponse><ErrorMessage i:nil=\"true\"/><IsError>false</IsError></ErrorResponse>" +
         "<SecurityResponse><SecurityResult>" + (security_ok ? "Success" : "Invalid customer key") +
         "</SecurityResult><SecurityResultSuccess>" + (security_ok ? "true" : "false") +
         "</SecurityResultSuccess></SecurityResponse>" + inner + "</" + op + "Result></" + op +
         "Response></s:Body></s:Envelope>";
}

std::string patients(std::initializer_list<int> ids) {
  std::string out = "<Patients>";
  for (int id : ids) {
    out += "<PatientData><ID>" + std::to_string(id) +
           "</ID><LastModifiedDate>10/5/2023 9:03:08 AM</LastModifiedDate></PatientData>";
  }
  return out + "</Patients>";
}

// The operation a request names in its SOAPAction header.
std::string operation(const api::HttpRequest& r) {
  const std::string action = api::findHeader(r.headers, "SOAPAction").value_or("");
  const auto slash = action.rfind('/');
  return slash == std::string::npos ? "" : action.substr(slash + 1, action.size() - slash - 2);
}

TEST(SyncKareoSoap, InitialBatchesThenChangesSinceTheServerTime) {
  StrategyHarness h("kareo", std::string(R"({"name":"k","base_url":"https://pms.test/kareo",)") +
                                 R"("collections":["Patients"],"page_size":2,)" + kAuth + "}");
  h.vendor().answer = [](const api::HttpRequest& r) {
    const std::string op = operation(r);
    if (op == "GetAllPatients" &&
        r.body.find("<sch:StartKey>3</sch:StartKey>") == std::string::npos) {
      return ok(soap(op, "<Key>3</Key>" + patients({1, 2})));
    }
    if (op == "GetAllPatients") {
      return ok(soap(op, R"(<Key i:nil="true"/>)" + patients({3})));
    }
    return ok(soap(op, patients({2})));
  };
  ASSERT_TRUE(h.strategy().checkAuth(*h.clients().auth));
  ASSERT_TRUE(h.run());
  const auto seen = h.vendor().seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].url, "https://pms.test/kareo");
  EXPECT_EQ(api::findHeader(seen[0].headers, "SOAPAction"),
            "\"http://www.kareo.com/api/schemas/KareoServices/GetAllPatients\"");
  EXPECT_NE(seen[0].body.find("<sch:CustomerKey>ck-1</sch:CustomerKey>"), std::string::npos);
  EXPECT_NE(seen[0].body.find("<sch:BatchSize>2</sch:BatchSize>"), std::string::npos);
  EXPECT_NE(seen[1].body.find("<sch:StartKey>3</sch:StartKey>"), std::string::npos);
  EXPECT_EQ(h.host().carried.size(), 3u);
  EXPECT_EQ(h.host().carried[0].format, "vendor+xml");
  const std::string wm = h.serverMinus(3, "%-m/%-d/%Y %-I:%M:%S %p");
  EXPECT_EQ(h.watermark("since:Patients"), wm);
  EXPECT_EQ(h.watermark("cursor:Patients"), std::nullopt);
  EXPECT_EQ(h.watermark("known:Patients/3"), "1");  // Kareo reconciles deletions

  h.vendor().clearSeen();
  ASSERT_TRUE(h.run());
  const auto next = h.vendor().seen();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(operation(next[0]), "GetPatients");
  EXPECT_NE(next[0].body.find("<sch:FromLastModifiedDate>" + wm + "</sch:FromLastModifiedDate>"),
            std::string::npos)
      << next[0].body;
  EXPECT_EQ(h.host().carried.size(), 3u);  // patient 2 unchanged: a duplicate
}

TEST(SyncKareoSoap, ASecurityFailureIsAnAuthorisationErrorAndMovesNothing) {
  StrategyHarness h("kareo", std::string(R"({"name":"k","base_url":"https://pms.test/kareo",)") +
                                 R"("collections":["Patients"],)" + kAuth + "}");
  h.vendor().answer = [](const api::HttpRequest& r) { return ok(soap(operation(r), "", false)); };
  auto st = h.run();
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().is(Errc::unauthorized)) << st.error().message;
  EXPECT_NE(st.error().message.find("check auth.customer_key"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(h.vendor().seen().size(), 1u);  // a refusal is not retried
  EXPECT_EQ(h.watermark("since:Patients"), std::nullopt);
  EXPECT_TRUE(h.host().carried.empty());
}

TEST(SyncKareoSoap, NeedsKareoCredentials) {
  StrategyHarness h("kareo", R"({"name":"k","base_url":"https://pms.test/kareo"})");
  auto st = h.strategy().checkAuth(*h.clients().auth);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "the Kareo profile needs auth.type \"kareo\"");
}

}  // namespace
}  // namespace psa::test
