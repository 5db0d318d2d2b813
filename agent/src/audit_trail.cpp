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

Status auditCliCommand(store::SqliteStore& store, const Peer& peer, std::string_view cmd,
                       const json::Value& args, const std::string& result) {
  json::Value d = json::Value::object();
  d.set("pid", json::Value::integer(peer.pid));
  d.set("args", args.isObject() ? args : json::Value::object());
  d.set("result", text(result));
  return auditAct(store, peer.actor(), "cli." + std::string(cmd), d);
}

}  // namespace psa::agent
