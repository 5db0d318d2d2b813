#include "psa/agent/remote_config.h"

#include <gtest/gtest.h>

namespace psa::agent {
namespace {

adapters::SourceRegistry testRegistry() {
  adapters::SourceRegistry r;
  auto s = std::make_shared<schema::ObjectSchema>();
  s->fields = adapters::commonAdapterFields();
  s->fields.push_back(schema::Field::str("listen").req());
  r.add(adapters::SourceFactory{"test-type", "test", s, {}, {}});
  return r;
}

ConfigPtr localConfig() {
  auto load = parseConfig(R"({"agent":{"id":"p1","tenant":"t1","state_dir":"/s"},
    "cloud":{"url":"mqtts://c:8883","ca_file":"ca.pem","cert_file":"a.pem","key_file":"a.key",
             "config_signing_key":"k.pem"},
    "adapters":[{"name":"a","type":"test-type","vendor":"cerner","listen":"0.0.0.0:1"}]})",
                          "f.json", testRegistry());
  EXPECT_TRUE(load.config != nullptr);
  return load.config;
}

std::vector<std::string> paths(const std::vector<PathError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) {
    out.push_back(e.path);
  }
  return out;
}

TEST(RemoteConfig, SettableValuesFormTheOverlay) {
  const ConfigPtr local = localConfig();
  auto check = checkOverlay(*json::parse(R"({"adapters":[],"agent":{"log_level":"debug","id":"p1"},
      "cloud":{"status_interval_s":60,"max_inflight":5},"store":{"max_bytes":10737418240}})"),
                            local->doc);
  EXPECT_TRUE(check.schema.empty()) << paths(check.schema).size();
  EXPECT_TRUE(check.forbidden.empty());
  // agent.id repeated unchanged is dropped; store.max_bytes equals the default: not pending.
  EXPECT_EQ(json::serialize(check.overlay),
            R"({"adapters":[],"agent":{"log_level":"debug"},"cloud":{"status_interval_s":60,"max_inflight":5},"store":{"max_bytes":10737418240}})");
  EXPECT_EQ(check.pending_restart, std::vector<std::string>{"cloud.max_inflight"});
}

TEST(RemoteConfig, ForbiddenAndUnknownKeysHaveTheirPaths) {
  const ConfigPtr local = localConfig();
  auto check = checkOverlay(*json::parse(R"({"agent":{"id":"p2","state_dir":"/x","colour":1},
      "cloud":{"ca_file":"evil.pem","config_signing_key":["evil.pub"],"url":"mqtts://evil:1"},
      "control":{"socket":"/tmp/s"},"store":{"path":"/tmp/q.db","max_bytes":"big"},"plugins":[],"adapters":{}})"),
                            local->doc);
  EXPECT_EQ(paths(check.forbidden),
            (std::vector<std::string>{"config.agent.id", "config.agent.state_dir", "config.cloud.ca_file",
                                      "config.cloud.config_signing_key", "config.cloud.url",
                                      "config.control.socket", "config.store.path"}));
  EXPECT_EQ(check.forbidden[0].message, "the agent's identity cannot be changed remotely");
  EXPECT_EQ(check.forbidden[2].message, "trust anchors cannot be changed remotely");
  EXPECT_EQ(paths(check.schema),
            (std::vector<std::string>{"config.agent.colour", "config.store.max_bytes", "config.plugins",
                                      "config.adapters"}));
}

TEST(RemoteConfig, EffectiveConfigMergesTheOverlayOverTheFile) {
  const ConfigPtr local = localConfig();
  auto check = checkOverlay(*json::parse(R"({"adapters":[{"name":"b","type":"test-type","vendor":"epic","listen":"0.0.0.0:2"}],
      "agent":{"log_level":"warn"}})"),
                            local->doc);
  ASSERT_TRUE(check.schema.empty() && check.forbidden.empty());
  auto load = buildEffectiveConfig(local->doc, check.overlay, local->source_file, testRegistry());
  ASSERT_TRUE(load.config != nullptr);
  EXPECT_EQ(load.config->adapters.size(), 1u);
  EXPECT_EQ(load.config->adapters[0].getString("name"), "b");
  EXPECT_EQ(load.config->log_level, log::Level::warn);
  EXPECT_EQ(load.config->agent_id, "p1");
  EXPECT_EQ(load.config->cloud.config_signing_keys.at(0), "/s/k.pem");
  // Adapter errors come back with the file's paths.
  auto bad = buildEffectiveConfig(local->doc, *json::parse(R"({"adapters":[{"name":"c","type":"test-type","vendor":"epic"}]})"),
                                  local->source_file, testRegistry());
  ASSERT_FALSE(bad.config);
  ASSERT_EQ(bad.issues.size(), 1u);
  EXPECT_EQ(bad.issues[0].path, "adapters[0].listen");
}

TEST(RemoteConfig, RestartOnlyChangesIgnoreLiveValues) {
  json::Value a = *json::parse(R"({"agent":{"id":"p1","log_level":"info"},"store":{"max_bytes":5},"adapters":[1]})");
  json::Value b = *json::parse(R"({"agent":{"id":"p1","log_level":"debug"},"store":{"max_bytes":6},"adapters":[2],"control":{}})");
  EXPECT_EQ(restartOnlyChanges(a, b), (std::vector<std::string>{"control", "store.max_bytes"}));
  EXPECT_TRUE(restartOnlyChanges(a, a).empty());
}

TEST(RemoteConfig, SameJsonIgnoresMemberOrderOnly) {
  EXPECT_TRUE(sameJson(*json::parse(R"({"a":1,"b":[1,2]})"), *json::parse(R"({"b":[1,2],"a":1})")));
  EXPECT_FALSE(sameJson(*json::parse(R"({"a":1,"b":[1,2]})"), *json::parse(R"({"b":[2,1],"a":1})")));
  EXPECT_FALSE(sameJson(*json::parse(R"({"a":1})"), *json::parse(R"({"a":1,"b":null})")));
  EXPECT_FALSE(sameJson(*json::parse(R"({"a":1})"), *json::parse(R"({"a":"1"})")));
}

}  // namespace
}  // namespace psa::agent
