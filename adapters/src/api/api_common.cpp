#include "api_common.h"

#include "psa/store/clock.h"
#include "psa/store/os/utf8_path.h"
#include "url.h"

namespace psa::adapters::api {

std::vector<LimitRule> parseLimitRules(const json::Value* list) {
  std::vector<LimitRule> out;
  if (list == nullptr || !list->isArray()) {
    return out;
  }
  for (const auto& item : list->items()) {
    if (!item.isObject()) {
      continue;
    }
    LimitRule r;
    r.limit = static_cast<uint64_t>(std::max<int64_t>(0, item.getInt("requests", 0)));
    const json::Value* per = item.find("per_s");
    const double secs = per != nullptr && per->isNumber() ? per->asNumber() : 0;
    r.window = std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
    r.fixed = item.getBool("fixed", false);
    r.name = item.getString("name", r.fixed ? "w" + std::to_string(static_cast<int64_t>(secs))
                                            : std::string());
    if (r.limit > 0 && r.window.count() > 0) {
      out.push_back(r);
    }
  }
  return out;
}

std::filesystem::path resolvePath(const std::filesystem::path& state_dir, const std::string& p) {
  return os::resolveUtf8Path(state_dir, p);
}

void ClientSet::cancelAll() const {
  if (transport) {
    transport->cancelAll();
  }
}

void ClientSet::addCounters(std::map<std::string, uint64_t>& counters) const {
  if (!api) {
    return;
  }
  const auto c = api->counters();
  counters["http_requests"] = c.requests;
  counters["http_retries"] = c.retries;
  counters["throttled"] = c.throttled;
  counters["reauth"] = c.reauth;
  counters["bad_pages"] = c.bad_bodies;
}

Result<ClientSet> buildClients(const json::Value& config, const ClientParams& p) {
  TransportOptions topts;
  if (const std::string ca = config.getString("ca_file"); !ca.empty()) {
    topts.ca_file = resolvePath(p.state_dir, ca);
  }
  topts.verify_tls = config.getBool("tls_verify", true);
  topts.timeout = std::chrono::seconds(std::max<int64_t>(1, config.getInt("timeout_s", 30)));
  auto transport = makeHttpTransport(topts);
  if (!transport) {
    return Error(transport.error().code, "ca_file: " + transport.error().message);
  }
  ClientSet set;
  set.transport = *transport;
  set.transport_options = topts;
  const std::filesystem::path budget_dir = p.state_dir / "api";
  auto api_limiter =
      std::make_shared<RequestLimiter>(p.api_limits, budget_dir, p.adapter, p.clock);
  auto token_limiter =
      std::make_shared<RequestLimiter>(p.token_limits, budget_dir, p.adapter + ".token", p.clock);
  PSA_TRY(api_limiter->load());
  PSA_TRY(token_limiter->load());
  set.token_limiter = token_limiter;
  RetryPolicy retry = p.retry;
  retry.max_attempts = static_cast<int>(std::max<int64_t>(1, config.getInt("max_attempts", retry.max_attempts)));
  log::Logger logger(config.getString("type"), p.adapter);
  set.api = std::make_shared<ApiClient>(set.transport, api_limiter, retry, p.clock, p.stop, logger);
  set.token = std::make_shared<ApiClient>(set.transport, token_limiter, retry, p.clock, p.stop, logger);
  AuthDeps deps;
  deps.token_client = set.token;
  deps.clock = p.clock;
  deps.state_dir = p.state_dir;
  deps.vault = p.vault;
  static const json::Value kNoAuth = *json::parse(R"({"type":"none"})");
  const json::Value* auth = config.find("auth");
  auto strategy = makeAuthStrategy(auth != nullptr && auth->isObject() ? *auth : kNoAuth, deps,
                                   p.token_url_fallback, p.api_base);
  if (!strategy) {
    return std::move(strategy).error();
  }
  set.auth = *strategy;
  set.api->setAuth(set.auth);
  return set;
}

Result<ClientSet> buildCheckClients(const json::Value& config,
                                    const std::filesystem::path& state_dir,
                                    std::string token_url_fallback) {
  ClientParams p;
  p.adapter = config.getString("name");
  p.vendor = config.getString("vendor");
  p.api_base = trimSlash(config.getString("base_url"));
  p.token_url_fallback = std::move(token_url_fallback);
  p.state_dir = state_dir;
  p.clock = Clock::system();
  p.stop = std::make_shared<StopSignal>();
  p.retry.max_attempts = 2;
  p.retry.max_throttled = 2;
  json::Value cfg = config;
  if (!cfg.find("timeout_s")) {
    cfg.set("timeout_s", json::Value::integer(10));
  }
  return buildClients(cfg, p);
}

}  // namespace psa::adapters::api
