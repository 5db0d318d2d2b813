// The hl7-mllp adapter schema: every bad value is reported with its path and an exact message.
#include <gtest/gtest.h>

#include "psa/adapters/source.h"
#include "psa/store/json.h"
#include "psa/store/schema.h"

namespace psa::test {
namespace {

std::vector<std::string> problems(const std::string& extra) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  const auto* f = registry.find("hl7-mllp");
  EXPECT_NE(f, nullptr);
  auto base = json::parse(R"({"name":"cerner-adt","type":"hl7-mllp","vendor":"cerner"})").value();
  auto more = json::parse(extra);
  EXPECT_TRUE(more.ok()) << extra;
  for (auto& [k, v] : more.value().members()) {
    base.set(k, v);
  }
  std::vector<schema::Issue> issues;
  schema::validate(base, *f->schema, "adapters[0]", issues);
  std::vector<std::string> out;
  for (const auto& i : issues) {
    out.push_back(i.path + ": " + i.message);
  }
  return out;
}

using V = std::vector<std::string>;

TEST(MllpConfig, RegisteredWithDescriptionSchemaAndCheck) {
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  const auto* f = registry.find("hl7-mllp");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->create);
  EXPECT_TRUE(f->check);
  // commonAdapterFields() come first.
  ASSERT_GE(f->schema->fields.size(), 4u);
  EXPECT_EQ(f->schema->fields[0].name, "name");
  EXPECT_EQ(f->schema->fields[1].name, "type");
}

TEST(MllpConfig, DesignExampleIsValid) {
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","ack_mode":"original"})"), V{});
}

TEST(MllpConfig, FullConfigIsValid) {
  EXPECT_EQ(problems(R"({"listen":["0.0.0.0:2575","[::]:2575","localhost:2576"],
      "tls":{"cert_file":"mllp.pem","key_file":"mllp.key","client_ca_file":"pms-ca.pem","min_version":"1.3"},
      "allow":["10.0.0.0/8","192.168.1.20","fd00::/8","::1"],
      "idle_timeout_s":0,"write_timeout_s":30,"max_connections":1024,"max_connections_per_peer":16,
      "max_message_bytes":1048576,
      "max_pipeline":64,"ack_mode":"enhanced","dedupe":false,"required_segments":["PID","PV1"],
      "message_types":["ADT","SIU^S12"],"versions":["2.5.1"],"processing_ids":["P"],
      "kind_map":{"ZPM":"patient","MFN^M02":"provider"}})"),
            V{});
}

TEST(MllpConfig, ListenIsRequired) {
  EXPECT_EQ(problems("{}"),
            V{"adapters[0].listen: required any value is missing (HOST:PORT or a list of them, "
              "e.g. 0.0.0.0:2575 or [::]:2575)"});
}

TEST(MllpConfig, BadListenValues) {
  EXPECT_EQ(problems(R"({"listen":"2575"})"),
            V{"adapters[0].listen: \"2575\": expected HOST:PORT (e.g. 0.0.0.0:2575 or [::]:2575)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:99999"})"),
            V{"adapters[0].listen: \"0.0.0.0:99999\": port must be a number 0..65535"});
  EXPECT_EQ(problems(R"({"listen":"::1:2575"})"),
            V{"adapters[0].listen: \"::1:2575\": an IPv6 address needs brackets: [ADDRESS]:PORT"});
  EXPECT_EQ(problems(R"({"listen":"[::1]2575"})"),
            V{"adapters[0].listen: \"[::1]2575\": expected [IPV6]:PORT"});
  EXPECT_EQ(problems(R"({"listen":"pms.example:2575"})"),
            V{"adapters[0].listen: \"pms.example:2575\": not an IPv4 address (or localhost)"});
  EXPECT_EQ(problems(R"({"listen":"[1.2.3.4]:2575"})"),
            V{"adapters[0].listen: \"[1.2.3.4]:2575\": not an IPv6 address"});
  EXPECT_EQ(problems(R"({"listen":[]})"),
            V{"adapters[0].listen: expected at least one HOST:PORT"});
  EXPECT_EQ(problems(R"({"listen":2575})"),
            V{"adapters[0].listen: expected HOST:PORT or a list of them"});
  EXPECT_EQ(problems(R"({"listen":["0.0.0.0:2575","0.0.0.0:2575"]})"),
            V{"adapters[0].listen: \"0.0.0.0:2575\" is listed twice"});
}

