// kareo-soap (Kareo / Tebra SOAP 2.1): Get* operations filtered by FromLastModifiedDate, the
// initial load of patients in GetAllPatients StartKey/Key batches; in-band ErrorResponse and
// SecurityResponse answers (HTTP 200) become throttling or clear errors. Kareo never signals
// deletions: the profile reconciles.
#include <algorithm>
#include <cctype>
#include <set>
#include <utility>
#include <vector>

#include "sync_strategy.h"

namespace psa::adapters::api {
namespace {

using SoapFilter = std::vector<std::pair<std::string, std::string>>;

class KareoSoapStrategy final : public SyncStrategy {
 public:
  explicit KareoSoapStrategy(RestSync& sync) : sync_(sync) {}

  Status checkAuth(AuthStrategy& auth) const override {
    if (kareoCredentials(auth) == nullptr) {
      return Error(Errc::invalid_argument, "the Kareo profile needs auth.type \"kareo\"");
    }
    return {};
  }

  Status runOnce() override {
    for (const auto& c : sync_.settings().collections) {
      if (sync_.stop().stopped()) {
        return Error(Errc::closed, "stopped");
      }
      auto wm = sync_.watermark("since:" + c.name);
      if (!wm) {
        return wm.error();
      }
      auto st = (!wm->has_value() && !c.all_op.empty()) ? batches(c) : list(c, *wm);
      if (!st) {
        return Error(st.error().code, st.error().message + "; " + c.name + " watermark unchanged");
      }
    }
    return sync_.maybeReconcile(
        [this](const Collection& c, std::set<std::string>& out) { return completeIds(c, out); });
  }

 private:
  std::string batchSize() const {
    return std::to_string(std::min<int64_t>(sync_.settings().page_size, 1000));
  }

  Result<std::shared_ptr<KareoAnswer>> call(const Collection& c, const std::string& op,
                                            const SoapFilter& filter, std::string& body_out) {
    const KareoCredentials* creds = kareoCredentials(*sync_.clients().auth);
    auto answer = std::make_shared<KareoAnswer>();
    const std::string list = c.name;
    const std::string item = c.item;
    ApiClient::Call call;
    call.what = op;
    const std::string url = sync_.settings().base;
    const std::string envelope = kareoEnvelope(op, creds->customer_key, creds->user,
                                               creds->password, creds->client_version, filter);
    call.build = [url, envelope, op]() -> Result<HttpRequest> {
      HttpRequest r;
      r.method = "POST";
      r.url = url;
      r.headers = {{"Content-Type", "text/xml; charset=utf-8"},
                   {"SOAPAction", "\"" + std::string(kKareoNs) + "KareoServices/" + op + "\""}};
      r.body = envelope;
      return r;
    };
    call.validate = [answer, op, list, item](const HttpResponse& r) -> Status {
      auto a = parseKareoAnswer(r.body, op, list, item);
      if (!a) {
        return a.error();
      }
      *answer = std::move(a).value();
      return {};
    };
    call.inband = [op, list, item](const HttpResponse& r) -> std::optional<Verdict> {
      auto a = parseKareoAnswer(r.body, op, list, item);
      if (!a) {
        return std::nullopt;  // validate() reports it
      }
      if (a->is_error) {
        std::string low = a->error_message;
        std::transform(low.begin(), low.end(), low.begin(), ::tolower);
        if (low.find("throttl") != std::string::npos) {
          return Verdict{Verdict::Kind::throttled, "throttled: " + a->error_message};
        }
        return Verdict{Verdict::Kind::fail, "ErrorResponse: " + a->error_message};
      }
      if (!a->security_ok) {
        return Verdict{Verdict::Kind::fail,
                       "SecurityResponse: " + a->security_result +
                           " - check auth.customer_key, username and password"};
      }
      return std::nullopt;
    };
    auto resp = sync_.api().call(call);
    if (!resp) {
      if (resp.error().is(Errc::invalid_input) &&
          resp.error().message.find("SecurityResponse") != std::string::npos) {
        return Error(Errc::unauthorized, resp.error().message);
      }
      return std::move(resp).error();
    }
    body_out = std::move(resp->body);
    return answer;
  }

