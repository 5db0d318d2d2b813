// The status page: stable hooks, escaping, no PHI, no external assets, the CLI's words.
#include "http/status_page.h"

#include <gtest/gtest.h>

#include "http/status_page_assets.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "status_document.h"
#include "test_store.h"
#include "test_support.h"

namespace psa::agent::http {
namespace {

constexpr const char* kHostile = R"(<script>alert("x")</script>'&)";

int64_t at(const char* rfc3339) {
  int64_t ms = 0;
  EXPECT_TRUE(parseRfc3339(rfc3339, ms));
  return ms;
}

// What buildStatus() reports for an agent with two adapters, a link in backoff and 7 pending.
json::Value sampleStatus() {
  auto v = json::parse(R"json({
    "state": "online", "agent_id": "studio-7", "tenant": "acme-dental", "version": "1.4.0",
    "pid": 4242, "at": "2026-12-07T10:00:00.000Z", "started_at": "2026-12-07T07:00:00.000Z",
    "uptime_s": 10800,
    "process": {"rss_bytes": 23068672, "cpu_seconds": 12.5, "open_handles": 31},
    "config": {"file": "/etc/pms-agent/agent.json", "origin": "local", "version": null,
               "applied_at": null, "locked": false},
    "adapters": [
      {"name": "mllp-in", "type": "mllp", "state": "listening", "healthy": true,
       "last_message_at": "2026-12-07T09:59:30.000Z", "last_error": null, "last_error_at": null,
       "counters": {"messages": 1204, "accepted": 1200, "ack_AE": 4, "bytes": 998877},
       "detail": {"listen": "0.0.0.0:2575", "connections_open": 2}},
      {"name": "files", "type": "file", "state": "failed", "healthy": false,
       "last_message_at": null, "last_error": "intake directory not readable (permission denied)",
       "last_error_at": "2026-12-07T09:50:00.000Z", "counters": {}, "detail": {}}
    ],
    "cloud": {"configured": true, "state": "backoff", "connected": false,
              "url": "mqtts://broker.example:8883", "last_error": "connection refused",
              "last_error_at": "2026-12-07T09:58:00.000Z", "since": "2026-12-07T09:45:00.000Z",
              "next_retry_at": "2026-12-07T10:00:20.000Z", "in_flight": 0, "acked": 18204,
              "reconnects": 3, "drain_rate": 0.0},
    "queue": {"pending": 7, "leased": 0, "retry": 0, "dead": 2, "pending_bytes": 9000,
              "db_bytes": 1048576, "max_bytes": 1073741824, "oldest_pending_age_s": 900.0,
              "by_kind": {"patient": {"pending": 5, "bytes": 7000, "dead": 2},
                          "billing": {"pending": 2, "bytes": 2000, "dead": 0},
                          "other": {"pending": 0, "bytes": 0, "dead": 0}},
              "key_id": 1, "keys": 1},
    "key_file": {"path": "/var/lib/pms-agent/queue.key", "present": true, "mode": "0600",
                 "owner": "pms-agent", "ok": true, "problem": null, "fix": null},
    "disk": {"path": "/var/lib/pms-agent", "total_bytes": 100000000000,
             "free_bytes": 60000000000, "used_percent": 40.0},
    "log": {"level": "info", "file": null, "errors": 3, "warnings": 9}
  })json");
  EXPECT_TRUE(v) << v.error().message;
  return std::move(v).value();
}

json::Value sampleChecks() {
  auto v = json::parse(R"json({"ok": false, "failures": 1, "warnings": 1,
    "at": "2026-12-07T09:58:00.000Z", "checks": [
      {"level": "OK", "name": "config", "text": "/etc/pms-agent/agent.json valid (2 adapters)"},
      {"level": "WARN", "name": "queue", "text": "oldest record waits 15 min ▸ see CLOUD"},
      {"level": "FAIL", "name": "broker", "text": "connection refused ▸ check cloud.url"}]})json");
  EXPECT_TRUE(v) << v.error().message;
  return std::move(v).value();
}

const int64_t kNow = at("2026-12-07T10:00:00Z");

