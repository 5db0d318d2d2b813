#include "http/check_cache.h"

#include <boost/asio/post.hpp>

#include "diagnostics.h"
#include "psa/store/clock.h"
#include "psa/store/fatal.h"

namespace psa::agent::http {

CheckCache::CheckCache(std::filesystem::path config_file, std::chrono::seconds max_age)
    : config_file_(std::move(config_file)), max_age_(max_age) {}

CheckCache::~CheckCache() {
  runner_.stop();
  runner_.join();
}

json::Value CheckCache::current(int64_t now_ms) {
  std::lock_guard lock(mu_);
  const bool stale = started_ms_ == 0 || now_ms - started_ms_ >= max_age_.count() * 1000;
  if (stale && !running_) {
    running_ = true;
    started_ms_ = now_ms;
    boost::asio::post(runner_, [this] {
      json::Value report = guardInvariant("http.check", [&] {
        json::Value r = checkReportJson(runChecks(config_file_));
        r.set("at", json::Value::string(formatRfc3339(Clock::system()->nowMs())));
        return r;
      });
      std::lock_guard done(mu_);
      report_ = std::move(report);
      running_ = false;
    });
  }
  if (report_.isObject()) {
    return report_;
  }
  json::Value pending = json::Value::object();
  pending.set("pending", json::Value::boolean(true));
  return pending;
}

}  // namespace psa::agent::http
