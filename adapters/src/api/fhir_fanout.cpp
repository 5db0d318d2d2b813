#include "fhir_fanout.h"

#include <algorithm>
#include <map>

#include "psa/store/clock.h"
#include "psa/store/json.h"

namespace psa::adapters::api {

std::string minusOverlap(const std::string& wm, int64_t overlap_s) {
  int64_t ms = 0;
  if (overlap_s <= 0 || !parseRfc3339(wm, ms)) {
    return wm;
  }
  return formatRfc3339(ms - overlap_s * 1000);
}

namespace {

constexpr const char* kRunKey = "fanout:run";
// Per type, so a type added to `resources` later gets its full history.
constexpr const char* kSincePrefix = "fanout:since:";

// Where a pass stands: patients with an id below `patient` are done; of `patient`, the types
// before `type` (a name, so an edited `resources` list cannot shift it; "" = all done) are
// done, and of that type the pages before `next` ("" = its first).
struct FanoutCursor {
  std::string run_wm;  // the next pass's lower bound
  std::string patient;
  std::string type;
  std::string next;
  bool valid = false;

  std::string encode() const {
    json::Value v = json::Value::object();
    v.set("run_wm", json::Value::string(run_wm));
    v.set("patient", json::Value::string(patient));
    v.set("type", json::Value::string(type));
    v.set("next", json::Value::string(next));
    return json::serialize(v);
  }
  static FanoutCursor decode(const std::string& text) {
    FanoutCursor c;
    auto doc = json::parse(text);
    if (doc && doc->isObject()) {
      c.run_wm = doc->getString("run_wm");
      c.patient = doc->getString("patient");
      c.type = doc->getString("type");
      c.next = doc->getString("next");
      c.valid = true;
    }
    return c;
  }
};

class Fanout {
 public:
  Fanout(const FanoutOptions& opt, const FanoutHooks& hooks, const log::Logger& logger)
      : opt_(opt), hooks_(hooks), logger_(logger) {}

  Status run() {
    for (const auto& type : opt_.resources) {
      auto since = hooks_.watermark(std::string(kSincePrefix) + type);
      if (!since) {
        return std::move(since).error();
      }
      since_[type] = since->value_or("");
    }
    auto saved = hooks_.watermark(kRunKey);
    if (!saved) {
      return std::move(saved).error();
    }
    FanoutCursor cur;
    if (saved->has_value()) {
      cur = FanoutCursor::decode(**saved);
    }
    const bool resumed = cur.valid;
    std::string list_wm;
    auto ids = listPatients(list_wm);
    if (!ids) {
      return Error(ids.error().code, ids.error().message + "; watermark unchanged");
    }
    if (!resumed) {
      cur.run_wm = list_wm;
    }
    if (resumed) {
      logger_.info("fanout_resume",
                   {{"patients", static_cast<uint64_t>(ids->size())},
                    {"at_patient", cur.patient},
                    {"type", cur.type.empty() ? std::string("(done)") : cur.type}});
    } else {
      logger_.info("fanout_started", {{"patients", static_cast<uint64_t>(ids->size())}});
    }
    uint64_t records = 0;
    uint64_t pages = 0;
    for (const auto& id : *ids) {
      if (cur.valid && id < cur.patient) {
        continue;  // done before a restart
      }
      const bool here = cur.valid && id == cur.patient;
      const size_t first_type = here ? typeIndex(cur.type) : 0;
      for (size_t t = first_type; t < opt_.resources.size(); ++t) {
        const bool resume_here = here && opt_.resources[t] == cur.type && !cur.next.empty();
        PSA_TRY(syncOne(cur, id, t, resume_here ? cur.next : std::string(), records, pages));
      }
      cur.valid = true;
    }
    store::AppendBatch done;
    if (!cur.run_wm.empty()) {
      for (const auto& type : opt_.resources) {
        done.watermarks.push_back({opt_.adapter, std::string(kSincePrefix) + type, cur.run_wm});
      }
    }
    done.watermarks.push_back({opt_.adapter, kRunKey, std::nullopt});
    auto c = hooks_.commit(std::move(done));
    if (!c) {
      return std::move(c).error();
    }
    logger_.write(records > 0 ? log::Level::info : log::Level::debug, "sync_done",
                  {{"mode", "patient-search"},
                   {"patients", static_cast<uint64_t>(ids->size())},
                   {"pages", pages},
                   {"records", records}});
    return {};
  }

 private:
  // Where a resumed patient continues: "" = done; a type no longer configured: from the start.
  size_t typeIndex(const std::string& type) const {
    if (type.empty()) {
      return opt_.resources.size();
    }
    auto it = std::find(opt_.resources.begin(), opt_.resources.end(), type);
    return it == opt_.resources.end() ? 0 : static_cast<size_t>(it - opt_.resources.begin());
  }

  std::string firstUrl(const std::string& type, const std::string& patient) const {
    auto found = since_.find(type);
    const std::string since = found != since_.end() ? found->second : std::string();
    Params params;
    params.emplace_back(type == "Patient" ? "_id" : "patient", patient);
    if (!since.empty()) {
      params.emplace_back("_lastUpdated", "ge" + minusOverlap(since, opt_.overlap_s));
    }
    params.emplace_back("_count", std::to_string(opt_.page_size));
    for (const auto& p : opt_.search_params) {
      params.push_back(p);
    }
    return withQuery(opt_.base + "/" + type, params);
  }

