// The status document: one JSON object a script (or the cloud, on P/status) can rely on, and
// that `pms-agent status` renders for people. Stable keys; counts, states and errors in words;
// never PHI.
#include <sys/statvfs.h>

#include "agent_context.h"
#include "psa/store/clock.h"
#include "psa/store/record.h"

#ifndef PSA_VERSION
#define PSA_VERSION "0.0.0"
#endif

namespace psa::agent {
namespace {

json::Value i64(int64_t v) { return json::Value::integer(v); }
json::Value u64(uint64_t v) { return json::Value::integer(static_cast<int64_t>(v)); }
json::Value str(std::string s) { return json::Value::string(std::move(s)); }

json::Value adapterStatus(const adapters::Source& source) {
  adapters::SourceStatus st = source.status();
  json::Value a = json::Value::object();
  a.set("name", str(source.name()));
  a.set("type", str(source.type()));
  a.set("state", str(st.state));
  a.set("healthy", json::Value::boolean(st.healthy));
  a.set("last_message_at", st.last_message_ms ? str(formatRfc3339(st.last_message_ms)) : json::Value::null());
  a.set("last_error", st.last_error.empty() ? json::Value::null() : str(st.last_error));
  a.set("last_error_at", st.last_error_ms ? str(formatRfc3339(st.last_error_ms)) : json::Value::null());
  json::Value counters = json::Value::object();
  for (const auto& [k, v] : st.counters) {
    counters.set(k, u64(v));
  }
  a.set("counters", std::move(counters));
  a.set("detail", std::move(st.detail));
  return a;
}

json::Value queueStatus(store::SqliteStore& store, int64_t now_ms) {
  json::Value q = json::Value::object();
  auto stats = store.stats();
  if (!stats) {
    q.set("error", str(stats.error().message));
    return q;
  }
  const store::QueueStats& s = *stats;
  q.set("pending", u64(s.pending));
  q.set("leased", u64(s.leased));
  q.set("retry", u64(s.retry));
  q.set("dead", u64(s.dead));
  q.set("pending_bytes", u64(s.pending_bytes));
  q.set("db_bytes", u64(s.db_bytes));
  q.set("max_bytes", u64(s.max_bytes));
  q.set("oldest_pending_age_s",
        s.oldest_pending_ms ? json::Value::number(static_cast<double>(now_ms - s.oldest_pending_ms) / 1000.0)
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
  q.set("key_id", u64(s.current_key_id));
  q.set("keys", u64(s.key_count));
  return q;
}

json::Value diskStatus(const std::filesystem::path& dir) {
  json::Value d = json::Value::object();
  d.set("path", str(dir.string()));
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) {
    d.set("error", str("cannot stat the state directory"));
    return d;
  }
  const uint64_t total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  const uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  d.set("total_bytes", u64(total));
  d.set("free_bytes", u64(avail));
  d.set("used_percent", json::Value::number(total ? 100.0 * static_cast<double>(total - avail) / static_cast<double>(total) : 0.0));
  return d;
}

}  // namespace

json::Value buildStatus(const AgentContext& ctx) {
  const Config& cfg = *ctx.config;
  const int64_t now = Clock::system()->nowMs();
  json::Value s = json::Value::object();
  s.set("state", str("online"));
  s.set("agent_id", str(cfg.agent_id));
  s.set("tenant", str(cfg.tenant));
  s.set("version", str(PSA_VERSION));
  s.set("at", str(formatRfc3339(now)));
  s.set("started_at", str(formatRfc3339(ctx.started_ms)));
  s.set("uptime_s", i64((now - ctx.started_ms) / 1000));
  json::Value list = json::Value::array();
  if (ctx.sources) {
    for (const auto& source : ctx.sources()) {
      list.push(adapterStatus(*source));
    }
  }
  s.set("adapters", std::move(list));
  if (ctx.link != nullptr) {
    auto parsed = json::parse(ctx.link->status().toJson());
    s.set("cloud", parsed ? std::move(parsed).value() : json::Value::object());
  } else {
    json::Value c = json::Value::object();
    c.set("configured", json::Value::boolean(false));
    s.set("cloud", std::move(c));
  }
  if (ctx.store != nullptr) {
    s.set("queue", queueStatus(*ctx.store, now));
  }
  s.set("disk", diskStatus(cfg.state_dir));
  return s;
}

}  // namespace psa::agent
