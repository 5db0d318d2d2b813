// The `check` report the status page shows: the same checks `pms-agent check` runs, in the
// agent's own process, at most every few minutes and only while someone looks (a check probes
// the broker and the PMS servers; a page refreshing every 5 s must not).
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <mutex>

#include "psa/store/json.h"

namespace psa::agent::http {

class CheckCache {
 public:
  CheckCache(std::filesystem::path config_file, std::chrono::seconds max_age);
  ~CheckCache();

  /// checkReportJson() plus "at" (RFC 3339) of the last run, or {"pending":true} before the
  /// first one finished. A report older than max_age starts a new run in the background.
  json::Value current(int64_t now_ms);

 private:
  const std::filesystem::path config_file_;
  const std::chrono::seconds max_age_;
  boost::asio::thread_pool runner_{1};
  std::mutex mu_;
  json::Value report_;     // mu_
  int64_t started_ms_ = 0;  // mu_: when the last run started (0: never)
  bool running_ = false;    // mu_
};

}  // namespace psa::agent::http