TEST(MllpConfig, BadAllowEntries) {
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","allow":["10.0.0.1/8"]})"),
            V{"adapters[0].allow: \"10.0.0.1/8\": host bits set after /8 (write the network "
              "address)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","allow":["10.0.0.0/33"]})"),
            V{"adapters[0].allow: \"10.0.0.0/33\": prefix length must be 0..32"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","allow":["pms-server"]})"),
            V{"adapters[0].allow: \"pms-server\": expected an IPv4 or IPv6 address or network "
              "(e.g. 10.0.0.0/8, fd00::/8)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","allow":[10]})"),
            V{"adapters[0].allow[0]: expected string, found a number"});
}

TEST(MllpConfig, BadTlsSection) {
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","tls":{"cert_file":"a.pem"}})"),
            V{"adapters[0].tls.key_file: required string is missing (server private key (PEM))"});
  EXPECT_EQ(
      problems(R"({"listen":"0.0.0.0:2575","tls":{"cert_file":"a","key_file":"b","min_version":"1.1"}})"),
      V{"adapters[0].tls.min_version: \"1.1\" is not one of: 1.2, 1.3"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","tls":{"cert_file":"a","key_file":"b","ca":"c"}})"),
            V{"adapters[0].tls.ca: unknown key (known keys: cert_file, key_file, client_ca_file, "
              "min_version)"});
}

TEST(MllpConfig, BadLimitsAndModes) {
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","max_connections":0})"),
            V{"adapters[0].max_connections: value 0 out of range, expected 1..65535"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","max_connections_per_peer":0})"),
            V{"adapters[0].max_connections_per_peer: value 0 out of range, expected 1..65535"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","max_message_bytes":100000000})"),
            V{"adapters[0].max_message_bytes: value 100000000 out of range, expected "
              "1024..67108864"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","ack_mode":"commit"})"),
            V{"adapters[0].ack_mode: \"commit\" is not one of: auto, original, enhanced"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","idle_timeout_s":-1})"),
            V{"adapters[0].idle_timeout_s: value -1 out of range, expected 0..604800"});
}

TEST(MllpConfig, BadSegmentsTypesAndKindMap) {
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","required_segments":["pid"]})"),
            V{"adapters[0].required_segments: \"pid\" is not a segment id (three upper-case "
              "letters/digits)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","message_types":["ADT^"]})"),
            V{"adapters[0].message_types: \"ADT^\": expected TYPE or TYPE^TRIGGER (e.g. ADT or "
              "ADT^A08)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","kind_map":{"ZPM":"patients"}})"),
            V{"adapters[0].kind_map.ZPM: kind map \"ZPM\": unknown kind \"patients\" (expected "
              "patient, appointment, clinical, billing, provider, inventory or other)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","kind_map":{"ADT-A08":"patient"}})"),
            V{"adapters[0].kind_map.ADT-A08: kind map key \"ADT-A08\": expected TYPE or "
              "TYPE^TRIGGER (e.g. ADT^A08)"});
  EXPECT_EQ(problems(R"({"listen":"0.0.0.0:2575","kind_map":{"ZPM":3}})"),
            V{"adapters[0].kind_map.ZPM: expected a kind name"});
}

TEST(MllpConfig, UnknownKeyNamesTheKnownOnes) {
  auto p = problems(R"({"listen":"0.0.0.0:2575","port":2575})");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].rfind("adapters[0].port: unknown key (known keys: name, type, vendor, enabled, "
                       "listen, tls, allow,",
                       0),
            0u)
      << p[0];
}

}  // namespace
}  // namespace psa::test
