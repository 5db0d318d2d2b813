#include "audit_trail.h"

#include <future>

#include "psa/store/clock.h"

namespace psa::agent {
namespace {

constexpr size_t kMaxText = 1000;

json::Value text(std::string_view s) {
  return json::Value::string(std::string(s.substr(0, kMaxText)));
}

}  // namespace

Status auditAct(store::SqliteStore& store, std::string actor, std::string action,
                const json::Value& detail) {
  store::AuditEntry e;
  e.at_ms = Clock::system()->nowMs();
  e.actor = std::move(actor);
  e.action = std::move(action);
  e.detail = json::serialize(detail);
  auto done = std::make_shared<std::promise<Status>>();
  auto future = done->get_future();
  store.audit(std::move(e), [done](Status st) { done->set_value(std::move(st)); });
  return future.get();
}

std::string uidActor(uid_t uid) { return "uid:" + std::to_string(uid); }

Status auditCliCommand(store::SqliteStore& store, uid_t uid, pid_t pid, std::string_view cmd,
                       const json::Value& args, const std::string& result) {
  json::Value d = json::Value::object();
  d.set("pid", json::Value::integer(pid));
  d.set("args", args.isObject() ? args : json::Value::object());
  d.set("result", text(result));
  return auditAct(store, uidActor(uid), "cli." + std::string(cmd), d);
}

Status auditConfigApplied(store::SqliteStore& store, std::string actor, int64_t version,
                          std::string_view origin) {
  json::Value d = json::Value::object();
  d.set("version", json::Value::integer(version));
  d.set("origin", text(origin));
  return auditAct(store, std::move(actor), "config.applied", d);
}

Status auditConfigRejected(store::SqliteStore& store, std::string actor, int64_t version,
                           std::string_view origin, std::string_view error) {
  json::Value d = json::Value::object();
  d.set("version", json::Value::integer(version));
  d.set("origin", text(origin));
  d.set("error", text(error));
  return auditAct(store, std::move(actor), "config.rejected", d);
}

Status auditRemoteCommand(store::SqliteStore& store, std::string_view id, std::string_view command,
                          std::string_view result) {
  json::Value d = json::Value::object();
  d.set("id", text(id));
  d.set("command", text(command));
  d.set("result", text(result));
  return auditAct(store, "cloud", "cmd." + std::string(command.substr(0, 64)), d);
}

}  // namespace psa::agent
