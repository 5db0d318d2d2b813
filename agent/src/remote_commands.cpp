// RemoteManager's signed commands (P/cmd/{name}): verified, replay-checked, run, audited and
// answered on P/cmd/result; `bundle` answers with the support bundle in chunks. Worker thread.
#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "remote_bundle.h"
#include "remote_json.h"
#include "remote_manager.h"

namespace psa::agent {

using namespace remote_json;

namespace {

constexpr size_t kBundleChunkBytes = 128 * 1024;

// Unknown members of a command's args are refused: a typo must not silently do something else.
std::optional<Rejection> checkArgs(const json::Value& args,
                                   std::initializer_list<const char*> known) {
  std::vector<PathError> errors;
  for (const auto& [k, v] : args.members()) {
    bool ok = false;
    for (const char* name : known) {
      ok = ok || k == name;
    }
    if (!ok) {
      errors.push_back(PathError{"args." + k, "unknown argument"});
    }
  }
  if (errors.empty()) {
    return std::nullopt;
  }
  return makeRejection(RejectReason::bad_args, "invalid arguments: " + firstErrors(errors), errors);
}

const std::vector<std::string>& knownCommands() {
  static const std::vector<std::string> names = {
      "ping", "status", "restart-adapter", "set-log-level", "rotate-key", "retry-dead", "bundle", "upgrade"};
  return names;
}

}  // namespace

void RemoteManager::handleCommand(const std::string& name, const std::string& text) {
  const int64_t now = Clock::system()->nowMs();
  const ConfigPtr running = currentConfig();
  auto opened = openCommandDocument(text, keys_, running->agent_id, name, now);
  const CommandDocument& cmd = opened.doc;
  std::optional<Rejection> rejection = std::move(opened.rejection);
  if (rejection && !opened.authentic) {
    log_.warn("command_rejected",
              {{"command", name}, {"reason", rejectReasonName(rejection->reason)}});
    auditUnauthenticated("command.rejected", *rejection);
    reportCommand(cmd.id, name, rejection, json::Value::object());
    return;
  }
  if (!rejection && state_->commandSeen(cmd.id)) {
    rejection =
        makeRejection(RejectReason::replay, "command id \"" + cmd.id + "\" was already received");
  }
  if (!rejection) {
    if (Status st = state_->rememberCommand(cmd.id, cmd.expires_at_ms, now); !st) {
      rejection = makeRejection(RejectReason::failed,
                                "cannot record the command id (" + st.error().message + ")");
    }
  }
  json::Value data = json::Value::object();
  bool reported = false;
  if (!rejection) {
    if (cmd.command == "upgrade" && upgrade_) {
      // Reports (and audits) each of its stages itself; the audit entry below records the
      // command's arrival.
      upgrade_->onCommand(cmd, text);
      reported = true;
    } else if (cmd.command == "bundle") {
      rejection = checkArgs(cmd.args, {});
      if (!rejection) {
        publishBundle(cmd);
        reported = true;
      }
    } else {
      rejection = runCommand(cmd, data);
    }
  }
  json::Value detail = json::Value::object();
  detail.set("id", str(cmd.id));
  detail.set("command", str(name));
  detail.set("key_id", str(cmd.key_id));
  detail.set(
      "result",
      str(rejection ? (rejection->reason == RejectReason::failed ? "failed" : "rejected") : "ok"));
  if (rejection) {
    detail.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    detail.set("error", str(rejection->message.substr(0, 1000)));
    log_.warn("command_rejected", {{"command", name},
                                   {"id", cmd.id},
                                   {"reason", rejectReasonName(rejection->reason)},
                                   {"error", rejection->message}});
  } else {
    log_.info("command_done", {{"command", name}, {"id", cmd.id}});
  }
  audit("cloud",
        "command." + (rejection && rejection->reason == RejectReason::unknown_command
                          ? std::string("unknown")
                          : name),
        std::move(detail));
  if (!reported) {
    reportCommand(cmd.id, name, rejection, std::move(data));
  }
}

std::optional<Rejection> RemoteManager::runCommand(const CommandDocument& cmd, json::Value& data) {
  auto fail = [](RejectReason reason, std::string message,
                 std::vector<PathError> errors = {}) -> std::optional<Rejection> {
    return makeRejection(reason, std::move(message), std::move(errors));
  };
  auto failWith = [](const Rejection& r) -> std::optional<Rejection> { return r; };
  const json::Value& args = cmd.args;
  if (cmd.command == "ping") {
    if (auto r = checkArgs(args, {})) {
      return failWith(*r);
    }
    data.set("pong", json::Value::boolean(true));
    data.set("at", str(formatRfc3339(Clock::system()->nowMs())));
    return std::nullopt;
  }
  if (cmd.command == "status") {
    if (auto r = checkArgs(args, {})) {
      return failWith(*r);
    }
    checkStatus(true);
    data.set("published", json::Value::boolean(ctx_.link != nullptr));
    return std::nullopt;
  }
  if (cmd.command == "restart-adapter") {
    if (auto r = checkArgs(args, {"name"})) {
      return failWith(*r);
    }
    const json::Value* name = args.find("name");
    if (name == nullptr || !name->isString() || name->asString().empty()) {
      return fail(RejectReason::bad_args, "args.name: the adapter to restart is required",
                  {PathError{"args.name", "required string is missing"}});
    }
    Status st = hooks_.restart_adapter(name->asString());
    if (!st) {
      return fail(st.error().is(Errc::not_found) ? RejectReason::bad_args : RejectReason::failed,
                  st.error().message);
    }
    data.set("restarted", str(name->asString()));
    checkStatus(true);
    return std::nullopt;
  }
  if (cmd.command == "set-log-level") {
    if (auto r = checkArgs(args, {"level"})) {
      return failWith(*r);
    }
    const json::Value* level = args.find("level");
    log::Level parsed = log::Level::info;
    if (level == nullptr || !level->isString() || !log::parseLevel(level->asString(), parsed) ||
        parsed == log::Level::off) {
      return fail(RejectReason::bad_args, "args.level: expected one of debug, info, warn, error",
                  {PathError{"args.level", "expected one of debug, info, warn, error"}});
    }
    data.set("previous", str(std::string(log::levelName(log::level()))));
    log::setLevel(parsed);
    data.set("level", str(std::string(log::levelName(parsed))));
    return std::nullopt;
  }
  if (cmd.command == "rotate-key") {
    if (auto r = checkArgs(args, {})) {
      return failWith(*r);
    }
    auto id = ctx_.store->rotateKey();
    if (!id) {
      return fail(RejectReason::failed, "key rotation failed: " + id.error().message);
    }
    data.set("key_id", i64(*id));
    return std::nullopt;
  }
  if (cmd.command == "retry-dead") {
    if (auto r = checkArgs(args, {"id", "all"})) {
      return failWith(*r);
    }
    const json::Value* id = args.find("id");
    const json::Value* all = args.find("all");
    const bool want_all = all != nullptr && all->isBool() && all->asBool();
    if ((id == nullptr) == !want_all ||
        (id != nullptr && (!id->isString() || id->asString().empty()))) {
      return fail(RejectReason::bad_args,
                  "expected either args.id (a dead letter's msg-id) or args.all = true",
                  {PathError{"args", "expected either \"id\" or \"all\": true"}});
    }
    if (want_all) {
      auto n = ctx_.store->retryAllDead();
      if (!n) {
        return fail(RejectReason::failed, "retry failed: " + n.error().message);
      }
      data.set("retried", i64(static_cast<int64_t>(*n)));
      return std::nullopt;
    }
    Status st = ctx_.store->retryDead(id->asString());
    if (!st) {
      return fail(st.error().is(Errc::not_found) ? RejectReason::bad_args : RejectReason::failed,
                  st.error().message);
    }
    data.set("retried", i64(1));
    data.set("msg_id", str(id->asString()));
    return std::nullopt;
  }
  std::string known;
  for (const auto& n : knownCommands()) {
    known += (known.empty() ? "" : ", ") + n;
  }
  return fail(RejectReason::unknown_command,
              "unknown command \"" + cmd.command + "\" (known: " + known + ")");
}

void RemoteManager::publishBundle(const CommandDocument& cmd) {
  auto bundle = buildSupportBundle(ctx_);
  if (!bundle) {
    reportCommand(
        cmd.id, cmd.command,
        makeRejection(RejectReason::failed, "cannot build the bundle: " + bundle.error().message),
        json::Value::object());
    return;
  }
  const std::string& bytes = bundle->bytes;
  const std::string sha = psa::sha256Hex(bytes);
  const size_t chunks =
      std::max<size_t>(1, (bytes.size() + kBundleChunkBytes - 1) / kBundleChunkBytes);
  for (size_t i = 0; i < chunks; ++i) {
    json::Value data = json::Value::object();
    data.set("file", str(bundle->file_name));
    data.set("content_type", str(bundle->content_type));
    data.set("size", i64(static_cast<int64_t>(bytes.size())));
    data.set("sha256", str(sha));
    data.set("chunk", i64(static_cast<int64_t>(i)));
    data.set("chunks", i64(static_cast<int64_t>(chunks)));
    const size_t off = i * kBundleChunkBytes;
    data.set("data", str(base64Encode(std::string_view(bytes).substr(off, kBundleChunkBytes))));
    reportCommand(cmd.id, cmd.command, std::nullopt, std::move(data));
  }
  log_.info("bundle_published", {{"id", cmd.id}, {"bytes", bytes.size()}, {"chunks", chunks}});
}

void RemoteManager::reportCommand(const std::string& id, const std::string& command,
                                  const std::optional<Rejection>& rejection, json::Value data) {
  json::Value r = json::Value::object();
  r.set("id", id.empty() ? json::Value::null() : str(id));
  r.set("command", str(command));
  if (rejection) {
    r.set("result", str(rejection->reason == RejectReason::failed ? "failed" : "rejected"));
    r.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    r.set("error", str(rejection->message));
    if (!rejection->errors.empty()) {
      r.set("errors", errorsJson(rejection->errors));
    }
  } else {
    r.set("result", str("ok"));
    r.set("data", std::move(data));
  }
  r.set("at", str(formatRfc3339(Clock::system()->nowMs())));
  if (ctx_.link != nullptr) {
    ctx_.link->publishCommandResult(json::serialize(r));
  }
}

}  // namespace psa::agent
