// The status document: one JSON object a script (or the cloud, on P/status) can rely on, and
// that `pms-agent status` renders for people. Stable keys; counts, states and errors in words;
// never PHI.
#include "status_document.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "agent_context.h"
#include "build_info.h"
#include "field_policy_setup.h"
#include "psa/store/clock.h"
#include "psa/store/log.h"
#include "psa/store/os/process_info.h"
#include "psa/store/os/secret_file.h"
#include "psa/store/record.h"
#include "queue_budget.h"

namespace psa::agent {
namespace {

json::Value i64(int64_t v) { return json::Value::integer(v); }
json::Value u64(uint64_t v) { return json::Value::integer(static_cast<int64_t>(v)); }
json::Value str(std::string s) { return json::Value::string(std::move(s)); }
json::Value timeOrNull(int64_t ms) { return ms ? str(formatRfc3339(ms)) : json::Value::null(); }

json::Value adapterStatus(const adapters::Source& source) {
  adapters::SourceStatus st = source.status();
  json::Value a = json::Value::object();
  a.set("name", str(source.name()));
  a.set("type", str(source.type()));
  a.set("state", str(st.state));
  a.set("healthy", json::Value::boolean(st.healthy));
  a.set("last_message_at", timeOrNull(st.last_message_ms));
  a.set("last_error", st.last_error.empty() ? json::Value::null() : str(st.last_error));
  a.set("last_error_at", timeOrNull(st.last_error_ms));
  json::Value counters = json::Value::object();
  for (const auto& [k, v] : st.counters) {
    counters.set(k, u64(v));
  }
  a.set("counters", std::move(counters));
  a.set("detail", std::move(st.detail));
  return a;
}

json::Value logStatus(const Config& cfg) {
  json::Value l = json::Value::object();
  l.set("level", str(std::string(log::levelName(log::level()))));
  l.set("file", cfg.log_file.empty() ? json::Value::null() : str(cfg.log_file.string()));
  l.set("errors", u64(log::linesWritten(log::Level::error)));
  l.set("warnings", u64(log::linesWritten(log::Level::warn)));
  return l;
}

// Placeholder until remote management reports versions and the config lock.
json::Value localConfigState(const Config& cfg) {
  json::Value c = json::Value::object();
  c.set("file", str(cfg.source_file.string()));
  c.set("origin", str("local"));
  c.set("version", json::Value::null());
  c.set("applied_at", json::Value::null());
  c.set("locked", json::Value::boolean(false));
  return c;
}

json::Value cloudNotRunning(const Config& cfg) {
  json::Value c = json::Value::object();
  c.set("configured", json::Value::boolean(cfg.cloud.configured));
  if (cfg.cloud.configured) {
    c.set("url", str(cfg.cloud.url));
  }
  c.set("state", str(cfg.cloud.configured ? "not running" : "not configured"));
  c.set("connected", json::Value::boolean(false));
  return c;
}

}  // namespace

json::Value queueStatsJson(const store::QueueStats& s, int64_t now_ms) {
  json::Value q = json::Value::object();
  q.set("pending", u64(s.pending));
  q.set("leased", u64(s.leased));
  q.set("retry", u64(s.retry));
  q.set("dead", u64(s.dead));
  q.set("delivered_retained", u64(s.delivered_retained));
  q.set("pending_bytes", u64(s.pending_bytes));
  q.set("db_bytes", u64(s.db_bytes));
  q.set("max_bytes", u64(s.max_bytes));
  q.set("oldest_pending_at", timeOrNull(s.oldest_pending_ms));
  q.set("oldest_pending_age_s",
        s.oldest_pending_ms
            ? json::Value::number(static_cast<double>(now_ms - s.oldest_pending_ms) / 1000.0)
            : json::Value::null());
  json::Value kinds = json::Value::object();
  for (const auto& [kind, ks] : s.by_kind) {
    json::Value k = json::Value::object();
    k.set("pending", u64(ks.pending));
    k.set("bytes", u64(ks.bytes));
    k.set("dead", u64(ks.dead));
    kinds.set(std::string(store::kindName(kind)), std::move(k));
  }
  q.set("by_kind", std::move(kinds));
  q.set("appended_total", u64(s.appended_total));
  q.set("delivered_total", u64(s.delivered_total));
  q.set("duplicates_total", u64(s.duplicates_total));
  q.set("dedupe_entries", u64(s.dedupe_entries));
  q.set("dedupe_max_entries", u64(s.dedupe_max_entries));
  q.set("dedupe_window_cut_s",
        s.dedupe_window_s > 0 ? json::Value::integer(s.dedupe_window_s) : json::Value::null());
  q.set("key_id", u64(s.current_key_id));
  q.set("keys", u64(s.key_count));
  return q;
}

json::Value queueStatusJson(store::SqliteStore& store, int64_t now_ms) {
  auto stats = store.stats();
  if (!stats) {
    json::Value q = json::Value::object();
    q.set("error", str(stats.error().message));
    return q;
  }
  return queueStatsJson(*stats, now_ms);
}

json::Value diskStatusJson(const std::filesystem::path& state_dir) {
  json::Value d = json::Value::object();
  // Before the first start the state dir may not exist: measure the nearest existing parent.
  std::filesystem::path dir = state_dir;
  std::error_code ec;
  while (!dir.empty() && dir != dir.parent_path() && !std::filesystem::exists(dir, ec)) {
    dir = dir.parent_path();
  }
  d.set("path", str(dir.string()));
  const std::filesystem::space_info space = std::filesystem::space(dir, ec);
  if (ec) {
    d.set("error", str("cannot stat the state directory"));
    return d;
  }
  const uint64_t total = space.capacity;
  const uint64_t avail = space.available;
  d.set("total_bytes", u64(total));
  d.set("free_bytes", u64(avail));
  d.set("used_percent",
        json::Value::number(
            total ? 100.0 * static_cast<double>(total - avail) / static_cast<double>(total) : 0.0));
  return d;
}

json::Value keyFileStatusJson(const std::filesystem::path& key_file) {
  json::Value k = json::Value::object();
  k.set("path", str(key_file.string()));
  const os::SecretFileInfo info = os::describeSecretFile(key_file);
  k.set("present", json::Value::boolean(info.present));
  if (!info.present) {
    k.set("ok", json::Value::boolean(false));
    k.set("problem", str(info.problem));
    return k;
  }
  // "mode": the POSIX mode ("0600"), or on Windows who may use the file.
  k.set("mode", str(info.permissions));
  if (info.owner_uid >= 0) {
    k.set("uid", i64(info.owner_uid));
  }
  k.set("owner", str(info.owner));
  k.set("size", u64(info.size));
  k.set("ok", json::Value::boolean(info.problem.empty()));
  k.set("problem", info.problem.empty() ? json::Value::null() : str(info.problem));
  k.set("fix", info.fix.empty() ? json::Value::null() : str(info.fix));
  return k;
}

json::Value recordInfoJson(const store::RecordInfo& r) {
  json::Value v = json::Value::object();
  v.set("msg_id", str(r.msg_id));
  v.set("seq", i64(r.seq));
  v.set("state", str(r.state));
  v.set("source", str(r.source));
  v.set("vendor", str(r.vendor));
  v.set("kind", str(std::string(store::kindName(r.kind))));
  v.set("format", str(r.format));
  v.set("received_at", timeOrNull(r.received_at_ms));
  v.set("size", u64(r.size));
  v.set("attempts", u64(r.attempts));
  v.set("next_attempt_at", timeOrNull(r.next_attempt_ms));
  v.set("reason", r.reason.empty() ? json::Value::null() : str(r.reason));
  v.set("dead_at", timeOrNull(r.dead_at_ms));
  v.set("key_id", u64(r.key_id));
  return v;
}

json::Value configuredAdaptersJson(const Config& cfg) {
  json::Value list = json::Value::array();
  for (const auto& a : cfg.adapters) {
    json::Value v = json::Value::object();
    v.set("name", str(a.getString("name")));
    v.set("type", str(a.getString("type")));
    const bool enabled = a.getBool("enabled", true);
    v.set("state", str(enabled ? "not running" : "disabled"));
    v.set("healthy", json::Value::boolean(!enabled));
    list.push(std::move(v));
  }
  return list;
}

json::Value buildStatus(const AgentContext& ctx, StatusScope scope) {
  // The config in effect now: a remote config or SIGHUP may have replaced the adapters since
  // the start (identity and paths are the same in both).
  ConfigPtr effective = ctx.currentConfig ? ctx.currentConfig() : nullptr;
  if (!effective) {
    effective = ctx.config;
  }
  const Config& cfg = *effective;
  const int64_t now = Clock::system()->nowMs();
  json::Value s = json::Value::object();
  s.set("state", str("online"));
  s.set("agent_id", str(cfg.agent_id));
  s.set("tenant", str(cfg.tenant));
  s.set("version", str(kAgentVersion));
  s.set("pid", i64(os::currentProcessId()));
  s.set("at", str(formatRfc3339(now)));
  s.set("started_at", str(formatRfc3339(ctx.started_ms)));
  s.set("uptime_s", i64((now - ctx.started_ms) / 1000));
  const bool full = scope == StatusScope::full;
  if (full) {
    // The process's own footprint, for long-run checks (memory and handles must stay flat).
    const os::ResourceUsage usage = os::resourceUsage();
    json::Value process = json::Value::object();
    process.set("rss_bytes", u64(usage.rss_bytes));
    process.set("cpu_seconds", json::Value::number(usage.cpu_seconds));
    process.set("open_handles", i64(usage.open_handles));
    s.set("process", std::move(process));
  }
  s.set("config", ctx.config_state ? ctx.config_state() : localConfigState(cfg));
  if (ctx.http_state) {
    s.set("http", ctx.http_state());
  }
  json::Value list = json::Value::array();
  std::vector<std::string> running;
  if (ctx.sources) {
    for (const auto& source : ctx.sources()) {
      running.push_back(source->name());
      list.push(adapterStatus(*source));
    }
  }
  // Configured adapters that are not running (disabled, or failed to start) are listed too.
  json::Value configured = configuredAdaptersJson(cfg);
  for (auto& a : configured.items()) {
    if (std::find(running.begin(), running.end(), a.getString("name")) == running.end()) {
      if (a.getString("state") != "disabled") {
        a.set("state", str("failed"));
        a.set("last_error", str("not started (see the log: adapter_create_failed / "
                                "adapter_start_failed)"));
      }
      list.push(std::move(a));
    }
  }
  s.set("adapters", std::move(list));
  if (ctx.link != nullptr) {
    auto parsed = json::parse(ctx.link->status().toJson());
    json::Value c = parsed ? std::move(parsed).value() : json::Value::object();
    c.set("configured", json::Value::boolean(true));
    s.set("cloud", std::move(c));
  } else {
    json::Value c = json::Value::object();
    c.set("configured", json::Value::boolean(false));
    c.set("state", str("not configured"));
    c.set("connected", json::Value::boolean(false));
    s.set("cloud", std::move(c));
  }
  if (ctx.store != nullptr) {
    json::Value q = queueStatusJson(*ctx.store, now);
    if (!q.find("error")) {
      const IntakeRefusals seen = ctx.intake != nullptr ? ctx.intake->refusals() : IntakeRefusals{};
      q.set("budget", queueBudgetJson(static_cast<uint64_t>(q.getInt("db_bytes")),
                                      static_cast<uint64_t>(q.getInt("max_bytes")), &seen));
    }
    s.set("queue", std::move(q));
  }
  if (ctx.policy != nullptr) {
    s.set("policy", policyStatus(ctx.policy->policy().get(), ctx.policy->totals()));
  }
  if (full) {
    s.set("key_file", keyFileStatusJson(cfg.store.key_file));
    s.set("disk", diskStatusJson(cfg.state_dir));
    s.set("log", logStatus(cfg));
  }
  return s;
}

json::Value buildOfflineStatus(const Config& cfg, store::SqliteStore* store,
                               const std::string& reason, const std::string& store_error) {
  const int64_t now = Clock::system()->nowMs();
  json::Value s = json::Value::object();
  s.set("state", str("not running"));
  s.set("reason", str(reason));
  s.set("agent_id", str(cfg.agent_id));
  s.set("tenant", str(cfg.tenant));
  s.set("version", str(kAgentVersion));
  s.set("at", str(formatRfc3339(now)));
  s.set("config", localConfigState(cfg));
  s.set("adapters", configuredAdaptersJson(cfg));
  s.set("cloud", cloudNotRunning(cfg));
  if (store != nullptr) {
    json::Value q = queueStatusJson(*store, now);
    if (!q.find("error")) {
      q.set("budget", queueBudgetJson(static_cast<uint64_t>(q.getInt("db_bytes")),
                                      static_cast<uint64_t>(q.getInt("max_bytes")), nullptr));
    }
    s.set("queue", std::move(q));
  } else {
    json::Value q = json::Value::object();
    q.set("error", str(store_error));
    s.set("queue", std::move(q));
  }
  s.set("key_file", keyFileStatusJson(cfg.store.key_file));
  s.set("disk", diskStatusJson(cfg.state_dir));
  return s;
}

}  // namespace psa::agent
