#include "field_policy_setup.h"

#include "psa/adapters/policy/policy_key.h"

namespace psa::agent {

Result<adapters::policy::FieldPolicyPtr> buildFieldPolicy(const Config& config) {
  std::string key;
  if (config.policy.hashes()) {
    auto loaded = adapters::policy::loadOrCreatePolicyKey(config.state_dir /
                                                          adapters::policy::kPolicyKeyFile);
    if (!loaded) {
      return Error(Errc::invalid_input,
                   "policy: the hash action needs the policy key: " + loaded.error().message);
    }
    key = std::move(loaded).value();
  }
  auto built = adapters::policy::FieldPolicy::build(config.policy, std::move(key));
  if (!built) {
    return Error(Errc::invalid_input, "policy: " + built.error().message);
  }
  return std::move(built).value();
}

json::Value policyStatus(const adapters::policy::FieldPolicy* policy,
                         const adapters::policy::PolicyTotals& totals) {
  json::Value p = json::Value::object();
  if (policy != nullptr) {
    p.set("default_ssn_mask", json::Value::boolean(policy->settings().default_ssn_mask));
    p.set("rules", json::Value::integer(static_cast<int64_t>(policy->settings().rules.size())));
  }
  p.set("changed", totals.all.toJson());
  json::Value by = json::Value::object();
  for (const auto& [source, counts] : totals.by_source) {
    by.set(source, counts.toJson());
  }
  p.set("by_adapter", std::move(by));
  return p;
}

std::string policyCountsText(const json::Value& policy_status) {
  const json::Value* c = policy_status.find("changed");
  std::string out;
  for (const char* k : {"masked", "dropped", "hashed", "generalized"}) {
    out += (out.empty() ? "" : ", ") + std::to_string(c != nullptr ? c->getInt(k) : 0) + " " + k;
  }
  return out;
}

}  // namespace psa::agent
