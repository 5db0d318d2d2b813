// The `policy` section: defaults, line-precise errors, and what remote config may do with it.
#include <gtest/gtest.h>

#include "psa/agent/config.h"
#include "psa/agent/remote_config.h"

namespace psa::agent {
namespace {

std::vector<std::string> problems(const ConfigLoad& load) {
  std::vector<std::string> out;
  for (const auto& i : load.issues) {
    out.push_back(i.format());
  }
  return out;
}

ConfigLoad load(const std::string& extra) {
  adapters::SourceRegistry none;
  return parseConfig(R"({"agent":{"id":"p1","tenant":"t1","state_dir":"/s"})" + extra + "}",
                     "f.json", none);
}

TEST(ConfigPolicy, AbsentSectionMeansTheDefaultSsnMask) {
  auto l = load("");
  ASSERT_TRUE(l.config) << ::testing::PrintToString(problems(l));
  EXPECT_TRUE(l.config->policy.default_ssn_mask);
  EXPECT_TRUE(l.config->policy.rules.empty());
}

TEST(ConfigPolicy, RulesAreRead) {
  auto l = load(R"(,"policy":{"rules":[{"kind":"patient","format":"hl7v2","field":"PID-11",
    "action":"drop"},{"format":"csv+json","field":"SSN","action":"mask","keep":2}]})");
  ASSERT_TRUE(l.config) << ::testing::PrintToString(problems(l));
  const auto& rules = l.config->policy.rules;
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].kind, "patient");
  EXPECT_EQ(rules[0].action, adapters::policy::Action::drop);
  EXPECT_EQ(rules[1].kind, "*");
  EXPECT_EQ(rules[1].keep, 2);
}

TEST(ConfigPolicy, ErrorsNameThePathAndLine) {
  auto l = load(R"(,
  "policy": {"default_ssn_mask": "no",
    "rules": [{"format": "hl7v2", "field": "PID-999999", "action": "mask"},
              {"kind": "patients", "field": "PID-19", "action": "mask", "keep": 100}]}
)");
  ASSERT_FALSE(l.config);
  const auto p = problems(l);
  ASSERT_EQ(p.size(), 4u) << ::testing::PrintToString(p);
  EXPECT_NE(p[0].find("line 2"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("policy.default_ssn_mask"), std::string::npos) << p[0];
  EXPECT_NE(p[1].find("line 3"), std::string::npos) << p[1];
  EXPECT_NE(p[1].find("policy.rules[0].field"), std::string::npos) << p[1];
  EXPECT_NE(p[2].find("policy.rules[1].kind"), std::string::npos) << p[2];
  EXPECT_NE(p[3].find("policy.rules[1].keep"), std::string::npos) << p[3];
}

TEST(ConfigPolicy, TheCloudMaySetThePolicyLive) {
  auto running = load("");
  ASSERT_TRUE(running.config);
  auto remote = json::parse(
      R"({"policy":{"rules":[{"format":"hl7v2","field":"PID-7","action":"generalize"}],"default_ssn_mask":false}})");
  ASSERT_TRUE(remote);
  const OverlayCheck check = checkOverlay(*remote, running.config->doc);
  EXPECT_TRUE(check.schema.empty());
  EXPECT_TRUE(check.forbidden.empty());
  EXPECT_TRUE(check.pending_restart.empty());
  adapters::SourceRegistry none;
  auto merged = buildEffectiveConfig(running.config->doc, check.overlay, "f.json", none);
  ASSERT_TRUE(merged.config);
  EXPECT_FALSE(merged.config->policy.default_ssn_mask);
  ASSERT_EQ(merged.config->policy.rules.size(), 1u);
  // A local edit of the policy applies with a reload, no restart needed.
  EXPECT_TRUE(restartOnlyChanges(running.config->doc, merged.config->doc).empty());
}

TEST(ConfigPolicy, ABadRemoteRuleIsASchemaError) {
  auto running = load("");
  ASSERT_TRUE(running.config);
  auto remote = json::parse(R"({"policy":{"rules":[{"field":"PID-19","action":"erase"}]}})");
  ASSERT_TRUE(remote);
  const OverlayCheck check = checkOverlay(*remote, running.config->doc);
  ASSERT_EQ(check.schema.size(), 1u);
  EXPECT_EQ(check.schema[0].path, "config.policy.rules[0].action");
}

}  // namespace
}  // namespace psa::agent
