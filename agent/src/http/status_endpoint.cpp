#include "http/status_endpoint.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>

#include "agent_context.h"
#include "http/check_cache.h"
#include "http/http_server.h"
#include "http/metrics.h"
#include "http/status_page.h"
#include "http/traffic_history.h"
#include "psa/store/clock.h"
#include "psa/store/fatal.h"
#include "psa/store/log.h"

namespace psa::agent::http {
namespace {

namespace asio = boost::asio;

constexpr auto kSampleEvery = std::chrono::seconds(10);
constexpr size_t kHistoryPoints = 360;                  // one hour at kSampleEvery
constexpr auto kCheckMaxAge = std::chrono::minutes(5);  // the page re-runs check at most this often
constexpr auto kRateWindow = std::chrono::seconds(60);
constexpr size_t kDeadReasonsShown = 10;

Response json(const json::Value& doc) {
  Response r;
  r.content_type = "application/json";
  r.body = json::serialize(doc);
  r.body += '\n';
  return r;
}

}  // namespace

struct StatusEndpoint::Impl {
  Impl(asio::io_context& context, const AgentContext& c, HttpSettings s)
      : io(context),
        ctx(c),
        settings(std::move(s)),
        checks(c.config->source_file,
               std::chrono::duration_cast<std::chrono::seconds>(kCheckMaxAge)),
        sample_timer(context),
        server(context, settings, [this](const Request& r) { return answer(r); }) {}

  asio::io_context& io;
  const AgentContext& ctx;
  HttpSettings settings;
  TrafficHistory history{kSampleEvery, kHistoryPoints};
  CheckCache checks;
  asio::thread_pool sampler{1};  // store reads stay off the io threads
  asio::steady_timer sample_timer;
  HttpServer server;
  log::Logger logger{"http"};

  /// The status document plus what only the page shows: dead letters grouped by reason (a
  /// scan of the dead table, too dear for every `status` call).
  json::Value pageStatus() const {
    json::Value status = ctx.status();
    json::Value* queue = status.find("queue");
    if (queue == nullptr || queue->getInt("dead") == 0 || ctx.store == nullptr) {
      return status;
    }
    auto reasons = ctx.store->deadReasons(kDeadReasonsShown);
    if (!reasons) {
      return status;  // the queue card already says what the store cannot read
    }
    json::Value list = json::Value::array();
    for (const auto& r : *reasons) {
      json::Value item = json::Value::object();
      item.set("reason", json::Value::string(r.reason));
      item.set("count", json::Value::integer(static_cast<int64_t>(r.count)));
      item.set("last_at", json::Value::string(formatRfc3339(r.last_dead_at_ms)));
      list.push(std::move(item));
    }
    queue->set("dead_reasons", std::move(list));
    return status;
  }

  Response answer(const Request& request) {
    const std::string path = request.path();
    const int64_t now = Clock::system()->nowMs();
    if (path == "/") {
      Response r;
      r.content_type = "text/html; charset=utf-8";
      const json::Value report = checks.current(now);
      r.body = renderStatusPage(pageStatus(), &report, history.points(), now, settings.refresh_s);
      r.headers["Content-Security-Policy"] = statusPageCsp();
      return r;
    }
    if (path == "/status.json") {
      return json(ctx.status());
    }
    if (path == "/checks.json") {
      return json(checks.current(now));
    }
    if (path == "/history.json") {
      return json(history.toJson());
    }
    if (path == "/metrics") {
      MetricsInput in = collectMetrics(ctx);
      in.drain_rate_per_s = history.outRate(kRateWindow);
      in.intake_rate_per_s = history.inRate(kRateWindow);
      Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = renderMetrics(in);
      return r;
    }
    Response r;
    r.status = 404;
    r.body =
        "not found: this endpoint serves /, /status.json, /checks.json, /history.json and "
        "/metrics\n";
    return r;
  }

  void sample() {
    auto stats = ctx.store->stats();
    if (stats) {
      history.sample(Clock::system()->nowMs(), stats->appended_total, stats->delivered_total);
    }
  }

  void armSampler() {
    sample_timer.expires_after(kSampleEvery);
    sample_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) {
        return;
      }
      asio::post(sampler, [this] { guardInvariant("http.sample", [this] { sample(); }); });
      armSampler();
    });
  }
};

StatusEndpoint::StatusEndpoint(asio::io_context& io, const AgentContext& ctx, HttpSettings settings)
    : impl_(std::make_unique<Impl>(io, ctx, std::move(settings))) {}

StatusEndpoint::~StatusEndpoint() { stop(); }

Status StatusEndpoint::start() {
  if (auto st = impl_->server.start(); !st) {
    return st;
  }
  asio::post(impl_->sampler, [d = impl_.get()] { d->sample(); });  // the baseline
  asio::post(impl_->io, [d = impl_.get()] { d->armSampler(); });
  return {};
}

void StatusEndpoint::stop() {
  Impl& d = *impl_;
  d.server.stop();
  if (d.io.stopped()) {
    d.sample_timer.cancel();
  } else {
    auto cancelled = std::make_shared<std::promise<void>>();
    asio::post(d.io, [&d, cancelled] {
      d.sample_timer.cancel();
      cancelled->set_value();
    });
    cancelled->get_future().wait_for(std::chrono::seconds(10));
  }
  d.sampler.stop();
  d.sampler.join();
}

json::Value StatusEndpoint::describe() const {
  const Impl& d = *impl_;
  json::Value v = json::Value::object();
  v.set("listen", json::Value::string(d.settings.listen.text));
  v.set("state", json::Value::string(d.server.state()));
  v.set("port", json::Value::integer(d.server.port()));
  v.set("tls", json::Value::boolean(d.settings.tls.has_value()));
  v.set("token", json::Value::boolean(!d.settings.bearer_token_file.empty()));
  return v;
}

}  // namespace psa::agent::http