  // One type of one patient, from `next` (or its first page), every page committed with the
  // cursor that follows it.
  Status syncOne(FanoutCursor& cur, const std::string& patient, size_t t, std::string url,
                 uint64_t& records, uint64_t& pages) {
    const std::string& type = opt_.resources[t];
    bool resumed = !url.empty();
    if (url.empty()) {
      url = firstUrl(type, patient);
    }
    const std::string what = "search " + type + " of a patient";
    while (!url.empty()) {
      if (hooks_.stopped()) {
        return Error(Errc::closed, "stopped");
      }
      auto page = std::make_shared<FhirPage>();
      auto resp = hooks_.get_page(url, what, page);
      if (!resp) {
        if (resumed && (resp.error().is(Errc::invalid_input) || resp.error().is(Errc::not_found))) {
          // The saved next link expired: this patient's type starts over (repeats are dropped).
          logger_.warn("cursor_expired", {{"resource", type}, {"error", resp.error().message}});
          resumed = false;
          url = firstUrl(type, patient);
          continue;
        }
        return Error(resp.error().code, resp.error().message + "; watermark unchanged");
      }
      resumed = false;
      ++pages;
      store::AppendBatch batch;
      for (const auto& item : page->items) {
        batch.records.push_back(hooks_.record_for(resp->body, item));
      }
      records += batch.records.size();
      const size_t entries = batch.records.size();
      FanoutCursor next = cur;
      next.valid = true;
      next.patient = patient;
      next.type = !page->next_url.empty()         ? type
                  : t + 1 < opt_.resources.size() ? opt_.resources[t + 1]
                                                  : std::string();
      next.next = page->next_url;
      batch.watermarks.push_back({opt_.adapter, kRunKey, next.encode()});
      auto c = hooks_.commit(std::move(batch));
      if (!c) {
        return std::move(c).error();
      }
      cur = next;
      logger_.debug(
          "page_committed",
          {{"resource", type}, {"page", pages}, {"entries", static_cast<uint64_t>(entries)}});
      url = page->next_url;
    }
    return {};
  }

  // The patient ids, sorted and unique; `wm` = the server's time before the list was read.
  Result<std::vector<std::string>> listPatients(std::string& wm) {
    std::vector<std::string> ids;
    if (!opt_.group_id.empty()) {
      PSA_TRY(readGroup(ids));
      // A Group read has no Bundle.meta.lastUpdated: the server's Date (second precision).
      const int64_t date = opt_.api->lastServerDateMs();
      if (date > 0) {
        wm = formatRfc3339(date - 1000);
      }
    } else {
      Params params{{"_count", std::to_string(opt_.page_size)}};
      for (const auto& p : opt_.search_params) {
        params.push_back(p);
      }
      std::string url = withQuery(opt_.base + "/Patient", params);
      while (!url.empty()) {
        if (hooks_.stopped()) {
          return Error(Errc::closed, "stopped");
        }
        auto page = std::make_shared<FhirPage>();
        auto resp = hooks_.get_page(url, "patient list", page);
        if (!resp) {
          return std::move(resp).error();
        }
        if (wm.empty()) {
          wm = page->last_updated;
        }
        for (const auto& item : page->items) {
          ids.push_back(item.ref.id);
        }
        url = page->next_url;
      }
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
  }

  Status readGroup(std::vector<std::string>& ids) {
    ApiClient::Call call;
    call.what = "Group read";
    // search_params go on the read too: athenahealth wants ah-practice on every request.
    const std::string url =
        withQuery(opt_.base + "/Group/" + percentEncode(opt_.group_id), opt_.search_params);
    call.build = [url]() -> Result<HttpRequest> {
      HttpRequest r;
      r.url = url;
      r.headers = {{"Accept", "application/fhir+json"}};
      return r;
    };
    auto found = std::make_shared<std::vector<std::string>>();
    call.validate = [found](const HttpResponse& r) -> Status {
      auto doc = json::parse(r.body);
      if (!doc || !doc->isObject() || doc->getString("resourceType") != "Group") {
        return Error(Errc::invalid_input, "not a Group resource");
      }
      found->clear();
      if (const json::Value* members = doc->find("member"); members && members->isArray()) {
        for (const auto& m : members->items()) {
          const json::Value* entity = m.find("entity");
          const std::string ref = entity ? entity->getString("reference") : std::string();
          if (ref.rfind("Patient/", 0) == 0 && ref.size() > 8) {
            found->push_back(ref.substr(8));
          }
        }
      }
      return {};
    };
    auto resp = opt_.api->call(call);
    if (!resp) {
      return std::move(resp).error();
    }
    ids = std::move(*found);
    return {};
  }

  const FanoutOptions& opt_;
  const FanoutHooks& hooks_;
  const log::Logger& logger_;
  std::map<std::string, std::string> since_;  // type -> this pass's lower bound ("" = all)
};

}  // namespace

Status runPatientFanout(const FanoutOptions& opt, const FanoutHooks& hooks,
                        const log::Logger& logger) {
  return Fanout(opt, hooks, logger).run();
}

}  // namespace psa::adapters::api
