// Builds the running field policy from a config: compiles the rules and, when a rule hashes,
// loads (or creates) the site's policy key under the state directory.
#pragma once

#include "psa/adapters/policy/field_policy.h"
#include "psa/adapters/policy/policy_sink.h"
#include "psa/agent/config.h"

namespace psa::agent {

/// Errors: Errc::invalid_input naming what is wrong (the rules, the key file).
Result<adapters::policy::FieldPolicyPtr> buildFieldPolicy(const Config& config);

/// The `policy` object of the status document: settings and what the policy changed.
json::Value policyStatus(const adapters::policy::FieldPolicy* policy,
                         const adapters::policy::PolicyTotals& totals);

/// "12 masked, 0 dropped, 3 hashed, 0 generalized" from a policyStatus() object.
std::string policyCountsText(const json::Value& policy_status);

}  // namespace psa::agent
