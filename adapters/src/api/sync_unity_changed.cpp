// unity-changed (Allscripts / Veradigm Unity MagicJson): GetServerInfo for the server's time,
// GetChangedPatients(since), then each changed patient's complete lists (and the global lists
// once per pass). Unity never signals deletions: what is no longer in a complete list is gone.
// The session token is retired when the adapter stops (pms-interfaces.md §3).
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <utility>

#include "sync_strategy.h"

namespace psa::adapters::api {
namespace {

// The ids last held per patient ("unity:held:<id>", and "unity:held:" for the global lists)
// are committed in the same transaction as that patient's records, so each vanished record
// gets exactly one deletion record (a crash before the commit re-derives the same).
using HeldIds = std::map<std::string, std::set<std::string>>;

HeldIds decodeHeld(const std::optional<std::string>& text) {
  HeldIds out;
  if (!text.has_value()) {
    return out;
  }
  auto doc = json::parse(*text);
  if (!doc || !doc->isObject()) {
    return out;
  }
  for (const auto& [coll, ids] : doc->members()) {
    if (ids.isArray()) {
      for (const auto& id : ids.items()) {
        out[coll].insert(id.asString());
      }
    }
  }
  return out;
}

std::optional<std::string> encodeHeld(const HeldIds& held) {
  json::Value doc = json::Value::object();
  bool any = false;
  for (const auto& [coll, ids] : held) {
    json::Value list = json::Value::array();
    for (const auto& id : ids) {
      list.push(json::Value::string(id));
      any = true;
    }
    if (!ids.empty()) {
      doc.set(coll, std::move(list));
    }
  }
  return any ? std::optional<std::string>(json::serialize(doc)) : std::nullopt;
}

// How long retiring the token may take at most: the transport's own 5 s time-out bounds each
// connect, read and write; this bounds the rest (the token limiter's wait, back-off).
constexpr std::chrono::seconds kRetireBound{8};

class UnityChangedStrategy final : public SyncStrategy {
 public:
  explicit UnityChangedStrategy(RestSync& sync) : sync_(sync) {}

  Status checkAuth(AuthStrategy& auth) const override {
    if (unityAppname(auth).empty()) {
      return Error(Errc::invalid_argument, "the Unity profile needs auth.type \"unity\"");
    }
    return {};
  }

  Status runOnce() override {
    VendorPageSpec info_spec;
    info_spec.id_field = "ServerTime";
    auto info = magic("GetServerInfo", "", {}, info_spec);
    if (!info) {
      return info.error();
    }
    if (info->second.rows.items.empty()) {
      return Error(Errc::invalid_input, "GetServerInfo returned no row");
    }
    const std::string server_time = info->second.rows.items[0].id;
    auto since = sync_.watermark("since:patients");
    if (!since) {
      return since.error();
    }
    VendorPageSpec changed_spec;
    changed_spec.id_field = "patientid";
    auto changed = magic("GetChangedPatients", "", {{"Parameter1", since->value_or("1/1/1900")}},
                         changed_spec);
    if (!changed) {
      return changed.error();
    }
    uint64_t records = 0;
    for (const auto& p : changed->second.rows.items) {
      if (sync_.stop().stopped()) {
        return Error(Errc::closed, "stopped");
      }
      auto n = syncPatient(p.id, server_time);
      if (!n) {
        return std::move(n).error();
      }
      records += *n;
    }
    auto held = sync_.watermark("unity:held:");
    if (!held) {
      return held.error();
    }
    HeldIds now;
    store::AppendBatch global;
    for (const auto& c : sync_.settings().collections) {
      if (!c.global) {
        continue;
      }
      auto rows = magic(c.action, "", c.params, sync_.specFor(c));
      if (!rows) {
        return rows.error();
      }
      for (const auto& item : rows->second.rows.items) {
        global.records.push_back(sync_.recordFor(c, rows->first, item));
        now[c.name].insert(item.id);
      }
    }
    addDeletions(global, decodeHeld(*held), now, "", server_time);
    records += global.records.size();
    global.watermarks.push_back({sync_.scope(), "unity:held:", encodeHeld(now)});
    global.watermarks.push_back({sync_.scope(), "since:patients", server_time});
    auto committed = sync_.commit(std::move(global));
    if (!committed) {
      return std::move(committed).error();
    }
    sync_.logger().info("sync_done", {{"changed_patients",
                                       static_cast<uint64_t>(changed->second.rows.items.size())},
                                      {"records", records}});
    return {};
  }

  // The data transport is cancelled by now, so this uses a fresh one with a short timeout, one
  // attempt, and the token limiter; a stop signal that stops by itself bounds the whole call.
  void shutdown() override {
    const ClientSet& clients = sync_.clients();
    if (!clients.auth) {
      return;
    }
    const std::string token = unityCachedToken(*clients.auth);
    if (token.empty()) {
      return;
    }
    TransportOptions opts = clients.transport_options;
    opts.timeout = std::chrono::seconds(5);
    auto transport = makeHttpTransport(opts);
    if (!transport) {
      return;
    }
    retire(*transport, token);
  }