std::string render(const json::Value& status, const json::Value* checks = nullptr) {
  std::vector<TrafficHistory::Point> history;
  for (int i = 0; i < 30; ++i) {
    history.push_back(
        {kNow - (30 - i) * 10'000, static_cast<uint64_t>(i % 7), static_cast<uint64_t>(i % 5)});
  }
  return renderStatusPage(status, checks, history, kNow);
}

bool has(const std::string& page, const std::string& text) {
  return page.find(text) != std::string::npos;
}

TEST(StatusPageTest, HooksCarryTheLinkStateAdaptersQueueDepthAndChecks) {
  const json::Value checks = sampleChecks();
  const std::string page = render(sampleStatus(), &checks);
  EXPECT_TRUE(has(page, R"(data-link-state="backoff")"));
  EXPECT_TRUE(has(page, "DISCONNECTED (backoff)"));
  EXPECT_TRUE(has(page, R"(data-adapter="mllp-in")"));
  EXPECT_TRUE(has(page, R"(data-adapter="files")"));
  EXPECT_TRUE(has(page, R"(data-queue-pending="7")"));
  EXPECT_TRUE(has(page, "data-checks"));
  EXPECT_TRUE(has(page, R"(data-check-level="OK")"));
  EXPECT_TRUE(has(page, R"(data-check-level="WARN")"));
  EXPECT_TRUE(has(page, R"(data-check-level="FAIL")"));
}

TEST(StatusPageTest, ShowsTheCliWords) {
  const json::Value checks = sampleChecks();
  const std::string page = render(sampleStatus(), &checks);
  // Check texts as-is, ages and sizes as the CLI words them.
  EXPECT_TRUE(has(page, "connection refused ▸ check cloud.url"));
  EXPECT_TRUE(has(page, "15 min"));                          // oldest pending
  EXPECT_TRUE(has(page, "1 MB of 1 GB"));                    // bytes vs budget
  EXPECT_TRUE(has(page, ">1,204</b> messages"));             // telltale counters
  EXPECT_TRUE(has(page, "0.0.0.0:2575"));                    // adapter detail
  EXPECT_TRUE(has(page, "intake directory not readable"));   // recent errors
  EXPECT_TRUE(has(page, "each one: pms-agent queue dead"));  // dead letters point to the CLI
  EXPECT_TRUE(has(page, "<meta name=\"viewport\""));
  EXPECT_TRUE(has(page, "<noscript>"));
}

TEST(StatusPageTest, DeadLettersByReasonWhenGiven) {
  json::Value s = sampleStatus();
  EXPECT_FALSE(has(render(s), "data-dead-reasons"));  // the status document has none
  json::Value reasons = json::Value::array();
  reasons.push(json::Value::object({{"reason", json::Value::string("HL7 <parse> error")},
                                    {"count", json::Value::integer(1204)},
                                    {"last_at", json::Value::string("2026-12-07T09:58:00.000Z")}}));
  s.find("queue")->set("dead_reasons", std::move(reasons));
  const std::string page = render(s);
  EXPECT_TRUE(has(page, "data-dead-reasons"));
  EXPECT_TRUE(has(page, "HL7 &lt;parse&gt; error"));  // escaped like every dynamic string
  EXPECT_TRUE(has(page, ">1,204<"));
  EXPECT_TRUE(has(page, "2 min ago"));
}

TEST(StatusPageTest, LinkStateWhenNotConfiguredOrNotRunning) {
  json::Value s = sampleStatus();
  s.set("cloud", json::Value::object({{"configured", json::Value::boolean(false)},
                                      {"state", json::Value::string("not configured")},
                                      {"connected", json::Value::boolean(false)}}));
  EXPECT_TRUE(has(render(s), R"(data-link-state="not configured")"));

  s = sampleStatus();
  s.set("state", json::Value::string("not running"));
  s.set("reason", json::Value::string("nothing answers on /run/pms-agent/control.sock"));
  s.find("cloud")->set("state", json::Value::string("not running"));
  const std::string page = render(s);
  EXPECT_TRUE(has(page, R"(data-link-state="not running")"));
  EXPECT_TRUE(has(page, "systemctl start pms-agent"));
}

TEST(StatusPageTest, ChecksNotRunYet) {
  const json::Value pending = json::Value::object({{"pending", json::Value::boolean(true)}});
  for (const json::Value* checks : {static_cast<const json::Value*>(nullptr), &pending}) {
    const std::string page = render(sampleStatus(), checks);
    EXPECT_TRUE(has(page, "not run yet"));
    EXPECT_TRUE(has(page, "data-checks"));
    EXPECT_FALSE(has(page, "data-check-level"));
  }
}

TEST(StatusPageTest, EscapesHostileNamesEverywhere) {
  EXPECT_EQ(htmlEscape(kHostile), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;");
  json::Value s = sampleStatus();
  s.set("agent_id", json::Value::string(kHostile));
  json::Value& adapter = s.find("adapters")->items()[0];
  adapter.set("name", json::Value::string(kHostile));
  adapter.set("type", json::Value::string(kHostile));
  adapter.set("last_error", json::Value::string(kHostile));
  adapter.find("counters")->set(kHostile, json::Value::integer(5));
  s.find("cloud")->set("state", json::Value::string(kHostile));
  s.find("cloud")->set("url", json::Value::string(kHostile));
  json::Value checks = sampleChecks();
  checks.find("checks")->items()[0].set("name", json::Value::string(kHostile));
  checks.find("checks")->items()[0].set("level", json::Value::string(kHostile));
  const std::string page = render(s, &checks);
  EXPECT_FALSE(has(page, "alert(\"x\")"));
  EXPECT_FALSE(has(page, "<script>alert"));
  EXPECT_TRUE(
      has(page, R"(data-adapter="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;")"));
  // Only our own script element.
  size_t scripts = 0;
  for (size_t p = page.find("<script"); p != std::string::npos; p = page.find("<script", p + 1)) {
    ++scripts;
  }
  EXPECT_EQ(scripts, 1u);
}

TEST(StatusPageTest, RecordPayloadsNeverReachThePage) {
  // The queue figures come from a real store holding records whose payloads carry the marker.
  const std::string marker = "PHI-MARKER-DOE^JANE-1961";
  test::TempDir dir("psa-page");
  test::TestStore ts(dir.path());
  std::vector<store::Record> records;
  for (int i = 0; i < 7; ++i) {
    store::Record r;
    r.source = "mllp-in";
    r.vendor = "cerner";
    r.kind = store::Kind::patient;
    r.format = std::string(store::format::kHl7v2);
    r.payload = Sensitive<std::string>("MSH|^~\\&|PID|1||" + marker + "|" + std::to_string(i));
    records.push_back(std::move(r));
  }
  ts.append(std::move(records));
  json::Value s = sampleStatus();
  s.set("queue", queueStatusJson(ts.store(), kNow));
  ASSERT_FALSE(has(json::serialize(s), marker));
  const json::Value checks = sampleChecks();
  const std::string page = render(s, &checks);
  EXPECT_TRUE(has(page, R"(data-queue-pending="7")"));
  EXPECT_FALSE(has(page, marker));
}

TEST(StatusPageTest, LoadsNothingFromAnywhere) {
  const json::Value checks = sampleChecks();
  const std::string page = render(sampleStatus(), &checks);
  for (const char* banned : {"http://", "https://", "src=", "href=", "<link", "@import", "url(",
                             "<form", "<button", "<input", "innerHTML", "<img", "<iframe"}) {
    EXPECT_FALSE(has(page, banned)) << banned;
  }
  EXPECT_LT(page.size(), 48u * 1024);
}

TEST(StatusPageTest, CspPinsTheInlineStyleAndScript) {
  auto pin = [](const char* text) {
    const auto d = sha256(text);
    return "'sha256-" +
           base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size())) + "'";
  };
  const std::string csp = statusPageCsp();
  EXPECT_TRUE(has(csp, "default-src 'none'"));
  EXPECT_TRUE(has(csp, "connect-src 'self'"));
  EXPECT_TRUE(has(csp, "script-src " + pin(kStatusPageScript)));
  EXPECT_TRUE(has(csp, "style-src " + pin(kStatusPageCss)));
  // The page carries exactly those texts (a hash pins the element's whole content).
  const std::string page = render(sampleStatus());
  EXPECT_TRUE(has(page, std::string("<script>") + kStatusPageScript + "</script>"));
  EXPECT_TRUE(has(page, std::string("<style>") + kStatusPageCss + "</style>"));
  EXPECT_FALSE(has(page, "style=\""));  // style attributes would need 'unsafe-hashes'
}

TEST(StatusPageTest, ChartDrawsBothSeriesOrSaysItIsEmpty) {
  const std::string page = render(sampleStatus());
  EXPECT_TRUE(has(page, "class=\"line-in\""));
  EXPECT_TRUE(has(page, "class=\"line-out\""));
  const std::string empty = renderStatusPage(sampleStatus(), nullptr, {}, kNow);
  EXPECT_FALSE(has(empty, "<polyline"));
  EXPECT_TRUE(has(empty, "no figures yet"));
}

}  // namespace
}  // namespace psa::agent::http
