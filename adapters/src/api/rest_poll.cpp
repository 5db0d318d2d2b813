// rest-poll: incremental, exactly-once sync from a vendor-specific API driven by a vendor
// profile (rest_profiles.cpp, or `profile_file`). This file is the adapter: it reads the
// profile, picks the profile's SyncStrategy once (sync_strategy.h: since-list, athena-feeds,
// kareo-soap, unity-changed), builds the HTTP clients on start and runs the strategy's passes on
// the Poller's worker thread. The shared listing, paging and watermark helpers are RestSync
// (rest_sync.h); `check` is checkRestPoll below.
#include <map>
#include <mutex>

#include "api_common.h"
#include "fhir_poll.h"
#include "poller.h"
#include "psa/store/clock.h"
#include "rest_sync.h"
#include "state_file.h"
#include "sync_strategy.h"
#include "url.h"

namespace psa::adapters::api {

const json::Value* restProfile(const std::string& name);
std::vector<std::string> restProfileNames();

namespace {

std::chrono::milliseconds intervalOf(const json::Value& cfg, const json::Value& profile) {
  const json::Value* interval = cfg.find("interval_s");
  const double s = interval != nullptr && interval->isNumber()
                       ? interval->asNumber()
                       : static_cast<double>(profile.getInt("interval_s", 300));
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

class RestPollSource final : public Poller, private SyncHost {
 public:
  RestPollSource(const json::Value& cfg, const json::Value& profile, SourceContext& ctx)
      : Poller(cfg.getString("name"), "rest-poll", cfg.getString("vendor"), ctx,
               intervalOf(cfg, profile)),
        config_(cfg),
        profile_(profile),
        sync_(RestSettings::parse(cfg, profile), *this, clients_, *stop_, clock_, logger_),
        info_(findStrategy(sync_.settings().strategy)),
        strategy_(info_ != nullptr ? info_->make(sync_) : nullptr) {}

 protected:
  Status prepare() override {
    const RestSettings& s = sync_.settings();
    if (s.collections.empty()) {
      return Error(Errc::invalid_argument, "no collections to sync (check `collections`)");
    }
    ClientParams p = clientParams(s.base);
    if (info_ != nullptr && !info_->token_path.empty()) {
      p.token_url_fallback = s.base + std::string(info_->token_path);
    }
    const json::Value* limits = config_.find("rate_limits");
    p.api_limits = parseLimitRules(limits != nullptr ? limits : profile_.find("rate_limits"));
    const json::Value* tlimits = config_.find("token_rate_limits");
    p.token_limits =
        parseLimitRules(tlimits != nullptr ? tlimits : profile_.find("token_rate_limits"));
    auto set = buildClients(config_, p);
    if (!set) {
      return std::move(set).error();
    }
    clients_ = std::move(set).value();
    if (strategy_) {
      PSA_TRY(strategy_->checkAuth(*clients_.auth));
    }
    logConfigured(s.base, "strategy", s.strategy, "collections", s.collections.size(), clients_);
    return {};
  }

  void interrupt() override { clients_.cancelAll(); }

  void fillStatus(SourceStatus& s) const override {
    addApiStatus(s, "strategy", sync_.settings().strategy, "collections", per_collection_,
                 count_mu_, clients_);
  }

  Status runOnce() override {
    sync_.beginRun();
    if (!strategy_) {
      return Error(Errc::invalid_argument,
                   "unknown profile strategy \"" + sync_.settings().strategy + "\"");
    }
    return strategy_->runOnce();
  }

  void shutdown() override {
    if (strategy_) {
      strategy_->shutdown();
    }
  }

 private:
  // SyncHost: the Poller's own commit, watermarks, records and counters.
  Result<size_t> commit(store::AppendBatch batch) override {
    return Poller::commit(std::move(batch));
  }
  Result<std::optional<std::string>> watermark(const std::string& key) override {
    return Poller::watermark(key);
  }
  Result<std::map<std::string, std::string>> watermarks() override {
    return sink_.watermarks(name_);
  }
  store::Record makeRecord(store::Kind kind, std::string_view format, std::string payload,
                           const std::string& identity) const override {
    return Poller::makeRecord(kind, format, std::move(payload), identity);
  }
  void addCount(const std::string& counter, uint64_t n) override { Poller::addCount(counter, n); }
  void countCollection(const std::string& collection) override {
    std::lock_guard lock(count_mu_);
    ++per_collection_[collection];
  }

  json::Value config_;
  json::Value profile_;
  ClientSet clients_;  // built by prepare(); RestSync reads it from the first pass on
  RestSync sync_;
  const StrategyInfo* info_;  // nullptr: unknown strategy (every pass fails saying so)
  SyncStrategyPtr strategy_;
  mutable std::mutex count_mu_;
  std::map<std::string, uint64_t> per_collection_;
};

Result<json::Value> loadProfile(const json::Value& cfg, const std::filesystem::path& state_dir) {
  if (const std::string file = cfg.getString("profile_file"); !file.empty()) {
    auto text = readStateFile(resolvePath(state_dir, file));
    if (!text) {
      return Error(text.error().code, "profile_file: " + text.error().message);
    }
    if (!text->has_value()) {
      return Error(Errc::not_found, "profile_file " + file + " does not exist");
    }
    auto doc = json::parse(**text);
    if (!doc || !doc->isObject()) {
      return Error(Errc::invalid_input, "profile_file " + file + ": not a JSON object" +
                                            (doc ? "" : " (" + doc.error().message + ")"));
    }
    return std::move(doc).value();
  }
  const std::string name = cfg.getString("profile", cfg.getString("vendor"));
  const json::Value* p = restProfile(name);
  if (p == nullptr) {
    std::string known;
    for (const auto& n : restProfileNames()) {
      known += (known.empty() ? "" : ", ") + n;
    }
    return Error(Errc::invalid_argument,
                 "no rest-poll profile \"" + name + "\" (known: " + known + ")");
  }
  return *p;
}

}  // namespace

Result<SourcePtr> makeRestPollSource(const json::Value& config, SourceContext& ctx) {
  auto profile = loadProfile(config, ctx.state_dir);
  if (!profile) {
    return std::move(profile).error();
  }
  return SourcePtr(std::make_shared<RestPollSource>(config, *profile, ctx));
}

std::vector<CheckResult> checkRestPoll(const json::Value& config,
                                       const std::filesystem::path& state_dir) {
  const std::string label = "adapter " + config.getString("name");
  std::vector<CheckResult> out;
  auto profile = loadProfile(config, state_dir);
  if (!profile) {
    out.push_back({CheckResult::Level::fail, label + " profile", profile.error().message});
    return out;
  }
  const std::string strategy = profile->getString("strategy");
  std::string token_url_fallback;
  if (const StrategyInfo* info = findStrategy(strategy);
      info != nullptr && !info->token_path.empty()) {
    token_url_fallback = trimSlash(config.getString("base_url")) + std::string(info->token_path);
  }
  auto set = buildCheckClients(config, state_dir, std::move(token_url_fallback));
  if (!set) {
    out.push_back({CheckResult::Level::fail, label + " config", set.error().message});
    return out;
  }
  out.push_back({CheckResult::Level::ok, label + " profile",
                 "profile " + config.getString("profile", config.getString("vendor")) + " (" +
                     strategy + ")"});
  const json::Value* auth = config.find("auth");
  const std::string type = auth != nullptr ? auth->getString("type", "none") : "none";
  if (type == "oauth2-refresh") {
    out.push_back({CheckResult::Level::warn, label + " auth",
                   "refresh token not exercised (it rotates on use; the running agent uses it)"});
  } else if (type == "kareo" || type == "none") {
    out.push_back({CheckResult::Level::ok, label + " auth", set->auth->describe()});
  } else {
    HttpRequest probe;
    if (auto st = set->auth->apply(probe); !st) {
      out.push_back({CheckResult::Level::fail, label + " auth", st.error().message});
    } else {
      out.push_back({CheckResult::Level::ok, label + " auth",
                     "token issued (" + set->auth->describe() + ")"});
    }
  }
  return out;
}

}  // namespace psa::adapters::api