 private:
  Result<std::pair<std::string, UnityAnswer>> magic(const std::string& action,
                                                    const std::string& patient,
                                                    const Params& params,
                                                    const VendorPageSpec& spec) {
    const std::string url = sync_.settings().base + "/MagicJson";
    const std::string app_user = sync_.settings().app_user;
    AuthStrategy* auth = sync_.clients().auth.get();
    ApiClient::Call call;
    call.what = action;
    call.build = [=]() -> Result<HttpRequest> {
      auto token = unityToken(*auth);
      if (!token) {
        return std::move(token).error();
      }
      json::Value body = json::Value::object();
      static const char* kKeys[] = {"Action",     "AppUserID",  "Appname",    "PatientID",
                                    "Token",      "Parameter1", "Parameter2", "Parameter3",
                                    "Parameter4", "Parameter5", "Parameter6", "Data"};
      for (const char* k : kKeys) {
        body.set(k, json::Value::string(""));
      }
      body.set("Action", json::Value::string(action));
      body.set("AppUserID", json::Value::string(app_user));
      body.set("Appname", json::Value::string(unityAppname(*auth)));
      body.set("PatientID", json::Value::string(patient));
      body.set("Token", json::Value::string(*token));
      for (const auto& [k, v] : params) {
        body.set(k, json::Value::string(v));
      }
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
      r.body = json::serialize(body);
      return r;
    };
    auto answer = std::make_shared<UnityAnswer>();
    call.validate = [answer, action, spec](const HttpResponse& r) -> Status {
      auto a = parseUnityAnswer(r.body, action, spec);
      if (!a) {
        return a.error();
      }
      *answer = std::move(a).value();
      return {};
    };
    call.inband = [action, spec](const HttpResponse& r) -> std::optional<Verdict> {
      auto a = parseUnityAnswer(r.body, action, spec);
      if (!a || !a->error) {
        return std::nullopt;
      }
      std::string low = a->message;
      std::transform(low.begin(), low.end(), low.begin(), ::tolower);
      if (low.find("token") != std::string::npos || low.find("inactivity") != std::string::npos) {
        return Verdict{Verdict::Kind::auth_expired, a->message};
      }
      if (low.find("too many requests") != std::string::npos) {
        return Verdict{Verdict::Kind::throttled, a->message};
      }
      return Verdict{Verdict::Kind::fail, a->message};
    };
    auto resp = sync_.api().call(call);
    if (!resp) {
      return std::move(resp).error();
    }
    return std::make_pair(std::move(resp->body), std::move(*answer));
  }

  // One changed patient: every per-patient list, the deletions against what was held, and the
  // new held ids, in one transaction. Returns the records committed.
  Result<uint64_t> syncPatient(const std::string& patient, const std::string& server_time) {
    const std::string held_key = "unity:held:" + patient;
    auto held = sync_.watermark(held_key);
    if (!held) {
      return held.error();
    }
    HeldIds now;
    store::AppendBatch batch;
    for (const auto& c : sync_.settings().collections) {
      if (c.global) {
        continue;
      }
      auto rows = magic(c.action, patient, c.params, sync_.specFor(c));
      if (!rows) {
        return Error(rows.error().code, rows.error().message + "; since unchanged");
      }
      for (const auto& item : rows->second.rows.items) {
        batch.records.push_back(sync_.recordFor(c, rows->first, item));
        now[c.name].insert(item.id);
      }
      if (c.name == "patients" && rows->second.rows.items.empty()) {
        now.clear();  // deleted patient: its whole chart is gone
        break;
      }
    }
    addDeletions(batch, decodeHeld(*held), now, patient, server_time);
    const uint64_t records = batch.records.size();
    batch.watermarks.push_back({sync_.scope(), held_key, encodeHeld(now)});
    auto committed = sync_.commit(std::move(batch));
    if (!committed) {
      return std::move(committed).error();
    }
    return records;
  }

  void addDeletions(store::AppendBatch& batch, const HeldIds& before, const HeldIds& now,
                    const std::string& patient, const std::string& server_time) {
    for (const auto& c : sync_.settings().collections) {
      auto b = before.find(c.name);
      if (b == before.end()) {
        continue;
      }
      auto n = now.find(c.name);
      for (const auto& id : b->second) {
        if (n == now.end() || n->second.count(id) == 0) {
          batch.records.push_back(sync_.deletionRecord(c, id, patient, server_time));
        }
      }
    }
  }

  void retire(HttpTransportPtr transport, const std::string& token) {
    const ClientSet& clients = sync_.clients();
    auto stop = std::make_shared<StopSignal>();
    stop->stopAfter(kRetireBound);
    RetryPolicy once;
    once.max_attempts = 1;
    once.max_throttled = 0;
    ApiClient client(std::move(transport), clients.token_limiter, once, sync_.clock(), stop,
                     sync_.logger());
    ApiClient::Call call;
    call.what = "RetireSecurityToken";
    call.authenticate = false;
    const std::string url = sync_.settings().base + "/RetireSecurityToken";
    const std::string app = unityAppname(*clients.auth);
    call.build = [url, token, app]() -> Result<HttpRequest> {
      json::Value body = json::Value::object();
      body.set("Token", json::Value::string(token));
      body.set("Appname", json::Value::string(app));
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "application/json"}};
      r.body = json::serialize(body);
      return r;
    };
    auto resp = client.call(call);
    const bool retired = resp && resp->body.find("error:") == std::string::npos;
    sync_.logger().write(retired ? log::Level::info : log::Level::warn, "token_retired",
                         {{"ok", retired ? "yes" : "no"}});
  }

  RestSync& sync_;
};

}  // namespace

SyncStrategyPtr makeUnityChangedStrategy(RestSync& sync) {
  return std::make_unique<UnityChangedStrategy>(sync);
}

}  // namespace psa::adapters::api
