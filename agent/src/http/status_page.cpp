// The status page's HTML: the same facts and words as `pms-agent status` and `check`, laid out
// for a screen. Every dynamic string goes through htmlEscape(); the page loads nothing from
// anywhere (inline style, script and SVG).
#include "http/status_page.h"

#include <algorithm>
#include <cstdio>

#include "cli_support.h"
#include "http/status_page_assets.h"
#include "http/traffic_chart.h"
#include "psa/agent/signed_document.h"
#include "psa/cloudlink/broker_limits.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "queue_budget.h"

namespace psa::agent::http {
namespace {

enum class Tone { ok, warn, fail, idle };

const char* toneClass(Tone t) {
  switch (t) {
    case Tone::ok:
      return "ok";
    case Tone::warn:
      return "warn";
    case Tone::fail:
      return "fail";
    case Tone::idle:
      return "idle";
  }
  return "idle";
}

std::string badge(Tone tone, std::string_view words, const std::string& attrs = {}) {
  return std::string("<span class=\"badge ") + toneClass(tone) + "\"" + attrs + ">" +
         htmlEscape(words) + "</span>";
}

std::string attr(std::string_view name, std::string_view value) {
  return " " + std::string(name) + "=\"" + htmlEscape(value) + "\"";
}

std::string count(int64_t n) { return humanCount(static_cast<uint64_t>(std::max<int64_t>(0, n))); }

std::string plural(int64_t n, const std::string& noun) {
  return count(n) + " " + noun + (n == 1 ? "" : "s");
}

// "5 min ago", with the exact time on hover; empty when `rfc3339` is empty or invalid.
std::string agoHtml(const std::string& rfc3339, int64_t now) {
  const std::string ago = agoText(rfc3339, now);
  return ago.empty() ? std::string()
                     : "<time" + attr("datetime", rfc3339) + attr("title", rfc3339) + ">" +
                           htmlEscape(ago) + "</time>";
}

void rowHtml(std::string& out, std::string_view label, const std::string& value_html) {
  out += "<dt>" + htmlEscape(label) + "</dt><dd>" + value_html + "</dd>";
}
void row(std::string& out, std::string_view label, std::string_view text) {
  rowHtml(out, label, htmlEscape(text));
}

std::string hint(std::string_view text) {
  return "<span class=\"hint\">" + htmlEscape(text) + "</span>";
}

// "last error": when, then the words of the status document (PHI-free there already).
std::string errorHtml(const json::Value& v, int64_t now) {
  const std::string ago = agoHtml(v.getString("last_error_at"), now);
  return (ago.empty() ? std::string() : ago + ": ") + htmlEscape(v.getString("last_error"));
}

void renderHeader(std::string& out, const json::Value& s, int64_t now) {
  const bool online = s.getString("state") == "online";
  out += "<div data-part=\"header\"><h1>pms-agent <span class=\"sub\">" +
         htmlEscape(s.getString("agent_id")) + " (" + htmlEscape(s.getString("tenant")) +
         ")</span></h1><p class=\"facts\"><span>" +
         badge(online ? Tone::ok : Tone::fail, online ? "running" : "not running") +
         "</span><span>version " + htmlEscape(s.getString("version")) + "</span>";
  if (online) {
    out += "<span>up " + htmlEscape(humanSeconds(static_cast<double>(s.getInt("uptime_s")))) +
           "</span>";
  }
  out += "<span>as of " + htmlEscape(s.getString("at", formatRfc3339(now))) + "</span></p>";
  if (!online) {
    out += "<p class=\"note\">" + htmlEscape(s.getString("reason")) +
           ". The figures below come from the agent's files. " +
           hint("systemctl start pms-agent; journalctl -u pms-agent -n 50") + "</p>";
  }
  out += "</div>";
}

std::string linkStateValue(const json::Value& s, const json::Value& c) {
  if (!c.getBool("configured")) {
    return "not configured";
  }
  if (s.getString("state") != "online") {
    return "not running";
  }
  return c.getString("state", "unknown");
}

void renderLink(std::string& out, const json::Value& s, int64_t now) {
  static const json::Value kNone = json::Value::object();
  const json::Value* found = s.find("cloud");
  const json::Value& c = found != nullptr ? *found : kNone;
  const std::string state = linkStateValue(s, c);
  const bool connected = c.getBool("connected");
  Tone tone = connected ? Tone::ok : Tone::fail;
  std::string words = connected ? "connected" : "DISCONNECTED (" + state + ")";
  if (state == "not configured") {
    tone = Tone::idle;
    words = state;
  } else if (state == "not running") {
    words = "agent not running";
  } else if (state == "connecting") {
    tone = Tone::warn;
    words = "connecting";
  }
  out += "<section class=\"card\" data-part=\"link\"><h2>Cloud link</h2><p class=\"state\">" +
         badge(tone, words, attr("data-link-state", state)) + "<span>" +
         htmlEscape(c.getString("url")) + "</span></p>";
  if (state == "not configured") {
    out += "<p class=\"empty\">records queue locally " +
           hint("add a \"cloud\" section to the config") + "</p></section>";
    return;
  }
  out += "<dl>";
  if (const std::string since = agoHtml(c.getString("since"), now); !since.empty()) {
    rowHtml(out, connected ? "Connected since" : "Down since", since);
  }
  if (state != "not running") {
    row(out, "In flight", count(c.getInt("in_flight")));
    if (c.getInt("awaiting_receipt") > 0) {
      row(out, "Awaiting receipt", count(c.getInt("awaiting_receipt")));
    }
    row(out, "Acknowledged", count(c.getInt("acked")));
    row(out, "Reconnects", count(c.getInt("reconnects")));
    char rate[32];
    const json::Value* drain = c.find("drain_rate");
    std::snprintf(rate, sizeof rate, "%.0f/s", drain != nullptr ? drain->asNumber() : 0.0);
    row(out, "Drain rate", rate);
  }
  int64_t retry_at = 0;
  if (!connected && parseRfc3339(c.getString("next_retry_at"), retry_at)) {
    row(out, "Retry in", humanSeconds(static_cast<double>(retry_at - now) / 1000.0));
  }
  if (!c.getString("last_error").empty()) {
    rowHtml(out, "Last error", errorHtml(c, now));
  }
  if (const json::Value* b = c.find("broker"); b != nullptr && b->isObject()) {
    if (const std::string limits =
            cloudlink::brokerLimitsText(cloudlink::BrokerLimits::fromJson(*b));
        !limits.empty()) {
      row(out, "Broker limits", limits);
    }
  }
  out += "</dl></section>";
}

void renderQueueKinds(std::string& out, const json::Value& by_kind) {
  std::string rows;
  for (const auto& [kind, k] : by_kind.members()) {
    if (k.getInt("pending") == 0 && k.getInt("dead") == 0) {
      continue;
    }
    rows += "<tr><td>" + htmlEscape(kind) + "</td><td class=\"n\">" + count(k.getInt("pending")) +
            "</td><td class=\"n\">" +
            htmlEscape(humanBytes(static_cast<uint64_t>(std::max<int64_t>(0, k.getInt("bytes"))))) +
            "</td><td class=\"n\">" + count(k.getInt("dead")) + "</td></tr>";
  }
  if (!rows.empty()) {
    out +=
        "<table><thead><tr><th>Kind</th><th class=\"n\">Pending</th><th class=\"n\">Size</th>"
        "<th class=\"n\">Dead</th></tr></thead><tbody>" +
        rows + "</tbody></table>";
  }
}

void renderDeadReasons(std::string& out, const json::Value& reasons, int64_t now) {
  if (reasons.items().empty()) {
    return;
  }
  out +=
      "<table data-dead-reasons><thead><tr><th>Dead-letter reason</th><th class=\"n\">Count</th>"
      "<th>Last</th></tr></thead><tbody>";
  for (const json::Value& r : reasons.items()) {
    out += "<tr><td>" + htmlEscape(r.getString("reason")) + "</td><td class=\"n\">" +
           count(r.getInt("count")) + "</td><td>" + agoHtml(r.getString("last_at"), now) +
           "</td></tr>";
  }
  out += "</tbody></table>";
}

void renderQueue(std::string& out, const json::Value& s, int64_t now) {
  out += "<section class=\"card\" data-part=\"queue\"><h2>Queue</h2>";
  const json::Value* q = s.find("queue");
  if (q == nullptr) {
    out += "<p class=\"empty\">no queue figures in the status document</p></section>";
    return;
  }
  if (q->find("error") != nullptr) {
    out += "<p class=\"state\">" + badge(Tone::fail, "FAIL") +
           "<span>cannot read the queue: " + htmlEscape(q->getString("error")) +
           "</span></p></section>";
    return;
  }
  const int64_t pending = q->getInt("pending");
  out += "<p class=\"big\"><span" + attr("data-queue-pending", std::to_string(pending)) + ">" +
         count(pending) + "</span> <small>pending</small></p>";
  const auto db = static_cast<uint64_t>(std::max<int64_t>(0, q->getInt("db_bytes")));
  const auto max = static_cast<uint64_t>(std::max<int64_t>(0, q->getInt("max_bytes")));
  const BudgetVerdict budget = judgeQueueBudget(*q, s.find("cloud"), now);
  out += "<meter min=\"0\"" + attr("max", std::to_string(max)) + attr("value", std::to_string(db)) +
         attr("high", std::to_string(static_cast<uint64_t>(max * kBudgetWarnPercent / 100))) +
         "></meter><dl>";
  row(out, "Size", humanBytes(db) + " of " + humanBytes(max));
  if (budget.level != BudgetVerdict::Level::ok) {
    const bool full = budget.level == BudgetVerdict::Level::full;
    rowHtml(out, "Budget",
            badge(full ? Tone::fail : Tone::warn, full ? "FAIL" : "WARN") + " " +
                htmlEscape(budget.text) + " " + hint(budget.fix));
  }
  const json::Value* age = q->find("oldest_pending_age_s");
  row(out, "Oldest pending",
      age != nullptr && age->isNumber() ? humanSeconds(age->asNumber()) : std::string("none"));
  row(out, "In flight", count(q->getInt("leased")));
  if (q->getInt("retry") > 0) {
    row(out, "Waiting to retry", count(q->getInt("retry")));
  }
  const int64_t dead = q->getInt("dead");
  rowHtml(out, "Dead letters",
          count(dead) + (dead > 0 ? " " + hint("each one: pms-agent queue dead") : std::string()));
  out += "</dl>";
  if (const json::Value* k = q->find("by_kind"); k != nullptr && k->isObject()) {
    renderQueueKinds(out, *k);
  }
  if (const json::Value* r = q->find("dead_reasons"); r != nullptr && r->isArray()) {
    renderDeadReasons(out, *r, now);
  }
  out += "</section>";
}

Tone adapterTone(const json::Value& a) {
  if (a.getString("state") == "disabled") {
    return Tone::idle;
  }
  return a.getBool("healthy", true) ? Tone::ok : Tone::fail;
}

void renderAdapter(std::string& out, const json::Value& a, int64_t now) {
  const Tone tone = adapterTone(a);
  const std::string state = a.getString("state");
  out += "<article class=\"adapter\"" + attr("data-adapter", a.getString("name")) +
         "><header><h3>" + htmlEscape(a.getString("name")) + "</h3><span class=\"type\">" +
         htmlEscape(a.getString("type")) + "</span>" +
         badge(tone, tone == Tone::fail ? "FAIL " + state : state) + "</header><dl>";
  if (const json::Value* d = a.find("detail"); d != nullptr && d->isObject()) {
    // The CLI separates the facts by two spaces; a dot reads better in a wrapping cell.
    std::string where;
    const std::string facts = adapterDetailText(*d);
    for (size_t from = 2, to = 0; from <= facts.size(); from = to + 2) {
      to = std::min(facts.find("  ", from), facts.size());
      where += (where.empty() ? "" : " · ") + facts.substr(from, to - from);
    }
    if (!where.empty()) {
      row(out, "Where", where);
    }
  }
  const std::string last = agoHtml(a.getString("last_message_at"), now);
  rowHtml(out, "Last message", last.empty() ? std::string("none yet") : last);
  if (const json::Value* c = a.find("counters"); c != nullptr && c->isObject()) {
    std::string items;
    for (const auto& [name, n] : telltaleCounters(*c)) {
      items += "<li><b>" + count(n) + "</b> " + htmlEscape(name) + "</li>";
    }
    if (!items.empty()) {
      rowHtml(out, "Counters", "<ul class=\"counters\">" + items + "</ul>");
    }
  }
  if (!a.getString("last_error").empty()) {
    rowHtml(out, "Last error", errorHtml(a, now));
  }
  out += "</dl></article>";
}

void renderAdapters(std::string& out, const json::Value& s, int64_t now) {
  out += "<section class=\"card wide\" data-part=\"adapters\"><h2>Adapters</h2>";
  const json::Value* list = s.find("adapters");
  if (list == nullptr || list->items().empty()) {
    out += "<p class=\"empty\">none configured</p></section>";
    return;
  }
  out += "<div class=\"adapters\">";
  for (const auto& a : list->items()) {
    renderAdapter(out, a, now);
  }
  out += "</div></section>";
}

// The last error of the link and of each adapter, newest first.
void renderErrors(std::string& out, const json::Value& s, int64_t now) {
  struct Entry {
    int64_t at_ms;
    std::string where;
    const json::Value* from;
  };
  std::vector<Entry> entries;
  auto take = [&](const std::string& where, const json::Value& v) {
    if (!v.getString("last_error").empty()) {
      int64_t at = 0;
      parseRfc3339(v.getString("last_error_at"), at);
      entries.push_back({at, where, &v});
    }
  };
  if (const json::Value* c = s.find("cloud")) {
    take("cloud link", *c);
  }
  if (const json::Value* list = s.find("adapters")) {
    for (const auto& a : list->items()) {
      take(a.getString("name"), a);
    }
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.at_ms > b.at_ms; });
  out += "<section class=\"card\" data-part=\"errors\"><h2>Recent errors</h2>";
  if (entries.empty()) {
    out += "<p class=\"empty\">none reported by the cloud link or the adapters</p></section>";
    return;
  }
  out += "<ul class=\"list errors\">";
  for (const auto& e : entries) {
    const std::string ago = agoHtml(e.from->getString("last_error_at"), now);
    out += "<li><span class=\"name\">" + htmlEscape(e.where) + "</span><span class=\"when\">" +
           ago + "</span><span class=\"text\">" + htmlEscape(e.from->getString("last_error")) +
           "</span></li>";
  }
  out += "</ul></section>";
}

void renderDisk(std::string& out, const json::Value& d) {
  if (d.find("error") != nullptr) {
    rowHtml(out, "Disk",
            htmlEscape(d.getString("path")) + " " + badge(Tone::fail, "FAIL") + " " +
                htmlEscape(d.getString("error")));
    return;
  }
  const json::Value* used_v = d.find("used_percent");
  const double used = used_v != nullptr ? used_v->asNumber() : 0;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%.0f%%", used);
  std::string html =
      htmlEscape(d.getString("path")) + ": " + pct + " used (" +
      htmlEscape(humanBytes(static_cast<uint64_t>(std::max<int64_t>(0, d.getInt("free_bytes"))))) +
      " free)";
  if (used >= 90) {
    html += " " + badge(Tone::warn, "WARN") + " " + hint("free space or lower store.max_bytes");
  }
  rowHtml(out, "Disk", html);
}

void renderKey(std::string& out, const json::Value& k, const json::Value* q) {
  std::string html = htmlEscape(k.getString("path"));
  if (!k.getBool("present")) {
    html += q == nullptr ? " not created yet (the agent creates it at first start)"
                         : " " + badge(Tone::fail, "FAIL") + " " +
                               htmlEscape(k.getString("problem")) + " " + hint("pms-agent check");
    rowHtml(out, "Key file", html);
    return;
  }
  html += " " + htmlEscape(k.getString("mode")) + " " + htmlEscape(k.getString("owner"));
  if (q != nullptr && q->getInt("key_id") > 0) {
    html += ", data key " + std::to_string(q->getInt("key_id")) + " (" +
            std::to_string(q->getInt("keys")) + (q->getInt("keys") == 1 ? " key)" : " keys)");
  }
  html += " " +
          (k.getBool("ok")
               ? badge(Tone::ok, "OK")
               : badge(Tone::fail, "FAIL") + " " + htmlEscape(k.getString("problem")) +
                     (k.getString("fix").empty() ? std::string() : " " + hint(k.getString("fix"))));
  rowHtml(out, "Key file", html);
}

void renderConfig(std::string& out, const json::Value& c, int64_t now) {
  std::string html;
  if (const json::Value* v = c.find("version"); v != nullptr && v->isInteger()) {
    html = "v" + std::to_string(v->asInt()) + " (" + htmlEscape(c.getString("origin"));
    const std::string ago = agoHtml(c.getString("applied_at"), now);
    html += (ago.empty() ? std::string() : ", applied " + ago) + ")";
  } else {
    html = htmlEscape(c.getString("origin")) + " " + htmlEscape(c.getString("file"));
  }
  if (c.getBool("locked")) {
    html += " (locked)";
  }
  rowHtml(out, "Config", html);
}

void renderHost(std::string& out, const json::Value& s, int64_t now) {
  out += "<section class=\"card\" data-part=\"host\"><h2>Host</h2><dl>";
  if (const json::Value* c = s.find("config")) {
    renderConfig(out, *c, now);
  }
  const json::Value* q = s.find("queue");
  if (const json::Value* k = s.find("key_file")) {
    renderKey(out, *k, q != nullptr && q->find("error") == nullptr ? q : nullptr);
  }
  if (const json::Value* d = s.find("disk")) {
    renderDisk(out, *d);
  }
  if (const json::Value* l = s.find("log")) {
    row(out, "Log",
        "level " + l->getString("level") + ", " + count(l->getInt("errors")) + " errors, " +
            count(l->getInt("warnings")) + " warnings since start" +
            (l->getString("file").empty() ? "" : " · " + l->getString("file")));
  }
  if (const json::Value* p = s.find("process")) {
    row(out, "Memory",
        humanBytes(static_cast<uint64_t>(std::max<int64_t>(0, p->getInt("rss_bytes")))) +
            " resident, " + count(p->getInt("open_handles")) + " open handles");
  }
  out += "</dl></section>";
}

Tone checkTone(const std::string& level) {
  return level == "OK"     ? Tone::ok
         : level == "WARN" ? Tone::warn
         : level == "FAIL" ? Tone::fail
                           : Tone::idle;
}

void renderChecks(std::string& out, const json::Value* checks, int64_t now) {
  out += "<section class=\"card wide\" data-part=\"checks\"><h2>Checks</h2>";
  if (checks == nullptr || checks->getBool("pending") || checks->find("checks") == nullptr) {
    out += "<p class=\"empty\">not run yet " + hint("pms-agent check runs them now") +
           "</p><ul class=\"list checks\" data-checks></ul></section>";
    return;
  }
  const int64_t failures = checks->getInt("failures");
  const int64_t warnings = checks->getInt("warnings");
  out += "<p class=\"state\">" +
         badge(failures > 0   ? Tone::fail
               : warnings > 0 ? Tone::warn
                              : Tone::ok,
               plural(failures, "failure") + ", " + plural(warnings, "warning"));
  if (const std::string ago = agoHtml(checks->getString("at"), now); !ago.empty()) {
    out += "<span class=\"when\">run " + ago + "</span>";
  }
  out += "</p><ul class=\"list checks\" data-checks>";
  for (const auto& c : checks->find("checks")->items()) {
    const std::string level = c.getString("level");
    out += "<li" + attr("data-check-level", level) + ">" + badge(checkTone(level), level) +
           "<span class=\"name\">" + htmlEscape(c.getString("name")) +
           "</span><span class=\"text\">" + htmlEscape(c.getString("text")) + "</span></li>";
  }
  out += "</ul></section>";
}

}  // namespace

