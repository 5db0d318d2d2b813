#include "psa/agent/config.h"

#include <gtest/gtest.h>

namespace psa::agent {
namespace {

adapters::SourceRegistry testRegistry() {
  adapters::SourceRegistry r;
  auto s = std::make_shared<schema::ObjectSchema>();
  s->fields = adapters::commonAdapterFields();
  s->fields.push_back(schema::Field::str("listen").req());
  s->fields.push_back(schema::Field::str("password").hide());
  r.add(adapters::SourceFactory{"test-type", "test", s, {}, {}});
  return r;
}

std::vector<std::string> problems(const ConfigLoad& load) {
  std::vector<std::string> out;
  for (const auto& i : load.issues) {
    out.push_back(i.format());
  }
  return out;
}

TEST(Config, MinimalConfigGetsDefaultsAndResolvedPaths) {
  auto load = parseConfig(R"({"agent":{"id":"p1","tenant":"t1","state_dir":"/var/x"}})", "f.json",
                          testRegistry());
  ASSERT_TRUE(load.config) << ::testing::PrintToString(problems(load));
  const Config& c = *load.config;
  EXPECT_EQ(c.agent_id, "p1");
  EXPECT_EQ(c.store.db_path, "/var/x/queue.db");
  EXPECT_EQ(c.store.key_file, "/var/x/queue.key");
  EXPECT_EQ(c.store.max_bytes, 10737418240ull);
  EXPECT_FALSE(c.cloud.configured);
  EXPECT_EQ(c.control_socket, platformDefaults().control_address);
}

TEST(Config, CloudSectionParsed) {
  auto load = parseConfig(R"({"agent":{"id":"p1","tenant":"t1","state_dir":"/s"},
    "cloud":{"url":"mqtts://cloud.example:8884","ca_file":"ca.pem","cert_file":"/etc/a.pem",
             "key_file":"a.key","confirm":"receipt","config_signing_key":["k1.pem","k2.pem"]}})",
                          "f.json", testRegistry());
  ASSERT_TRUE(load.config) << ::testing::PrintToString(problems(load));
  const CloudSettings& s = load.config->cloud;
  EXPECT_TRUE(s.configured);
  EXPECT_EQ(s.host, "cloud.example");
  EXPECT_EQ(s.port, 8884);
  EXPECT_EQ(s.ca_file, "/s/ca.pem");
  EXPECT_EQ(s.cert_file, "/etc/a.pem");
  EXPECT_EQ(s.confirm, "receipt");
  ASSERT_EQ(s.config_signing_keys.size(), 2u);
  EXPECT_EQ(s.config_signing_keys[1], "/s/k2.pem");
}

TEST(Config, AllErrorsReportedAtOnceWithPathAndLine) {
  const char* text = R"({
  "agent": {"id": "a/b", "tenant": "t", "colour": 1},
  "store": {"max_bytes": "lots"},
  "cloud": {"url": "mqtt://x", "ca_file": "c", "cert_file": "c", "key_file": "k"},
  "adapters": [
    {"name": "one", "type": "test-type", "vendor": "cerner", "listen": ":1"},
    {"name": "one", "type": "test-type", "vendor": "acme"},
    {"name": "two", "type": "nope", "vendor": "epic"}
  ]
})";
  auto load = parseConfig(text, "f.json", testRegistry());
  ASSERT_FALSE(load.config);
  auto p = problems(load);
  std::vector<std::string> expected = {
      "line 2, column 19: agent.id: must be non-empty and contain no '/', '+', '#' (it is an MQTT "
      "topic level)",
      "line 2, column 51: agent.colour: unknown key (known keys: id, tenant, state_dir, log_level, "
      "log_file, "
      "log_max_bytes, log_keep)",
      "line 3, column 26: store.max_bytes: expected an integer, found a string",
      "line 4, column 20: cloud.url: expected mqtts://HOST[:PORT] (TLS is mandatory)",
      "line 7, column 5: adapters[1].listen: required string is missing",
      "line 7, column 14: adapters[1].name: duplicate adapter name \"one\"",
      "line 7, column 52: adapters[1].vendor: \"acme\" is not one of: epic, cerner, allscripts, "
      "athenahealth, eclinicalworks, nextgen, meditech, drchrono, kareo, practice-fusion, generic",
      "line 8, column 29: adapters[2].type: unknown adapter type \"nope\" (known: test-type)",
  };
  EXPECT_EQ(p, expected);
}

TEST(Config, NotJsonIsOneIssueWithPosition) {
  auto load = parseConfig("{\n  \"agent\": {,}\n}", "f.json", testRegistry());
  ASSERT_FALSE(load.config);
  ASSERT_EQ(load.issues.size(), 1u);
  EXPECT_EQ(load.issues[0].line, 2u);
  EXPECT_EQ(load.issues[0].column, 13u);
}

TEST(Config, MaskedConfigHidesAdapterSecrets) {
  auto load = parseConfig(R"({"agent":{"id":"p","tenant":"t"},"adapters":[
     {"name":"a","type":"test-type","vendor":"generic","listen":":1","password":"s3cret"}]})",
                          "f.json", testRegistry());
  ASSERT_TRUE(load.config) << ::testing::PrintToString(problems(load));
  auto registry = testRegistry();
  std::string shown = json::serialize(maskedConfig(*load.config, registry));
  EXPECT_EQ(shown.find("s3cret"), std::string::npos);
  EXPECT_NE(shown.find("********"), std::string::npos);
}

}  // namespace
}  // namespace psa::agent
