// RemoteManager's uploads to the cloud: audit entries on P/audit (the cursor advances only on
// PUBACK and is kept in the store; unauthenticated junk is audited at a bounded rate) and
// P/status on state changes and at cloud.status_interval_s. Worker thread.
#include "psa/store/clock.h"
#include "remote_json.h"
#include "remote_manager.h"

namespace psa::agent {

using namespace remote_json;

namespace {

constexpr size_t kAuditBatchEntries = 200;
constexpr size_t kAuditBatchBytes = 256 * 1024;
constexpr const char* kAgentScope = kAuditUploadScope;
constexpr const char* kAuditCursorKey = kAuditUploadKey;

}  // namespace

// ------------------------------------------------------------------------------ audit

void RemoteManager::audit(std::string actor, std::string action, json::Value detail) {
  if (ctx_.store == nullptr) {
    return;
  }
  store::AuditEntry e;
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.detail = json::serialize(detail);
  ctx_.store->audit(std::move(e), [this](Status st) {
    if (!st) {
      log_.error("audit_failed", {{"error", st.error().message}});
      return;
    }
    post([this] { uploadAudit(); });
  });
}

void RemoteManager::auditUnauthenticated(const std::string& action, const Rejection& rejection) {
  // Anyone who can publish to our topics can send junk: audit it, but at a bounded rate so a
  // flood cannot grow the audit log without limit. The next entry counts what was skipped.
  uint64_t suppressed = 0;
  if (!unauth_audits_.take(suppressed)) {
    return;
  }
  json::Value detail = json::Value::object();
  detail.set("reason", str(std::string(rejectReasonName(rejection.reason))));
  detail.set("error", str(rejection.message.substr(0, 500)));
  detail.set("authenticated", json::Value::boolean(false));
  if (suppressed > 0) {
    detail.set("suppressed_before", i64(static_cast<int64_t>(suppressed)));
  }
  audit("unauthenticated", action, std::move(detail));
}

void RemoteManager::uploadAudit() {
  cloudlink::CloudLink* link = ctx_.link;
  if (link == nullptr || ctx_.store == nullptr || audit_inflight_ || !link->status().connected) {
    return;
  }
  auto entries = ctx_.store->auditEntries(audit_cursor_, kAuditBatchEntries);
  if (!entries) {
    log_.warn("audit_read_failed", {{"error", entries.error().message}});
    return;
  }
  if (entries->empty()) {
    return;
  }
  const ConfigPtr cfg = currentConfig();
  json::Value list = json::Value::array();
  size_t bytes = 0;
  int64_t last = audit_cursor_;
  for (const auto& e : *entries) {
    json::Value o = json::Value::object();
    o.set("seq", i64(e.seq));
    o.set("at_ms", i64(e.at_ms));
    o.set("at", str(formatRfc3339(e.at_ms)));
    o.set("actor", str(e.actor));
    o.set("action", str(e.action));
    o.set("detail", str(e.detail));
    o.set("prev_hash", str(e.prev_hash));
    o.set("hash", str(e.hash));
    bytes += e.detail.size() + e.actor.size() + e.action.size() + 200;
    list.push(std::move(o));
    last = e.seq;
    if (bytes >= kAuditBatchBytes) {
      break;
    }
  }
  json::Value batch = json::Value::object();
  batch.set("agent_id", str(cfg->agent_id));
  batch.set("tenant", str(cfg->tenant));
  batch.set("first_seq", i64(entries->front().seq));
  batch.set("last_seq", i64(last));
  batch.set("count", i64(static_cast<int64_t>(list.items().size())));
  batch.set("entries", std::move(list));
  audit_inflight_ = true;
  link->publishAudit(json::serialize(batch), [this, last](Status st) {
    if (stopping_) {
      return;
    }
    post([this, last, st] {
      audit_inflight_ = false;
      if (!st) {
        log_.warn("audit_upload_failed", {{"last_seq", last}, {"error", st.error().message}});
        return;  // the next tick sends the same batch again
      }
      audit_cursor_ = last;
      log_.debug("audit_uploaded", {{"last_seq", last}});
      persistAuditCursor(last);
      uploadAudit();
    });
  });
}

void RemoteManager::persistAuditCursor(int64_t seq) {
  store::AppendBatch batch;
  batch.watermarks.push_back(
      store::WatermarkUpdate{kAgentScope, kAuditCursorKey, std::to_string(seq)});
  ctx_.store->append(std::move(batch), [this, seq](Result<store::AppendResult> r) {
    if (!r) {
      // Kept in memory; the next batch persists a later cursor. After a restart the cloud may
      // see entries again and de-duplicates them by seq.
      log_.warn("audit_cursor_not_saved", {{"seq", seq}, {"error", r.error().message}});
    }
  });
}

// ------------------------------------------------------------------------------ status

void RemoteManager::tick() {
  checkStatus(false);
  uploadAudit();
  if (upgrade_) {
    upgrade_->tick();
  }
}

void RemoteManager::checkStatus(bool force) {
  // Every tick looks only at what can trigger a publish; the whole document (host facts
  // included, which cost system calls) is built when it goes out, and refreshed for the
  // link's cache every kCachedStatusMaxAge.
  json::Value status = buildStatus(ctx_, StatusScope::signals);
  // What counts as a state change: adapter state/health/error, link state and error, queue
  // crossing 50/80/95 % of its budget, refusing input, dead letters appearing, delivery
  // stalling, config.
  std::string sig;
  if (const json::Value* list = status.find("adapters")) {
    for (const auto& a : list->items()) {
      sig += a.getString("name") + "=" + a.getString("state") +
             (a.getBool("healthy", true) ? "+" : "-");
      if (const json::Value* e = a.find("last_error"); e != nullptr && e->isString()) {
        sig += "!" + e->asString();
      }
      sig += ";";
    }
  }
  if (const json::Value* c = status.find("cloud")) {
    sig += "link=" + c->getString("state") + "|" + c->getString("last_error") + ";";
  }
  if (const json::Value* q = status.find("queue")) {
    const double used = static_cast<double>(q->getInt("db_bytes"));
    const double max = static_cast<double>(std::max<int64_t>(1, q->getInt("max_bytes")));
    const double pct = 100.0 * used / max;
    const int bucket = pct >= 95 ? 3 : pct >= 80 ? 2 : pct >= 50 ? 1 : 0;
    const json::Value* age = q->find("oldest_pending_age_s");
    const bool stalled = age != nullptr && age->isNumber() && age->asNumber() > 300;
    // Refusing input (the budget's "full") is news the cloud should have at once.
    const json::Value* budget = q->find("budget");
    const bool refusing = budget != nullptr && budget->getBool("refusing");
    sig += "queue=" + std::to_string(bucket) + (q->getInt("dead") > 0 ? "d" : "") +
           (stalled ? "s" : "") + (refusing ? "r" : "") + ";";
  }
  if (const json::Value* c = status.find("config")) {
    sig += "config=" + std::to_string(c->getInt("version")) + c->getString("origin") +
           (c->getBool("locked") ? "L" : "") + ";";
  }
  const auto now = std::chrono::steady_clock::now();
  const int interval_s = currentConfig()->cloud.status_interval_s;
  const bool due = now - last_status_ >= std::chrono::seconds(interval_s);
  const bool publish = ctx_.link != nullptr && (force || due || sig != status_signature_);
  if (!publish && now - cached_at_ < kCachedStatusMaxAge) {
    return;
  }
  std::string text = json::serialize(buildStatus(ctx_));
  {
    std::lock_guard lock(mu_);
    cached_status_ = text;
  }
  cached_at_ = now;
  if (!publish) {
    return;
  }
  if (sig != status_signature_ && !status_signature_.empty()) {
    log_.debug("status_changed");
  }
  status_signature_ = std::move(sig);
  last_status_ = now;
  ctx_.link->publishStatus(std::move(text));
}

}  // namespace psa::agent