std::string htmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(ch);
    }
  }
  return out;
}

std::string renderStatusPage(const json::Value& status, const json::Value* checks,
                             const std::vector<TrafficHistory::Point>& history, int64_t now_ms,
                             int refresh_s) {
  std::string out;
  out.reserve(24 * 1024);
  out +=
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<meta name=\"referrer\" content=\"no-referrer\"><title>pms-agent " +
      htmlEscape(status.getString("agent_id")) + "</title><style>" + kStatusPageCss +
      "</style></head><body" + attr("data-refresh-s", std::to_string(refresh_s)) + ">";
  out += "<header class=\"top\">";
  renderHeader(out, status, now_ms);
  out +=
      "<noscript><p class=\"note\">JavaScript is off: this page does not refresh. Reload it "
      "to see new figures.</p></noscript><p id=\"live\" class=\"live\" hidden></p></header>"
      "<main>";
  renderLink(out, status, now_ms);
  renderQueue(out, status, now_ms);
  renderTrafficChart(out, history, now_ms);
  renderAdapters(out, status, now_ms);
  renderErrors(out, status, now_ms);
  renderHost(out, status, now_ms);
  renderChecks(out, checks, now_ms);
  out += "</main><script>";
  out += kStatusPageScript;
  out += "</script></body></html>\n";
  return out;
}

std::string statusPageCsp() {
  auto pin = [](const char* text) {
    const auto digest = sha256(text);
    return "'sha256-" +
           base64Encode(
               std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())) +
           "'";
  };
  return "default-src 'none'; connect-src 'self'; script-src " + pin(kStatusPageScript) +
         "; style-src " + pin(kStatusPageCss) +
         "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
}

}  // namespace psa::agent::http