  // The initial load of patients: GetAllPatients batches, StartKey -> Key.
  Status batches(const Collection& c) {
    const std::string& scope = sync_.scope();
    const std::string wm_key = "since:" + c.name;
    const std::string cursor_key = "cursor:" + c.name;
    auto saved = sync_.savedCursor(cursor_key);
    if (!saved) {
      return saved.error();
    }
    Cursor cursor = std::move(saved).value();
    uint64_t records = 0;
    for (;;) {
      SoapFilter filter = {{"BatchSize", batchSize()}};
      if (!cursor.url.empty()) {
        filter.emplace_back("StartKey", cursor.url);
      }
      std::string body;
      auto a = call(c, c.all_op, filter, body);
      if (!a) {
        return a.error();
      }
      if (cursor.run_wm.empty()) {
        cursor.run_wm = sync_.serverWatermark();
      }
      store::AppendBatch batch;
      for (const auto& item : (*a)->items) {
        batch.records.push_back(sync_.recordFor(c, body, item));
        sync_.noteKnown(batch, c, item);
      }
      records += (*a)->items.size();
      if ((*a)->next_key.has_value()) {
        cursor.url = *(*a)->next_key;
        batch.watermarks.push_back({scope, cursor_key, cursor.encode()});
      } else {
        batch.watermarks.push_back({scope, cursor_key, std::nullopt});
        if (!cursor.run_wm.empty()) {
          batch.watermarks.push_back({scope, wm_key, cursor.run_wm});
        }
      }
      auto committed = sync_.commit(std::move(batch));
      if (!committed) {
        return std::move(committed).error();
      }
      sync_.logger().debug(
          "page_committed",
          {{"collection", c.name}, {"entries", static_cast<uint64_t>((*a)->items.size())}});
      if (!(*a)->next_key.has_value()) {
        break;
      }
      if (sync_.stop().stopped()) {
        return Error(Errc::closed, "stopped");
      }
    }
    sync_.logger().info("sync_done", {{"collection", c.name}, {"records", records}});
    return {};
  }

  Status list(const Collection& c, const std::optional<std::string>& wm) {
    SoapFilter filter;
    if (wm.has_value()) {
      filter.emplace_back("FromLastModifiedDate", *wm);
    }
    std::string body;
    auto a = call(c, c.op, filter, body);
    if (!a) {
      return a.error();
    }
    const std::string run_wm = sync_.serverWatermark();
    store::AppendBatch batch;
    for (const auto& item : (*a)->items) {
      batch.records.push_back(sync_.recordFor(c, body, item));
      sync_.noteKnown(batch, c, item);
    }
    if (!run_wm.empty()) {
      batch.watermarks.push_back({sync_.scope(), "since:" + c.name, run_wm});
    }
    const size_t n = batch.records.size();
    auto committed = sync_.commit(std::move(batch));
    if (!committed) {
      return std::move(committed).error();
    }
    sync_.logger().write(n > 0 ? log::Level::info : log::Level::debug, "sync_done",
                         {{"collection", c.name}, {"records", static_cast<uint64_t>(n)}});
    return {};
  }

  // Every id a complete listing of `c` holds now: all batches, or the unfiltered operation.
  Status completeIds(const Collection& c, std::set<std::string>& out) {
    if (c.all_op.empty()) {
      std::string body;
      auto a = call(c, c.op, {}, body);
      if (!a) {
        return a.error();
      }
      for (const auto& item : (*a)->items) {
        out.insert(item.id);
      }
      return {};
    }
    std::string start;
    for (;;) {
      SoapFilter filter = {{"BatchSize", batchSize()}};
      if (!start.empty()) {
        filter.emplace_back("StartKey", start);
      }
      std::string body;
      auto a = call(c, c.all_op, filter, body);
      if (!a) {
        return a.error();
      }
      for (const auto& item : (*a)->items) {
        out.insert(item.id);
      }
      if (!(*a)->next_key.has_value() || sync_.stop().stopped()) {
        return {};
      }
      start = *(*a)->next_key;
    }
  }

  RestSync& sync_;
};

}  // namespace

SyncStrategyPtr makeKareoSoapStrategy(RestSync& sync) {
  return std::make_unique<KareoSoapStrategy>(sync);
}

}  // namespace psa::adapters::api
