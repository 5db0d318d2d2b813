// audit.*, keys.rotate and log.* control commands.
#include <cstdint>

#include "audit_trail.h"
#include "control_handlers.h"
#include "psa/store/clock.h"
#include "psa/store/log.h"
#include "status_document.h"

namespace psa::agent {
namespace {

constexpr int64_t kMaxRecentLines = 2000;
constexpr int64_t kMaxAuditPage = 1000;

void audited(AgentContext& ctx, const Peer& peer, std::string_view cmd, const json::Value& args,
             const std::string& result) {
  Status st = auditCliCommand(*ctx.store, peer, cmd, args, result);
  if (!st) {
    log::Logger("control").error("audit_failed", {{"cmd", cmd}, {"error", st.error().message}});
  }
}

// The config now in effect (a remote config or SIGHUP may have changed agent.log_level since
// the start), not the one the agent started with.
log::Level configuredLevel(const AgentContext& ctx) {
  ConfigPtr running = ctx.currentConfig ? ctx.currentConfig() : nullptr;
  return (running ? running : ctx.config)->log_level;
}

}  // namespace

Result<json::Value> auditVerifyJson(store::SqliteStore& store) {
  auto v = store.verifyAudit();
  if (!v) {
    return v.error();
  }
  json::Value r = json::Value::object();
  r.set("ok", json::Value::boolean(v->ok));
  r.set("entries", json::Value::integer(static_cast<int64_t>(v->entries)));
  int64_t first = 0;
  if (auto head = store.auditEntries(0, 1); head && !head->empty()) {
    first = head->front().seq;
  }
  r.set("first_seq", json::Value::integer(first));
  r.set("last_seq", json::Value::integer(v->entries ? first + static_cast<int64_t>(v->entries) - 1 : 0));
  if (!v->ok) {
    r.set("first_bad_seq", json::Value::integer(v->first_bad_seq));
    r.set("problem", json::Value::string(v->problem));
  }
  return r;
}

json::Value auditEntryJson(const store::AuditEntry& e) {
  json::Value v = json::Value::object();
  v.set("seq", json::Value::integer(e.seq));
  v.set("at", json::Value::string(formatRfc3339(e.at_ms)));
  v.set("actor", json::Value::string(e.actor));
  v.set("action", json::Value::string(e.action));
  auto detail = json::parse(e.detail);
  v.set("detail", detail ? std::move(detail).value() : json::Value::string(e.detail));
  v.set("hash", json::Value::string(e.hash));
  return v;
}

ControlResponse auditVerifyOp(store::SqliteStore& store, const json::Value&) {
  auto r = auditVerifyJson(store);
  if (!r) {
    return replyError(r.error());
  }
  return replyOk(std::move(r).value());
}

ControlResponse auditEntriesOp(store::SqliteStore& store, const json::Value& args) {
  int64_t after = 0;
  int64_t limit = 100;
  std::string problem;
  if (!intArg(args, "after", 0, INT64_MAX, after, problem) ||
      !intArg(args, "limit", 1, kMaxAuditPage, limit, problem)) {
    return replyUsage(problem);
  }
  auto entries = store.auditEntries(after, static_cast<size_t>(limit));
  if (!entries) {
    return replyError(entries.error());
  }
  json::Value list = json::Value::array();
  for (const auto& e : *entries) {
    list.push(auditEntryJson(e));
  }
  json::Value r = json::Value::object();
  r.set("entries", std::move(list));
  return replyOk(std::move(r));
}

void registerAdminHandlers(ControlServer& server, AgentContext& ctx) {
  server.handle("audit.verify", [&ctx](const ControlRequest& req, const Peer&) {
    return auditVerifyOp(*ctx.store, req.args);
  });
  server.handle("audit.entries", [&ctx](const ControlRequest& req, const Peer&) {
    return auditEntriesOp(*ctx.store, req.args);
  });

  server.handle("keys.rotate", [&ctx](const ControlRequest&, const Peer& peer) {
    auto id = ctx.store->rotateKey();
    audited(ctx, peer, "keys.rotate", json::Value::object(),
            id ? "ok: key " + std::to_string(*id) : id.error().message);
    if (!id) {
      return replyError(id.error());
    }
    auto stats = ctx.store->stats();
    json::Value r = json::Value::object();
    r.set("key_id", json::Value::integer(*id));
    r.set("keys", json::Value::integer(stats ? static_cast<int64_t>(stats->key_count) : 0));
    return replyOk(std::move(r));
  });

  server.handle("log.level", [&ctx](const ControlRequest& req, const Peer& peer) {
    const log::Level previous = log::level();
    json::Value r = json::Value::object();
    r.set("previous", json::Value::string(std::string(log::levelName(previous))));
    const json::Value* requested = req.args.find("level");
    if (requested == nullptr) {
      r.set("level", json::Value::string(std::string(log::levelName(previous))));
      r.set("config_level", json::Value::string(std::string(log::levelName(configuredLevel(ctx)))));
      return replyOk(std::move(r));
    }
    log::Level next;
    if (!requested->isString() || requested->asString() == "off" ||
        !log::parseLevel(requested->asString(), next)) {
      return replyUsage("unknown log level \"" +
                        (requested->isString() ? requested->asString().substr(0, 32) : "") +
                        "\" (expected debug, info, warn or error)");
    }
    json::Value args = json::Value::object();
    args.set("level", json::Value::string(std::string(log::levelName(next))));
    log::setLevel(next);
    // Logged at warn so the change is visible at every level but error.
    log::Logger("control").warn(
        "log_level_changed",
        {{"to", log::levelName(next)}, {"from", log::levelName(previous)}, {"peer", peer.actor()}});
    audited(ctx, peer, "log.level", args, "ok");
    r.set("level", json::Value::string(std::string(log::levelName(next))));
    r.set("config_level", json::Value::string(std::string(log::levelName(configuredLevel(ctx)))));
    return replyOk(std::move(r));
  });

  server.handle("log.recent", [](const ControlRequest& req, const Peer&) {
    int64_t n = 500;
    std::string problem;
    if (!intArg(req.args, "lines", 1, kMaxRecentLines, n, problem)) {
      return replyUsage(problem);
    }
    json::Value lines = json::Value::array();
    for (auto& l : log::recentLines(static_cast<size_t>(n))) {
      lines.push(json::Value::string(std::move(l)));
    }
    json::Value r = json::Value::object();
    r.set("lines", std::move(lines));
    return replyOk(std::move(r));
  });
}

}  // namespace psa::agent
