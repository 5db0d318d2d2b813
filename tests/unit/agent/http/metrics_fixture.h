// Status documents for the /metrics tests, built with the agent's own builders where they are
// reachable (LinkStatus::toJson, queueStatsJson, queueBudgetJson), so the keys are the real ones.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "http/metrics.h"
#include "psa/cloudlink/cloud_link.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "queue_budget.h"
#include "status_document.h"

namespace psa::agent::http::testing {

inline constexpr int64_t kNowMs = 1'790'000'000'000;

inline json::Value parsed(const std::string& text) {
  auto v = json::parse(text);
  EXPECT_TRUE(v.ok()) << text;
  return v.ok() ? std::move(v).value() : json::Value::object();
}

/// One adapter as buildStatus() shows it; `error` lands in last_error.
inline json::Value adapterJson(const std::string& name, const std::string& type,
                               const std::string& counters, const std::string& error = {}) {
  return parsed(R"({"name":)" + json::quote(name) + R"(,"type":)" + json::quote(type) +
                R"(,"state":"listening","healthy":true,)"
                R"("last_message_at":"2026-09-21T12:00:00.000Z","last_error":)" +
                (error.empty() ? "null" : json::quote(error)) +
                R"(,"last_error_at":"2026-09-21T11:59:00.500Z","counters":)" + counters +
                R"(,"detail":{"connections_open":2,"endpoints":["0.0.0.0:2575"]}})");
}

/// A status document of a running agent: an MLLP and a file-drop adapter, a connected link with
/// two PUBACK reason codes, and `queue` (see queueFigures()). `phi` goes wherever the document
/// holds free text.
inline json::Value statusDocument(json::Value queue, const std::string& phi) {
  json::Value s = json::Value::object();
  s.set("state", json::Value::string("online"));
  s.set("version", json::Value::string("1.2.3"));
  s.set("started_at", json::Value::string("2026-09-21T10:00:00.000Z"));
  s.set("uptime_s", json::Value::integer(7200));
  json::Value adapters = json::Value::array();
  adapters.push(adapterJson("cerner-adt", "hl7-mllp",
                            R"({"messages":12,"accepted":9,"duplicates":1,"dead_letters":2,)"
                            R"("bytes_in":4096,"bytes_out":512,"ack_AA":10,"ack_AE":2,)"
                            R"("ack_AR":0,"framing_errors":1})",
                            "message rejected: " + phi));
  adapters.push(adapterJson("lab-drop", "file-drop",
                            R"({"records":5,"duplicate_records":1,"dead_letters":1,)"
                            R"("bytes":2048,"files_ingested":3,"commits":2})"));
  s.set("adapters", std::move(adapters));
  cloudlink::LinkStatus link;
  link.state = cloudlink::LinkState::connected;
  link.connected = true;
  link.url = "mqtts://broker.example:8883";
  link.last_error = "PUBACK 0x87 for " + phi;
  link.in_flight = 3;
  link.published = 40;
  link.resent = 2;
  link.acked = 35;
  link.dead_lettered = 1;
  link.retried = 4;
  link.reason_codes = {{0x87, 1}, {0x97, 4}};
  link.connects = 2;
  link.reconnects = 1;
  link.watchdog_trips = 1;
  link.store_errors = 0;
  json::Value cloud = parsed(link.toJson());
  cloud.set("configured", json::Value::boolean(true));
  s.set("cloud", std::move(cloud));
  // A dead-letter reason, as a status page might list them: free text, never a label.
  queue.set("dead_by_reason", parsed("{" + json::quote("bad PID: " + phi) + ":2}"));
  s.set("queue", std::move(queue));
  s.set("log", parsed(R"({"level":"info","file":null,"errors":3,"warnings":7})"));
  s.set("disk", parsed(R"({"path":"/var/lib/pms-agent","total_bytes":1000000000,)"
                       R"("free_bytes":400000000,"used_percent":60.0})"));
  s.set("key_file", parsed(R"({"present":true,"ok":true,"problem":null})"));
  return s;
}

/// Queue figures with pending and dead records of two kinds.
inline json::Value queueFigures() {
  store::QueueStats q;
  q.pending = 7;
  q.leased = 2;
  q.retry = 1;
  q.dead = 3;
  q.pending_bytes = 7000;
  q.db_bytes = 65536;
  q.max_bytes = 1 << 30;
  q.oldest_pending_ms = kNowMs - 90'500;
  q.by_kind[store::Kind::patient] = {5, 5000, 2};
  q.by_kind[store::Kind::appointment] = {2, 2000, 1};
  q.appended_total = 50;
  q.delivered_total = 40;
  q.duplicates_total = 2;
  q.dedupe_entries = 48;
  q.dedupe_max_entries = 1000;
  json::Value v = queueStatsJson(q, kNowMs);
  v.set("budget", queueBudgetJson(q.db_bytes, q.max_bytes, nullptr));
  return v;
}

/// Checks that each family has one TYPE line and that its samples follow it without a break.
inline void expectFamiliesWrittenOnce(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::set<std::string> seen;
  std::string family;
  std::string type;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      t >> family >> type;
      EXPECT_TRUE(seen.insert(family).second) << "family written twice: " << family;
      continue;
    }
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::string name = line.substr(0, line.find_first_of("{ "));
    if (type == "histogram") {
      for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
        if (name.size() > suffix.size() && name.ends_with(suffix) &&
            name.substr(0, name.size() - suffix.size()) == family) {
          name = family;
        }
      }
    }
    EXPECT_EQ(name, family) << "sample outside its family: " << line;
  }
}

}  // namespace psa::agent::http::testing
