// queue.* control commands: inspection (stats, list, show), the audited reveal, and the
// technician's dead-letter actions (retry, retry-all, purge) and salvage.

#include <cstdint>

#include "audit_trail.h"
#include "cli_support.h"
#include "control_handlers.h"
#include "field_policy_setup.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "status_document.h"

namespace psa::agent {
namespace {

constexpr int64_t kMaxListLimit = 1000;

// The msg_id argument, or a usage error.
bool idArg(const json::Value& args, std::string& id, ControlResponse& error) {
  id = args.getString("id");
  if (id.empty()) {
    error = replyUsage("missing the record id (msg_id)");
    return false;
  }
  if (!looksLikeMsgId(id)) {
    error = replyUsage("\"" + id.substr(0, 64) +
                       "\" is not a msg_id (26 characters of 0-9 and A-Z, as `queue list` shows)");
    return false;
  }
  return true;
}

json::Value idArgs(const std::string& id) {
  json::Value a = json::Value::object();
  a.set("id", json::Value::string(id));
  return a;
}

// Audits a state-changing command; a failure to audit is logged (the act already happened).
void audited(AgentContext& ctx, const Peer& peer, std::string_view cmd, const json::Value& args,
             const std::string& result) {
  Status st = auditCliCommand(*ctx.store, peer, cmd, args, result);
  if (!st) {
    log::Logger("control").error("audit_failed", {{"cmd", cmd}, {"error", st.error().message}});
  }
}

}  // namespace

ControlResponse queueStatsOp(store::SqliteStore& store, const json::Value&) {
  auto stats = store.stats();
  if (!stats) {
    return replyError(stats.error());
  }
  return replyOk(queueStatsJson(*stats, Clock::system()->nowMs()));
}

ControlResponse queueListOp(store::SqliteStore& store, const json::Value& args) {
  int64_t after = 0;
  int64_t limit = 100;
  std::string problem;
  if (!intArg(args, "after", 0, INT64_MAX, after, problem) ||
      !intArg(args, "limit", 1, kMaxListLimit, limit, problem)) {
    return replyUsage(problem);
  }
  const bool dead = args.getBool("dead", false);
  auto rows = store.list(dead ? store::ListFilter::dead : store::ListFilter::queued, after,
                         static_cast<size_t>(limit) + 1);
  if (!rows) {
    return replyError(rows.error());
  }
  json::Value list = json::Value::array();
  const bool more = rows->size() > static_cast<size_t>(limit);
  for (size_t i = 0; i < rows->size() && i < static_cast<size_t>(limit); ++i) {
    list.push(recordInfoJson((*rows)[i]));
  }
  json::Value r = json::Value::object();
  r.set("records", std::move(list));
  r.set("more", json::Value::boolean(more));
  return replyOk(std::move(r));
}

ControlResponse queueShowOp(store::SqliteStore& store, const json::Value& args) {
  std::string id;
  ControlResponse bad;
  if (!idArg(args, id, bad)) {
    return bad;
  }
  auto info = store.show(id);
  if (!info) {
    return replyError(info.error());
  }
  return replyOk(recordInfoJson(*info));
}

void registerQueueHandlers(ControlServer& server, AgentContext& ctx) {
  server.handle("queue.stats", [&ctx](const ControlRequest& req, const Peer&) {
    ControlResponse r = queueStatsOp(*ctx.store, req.args);
    if (r.ok && ctx.policy != nullptr && r.result.isObject()) {
      // What the field policy changed before records reached the queue (counts, no values).
      r.result.set("policy", policyStatus(ctx.policy->policy().get(), ctx.policy->totals()));
    }
    return r;
  });
  server.handle("queue.list", [&ctx](const ControlRequest& req, const Peer&) {
    return queueListOp(*ctx.store, req.args);
  });
  server.handle("queue.show", [&ctx](const ControlRequest& req, const Peer&) {
    return queueShowOp(*ctx.store, req.args);
  });

  server.handle("queue.reveal", [&ctx](const ControlRequest& req, const Peer& peer) {
    std::string id;
    ControlResponse bad;
    if (!idArg(req.args, id, bad)) {
      return bad;
    }
    auto info = ctx.store->show(id);
    if (!info) {
      audited(ctx, peer, "queue.reveal", idArgs(id), info.error().message);
      return replyError(info.error());
    }
    // The act is on record before any byte is decrypted.
    Status st = auditCliCommand(*ctx.store, peer, "queue.reveal", idArgs(id), "ok");
    if (!st) {
      return replyError(Error(Errc::io, "cannot record the reveal in the audit trail (" +
                                            st.error().message + "); nothing revealed"));
    }
    auto payload = ctx.store->reveal(id);
    if (!payload) {
      audited(ctx, peer, "queue.reveal", idArgs(id), payload.error().message);
      return replyError(payload.error());
    }
    log::Logger("control").info("payload_revealed", {{"msg_id", id}, {"peer", peer.actor()}});
    json::Value r = json::Value::object();
    r.set("record", recordInfoJson(*info));
    r.set("payload_base64", json::Value::string(base64Encode(payload->reveal())));
    r.set("actor", json::Value::string(peer.actor()));
    return replyOk(std::move(r));
  });

  server.handle("queue.retry", [&ctx](const ControlRequest& req, const Peer& peer) {
    std::string id;
    ControlResponse bad;
    if (!idArg(req.args, id, bad)) {
      return bad;
    }
    Status st = ctx.store->retryDead(id);
    audited(ctx, peer, "queue.retry", idArgs(id), st ? "ok" : st.error().message);
    if (!st) {
      return replyError(st.error());
    }
    json::Value r = json::Value::object();
    r.set("msg_id", json::Value::string(id));
    r.set("retried", json::Value::integer(1));
    return replyOk(std::move(r));
  });

  server.handle("queue.retry_all", [&ctx](const ControlRequest&, const Peer& peer) {
    auto n = ctx.store->retryAllDead();
    audited(ctx, peer, "queue.retry_all", json::Value::object(),
            n ? "ok: " + std::to_string(*n) + " retried" : n.error().message);
    if (!n) {
      return replyError(n.error());
    }
    json::Value r = json::Value::object();
    r.set("retried", json::Value::integer(static_cast<int64_t>(*n)));
    return replyOk(std::move(r));
  });

  server.handle("queue.purge_dead", [&ctx](const ControlRequest&, const Peer& peer) {
    auto n = ctx.store->purgeDead();
    audited(ctx, peer, "queue.purge_dead", json::Value::object(),
            n ? "ok: " + std::to_string(*n) + " purged" : n.error().message);
    if (!n) {
      return replyError(n.error());
    }
    json::Value r = json::Value::object();
    r.set("purged", json::Value::integer(static_cast<int64_t>(*n)));
    return replyOk(std::move(r));
  });

  server.handle("queue.salvage", [&ctx](const ControlRequest& req, const Peer& peer) {
    const std::string file = req.args.getString("file");
    if (file.empty() || file.front() != '/') {
      return replyUsage("salvage needs the absolute path of a moved-aside database file");
    }
    json::Value args = json::Value::object();
    args.set("file", json::Value::string(file));
    auto rep = ctx.store->salvage(file);
    audited(ctx, peer, "queue.salvage", args,
            rep ? "ok: " + std::to_string(rep->imported) + " imported" : rep.error().message);
    if (!rep) {
      return replyError(rep.error());
    }
    json::Value r = json::Value::object();
    r.set("imported", json::Value::integer(static_cast<int64_t>(rep->imported)));
    r.set("already_present", json::Value::integer(static_cast<int64_t>(rep->already_present)));
    r.set("unreadable", json::Value::integer(static_cast<int64_t>(rep->unreadable)));
    return replyOk(std::move(r));
  });
}

}  // namespace psa::agent
