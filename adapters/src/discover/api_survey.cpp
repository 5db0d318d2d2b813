// The probing half of `discover api`: the rest-poll engine's RestSync (page URLs, list specs,
// parsers) over the clients buildClients() makes for the adapter, with a host that stores
// nothing. Kareo SOAP and Unity MagicJson collections are only authenticated, not listed: their
// first "page" is a whole sync operation (GetAllPatients batch, GetChangedPatients), which the
// strategies own.
#include "psa/adapters/discover/api_survey.h"

#include <cctype>

#include "api/api_common.h"
#include "api/rest_sync.h"
#include "api/sync_strategy.h"
#include "api/url.h"
#include "psa/store/clock.h"

namespace psa::adapters::api {
const json::Value* restProfile(const std::string& name);
std::vector<std::string> restProfileNames();
}  // namespace psa::adapters::api

namespace psa::adapters::discover {
namespace {

namespace api = psa::adapters::api;

// A SyncHost that keeps nothing: discover reads, it never stores or moves a watermark.
class NullHost final : public api::SyncHost {
 public:
  Result<size_t> commit(store::AppendBatch) override { return size_t{0}; }
  Result<std::optional<std::string>> watermark(const std::string&) override {
    return std::optional<std::string>();
  }
  Result<std::map<std::string, std::string>> watermarks() override {
    return std::map<std::string, std::string>();
  }
  store::Record makeRecord(store::Kind, std::string_view, std::string,
                           const std::string&) const override {
    return {};
  }
  void addCount(const std::string&, uint64_t) override {}
  void countCollection(const std::string&) override {}
};

bool rateHeader(const std::string& name) {
  std::string n;
  for (char c : name) {
    n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return n.find("ratelimit") != std::string::npos || n.find("rate-limit") != std::string::npos ||
         n == "retry-after" || n.find("quota") != std::string::npos;
}

// "HTTP 404" from a call's error ("list x: HTTP 404: code=..."), else the error's first words.
std::string shortReason(const std::string& message) {
  if (auto at = message.find("HTTP "); at != std::string::npos) {
    return message.substr(at, 8);
  }
  return message.substr(0, 120);
}

// The first page's query of a since-list collection on a first run (no watermark).
api::Params firstParams(const api::RestSettings& s, const api::Collection& c) {
  api::Params p = c.params;
  const std::string initial = !c.initial_since.empty() ? c.initial_since : s.since_initial;
  if (s.strategy == "since-list" && !s.since_param.empty() && !initial.empty()) {
    p.emplace_back(s.since_param, api::replaceAll(s.since_template, "{}", initial));
  }
  return p;
}

std::vector<api::LimitRule> rollingLimits(const json::Value* list) {
  auto rules = api::parseLimitRules(list);
  for (auto& r : rules) {
    r.fixed = false;  // a fixed window's budget file belongs to the running agent
  }
  return rules;
}

}  // namespace

Result<ApiSurvey> surveyApi(const ApiSurveyOptions& o) {
  const json::Value* profile = api::restProfile(o.vendor);
  if (profile == nullptr) {
    std::string known;
    for (const auto& n : api::restProfileNames()) {
      known += (known.empty() ? "" : ", ") + n;
    }
    return Error(Errc::invalid_argument,
                 "no rest-poll profile for vendor \"" + o.vendor + "\" (known: " + known + ")");
  }
  json::Value cfg = json::Value::object();
  cfg.set("name", json::Value::string(o.name));
  cfg.set("type", json::Value::string("rest-poll"));
  cfg.set("vendor", json::Value::string(o.vendor));
  cfg.set("base_url", json::Value::string(api::trimSlash(o.base_url)));
  if (!o.ca_file.empty()) {
    cfg.set("ca_file", json::Value::string(o.ca_file));
  }
  if (o.auth.isObject()) {
    cfg.set("auth", o.auth);
  }
  ApiSurvey s;
  const api::RestSettings settings = api::RestSettings::parse(cfg, *profile);
  s.strategy = settings.strategy;
  s.profile_page_size = settings.page_size;
  for (const auto& r : api::parseLimitRules(profile->find("rate_limits"))) {
    s.documented_limits.push_back(std::to_string(r.limit) + " requests per " +
                                  std::to_string(r.window.count() / 1000) + " s" +
                                  (r.fixed ? " (fixed window)" : ""));
  }
  s.auth_type = o.auth.isObject() ? o.auth.getString("type", "none") : "none";
  api::ClientParams p;
  p.adapter = o.name;
  p.vendor = o.vendor;
  p.api_base = settings.base;
  if (const api::StrategyInfo* info = api::findStrategy(settings.strategy);
      info != nullptr && !info->token_path.empty()) {
    p.token_url_fallback = settings.base + std::string(info->token_path);
  }
  p.api_limits = rollingLimits(profile->find("rate_limits"));
  p.token_limits = rollingLimits(profile->find("token_rate_limits"));
  p.state_dir = o.base_dir;
  p.clock = Clock::system();
  p.stop = std::make_shared<api::StopSignal>();
  auto set = api::buildClients(cfg, p);
  if (!set) {
    if (set.error().is(Errc::io)) {
      return std::move(set).error();
    }
    s.token = "unusable";
    s.token_error = set.error().message;
    return s;
  }
  const api::ClientSet clients = std::move(set).value();
  s.auth_describe = clients.auth->describe();
  bool can_list = true;
  if (s.auth_type == "oauth2-refresh") {
    // The refresh token rotates on use and discover has no store to keep the new one in:
    // spending it here would lock the agent out.
    s.token = "not exercised";
    can_list = false;
  } else if (s.auth_type == "none" || s.auth_type == "kareo") {
    s.token = "per request";
  } else {
    api::HttpRequest probe;
    if (auto st = clients.auth->apply(probe); !st) {
      s.token = "refused";
      s.token_error = st.error().message;
      can_list = false;
    } else {
      s.token = "issued";
    }
  }
  NullHost host;
  api::RestSync sync(settings, host, clients, *p.stop, p.clock, log::Logger("rest-poll", o.name));
  const bool lists = settings.strategy == "since-list" || settings.strategy == "athena-feeds";
  std::map<std::string, std::string> first_id;  // collection -> its first record's id
  for (const auto& c : settings.collections) {
    ApiCollectionProbe probe;
    probe.name = c.name;
    probe.kind = c.kind_name;
    probe.per = c.per;
    std::string path = c.path;
    if (!lists) {
      probe.note = "not probed: " + settings.strategy + " lists through whole sync operations";
    } else if (!can_list) {
      probe.note = "not probed: no token";
    } else if (!c.per.empty() && first_id.count(c.per) == 0) {
      probe.note = "not probed: no " + c.per + " record to read it for";
    } else {
      if (!c.per.empty()) {
        path = api::replaceAll(path, "{id}", api::percentEncode(first_id[c.per]));
      }
      auto page = std::make_shared<api::VendorPage>();
      auto resp = sync.getList(sync.pageUrl(path, firstParams(settings, c), 0, &c),
                               "list " + c.name, sync.specFor(c), page);
      if (!resp) {
        probe.note = shortReason(resp.error().message);
      } else {
        probe.answered = true;
        probe.page_items = page->items.size();
        probe.next_page = !page->next.empty();
        probe.total = page->total;
        if (!page->items.empty()) {
          first_id[c.name] = page->items[0].id;  // kept in memory for the fan-out, never printed
        }
        for (const auto& [name, value] : resp->headers) {
          if (rateHeader(name)) {
            std::string v;
            for (char ch : value.substr(0, 60)) {
              v += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
            }
            s.rate_headers[name] = v;
          }
        }
      }
    }
    s.collections.push_back(std::move(probe));
  }
  for (const auto* client : {clients.api.get(), clients.token.get()}) {
    s.requests += client->counters().requests;
    s.throttled += client->counters().throttled;
  }
  return s;
}

}  // namespace psa::adapters::discover
