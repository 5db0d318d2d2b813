#include "remote_bundle.h"

#include "psa/store/clock.h"
#include "psa/store/log.h"

#ifndef PSA_VERSION
#define PSA_VERSION "0.0.0"
#endif
#ifndef PSA_GIT_SHA
#define PSA_GIT_SHA "unknown"
#endif

namespace psa::agent {

Result<SupportBundle> buildSupportBundle(const AgentContext& ctx) {
  const ConfigPtr cfg = ctx.currentConfig ? ctx.currentConfig() : ctx.config;
  const int64_t now = Clock::system()->nowMs();
  json::Value b = json::Value::object();
  b.set("format", json::Value::string("pms-agent-bundle/1"));
  b.set("created_at", json::Value::string(formatRfc3339(now)));
  b.set("version", json::Value::string(PSA_VERSION));
  b.set("build", json::Value::string(PSA_GIT_SHA));
  if (cfg && ctx.registry != nullptr) {
    b.set("config", maskedConfig(*cfg, *ctx.registry));
  }
  b.set("status", buildStatus(ctx));
  json::Value logs = json::Value::array();
  for (auto& line : log::recentLines(2000)) {
    logs.push(json::Value::string(std::move(line)));
  }
  b.set("recent_logs", std::move(logs));
  std::string stamp = formatRfc3339(now);
  std::string compact;
  for (char c : stamp.substr(0, 19)) {
    if (c != '-' && c != ':') {
      compact.push_back(c);
    }
  }
  SupportBundle out;
  out.file_name = "pms-agent-bundle-" + (cfg ? cfg->agent_id : std::string("agent")) + "-" + compact + "Z.json";
  out.content_type = "application/json";
  out.bytes = json::serialize(b, true) + "\n";
  return out;
}

}  // namespace psa::agent
