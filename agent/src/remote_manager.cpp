#include "remote_manager.h"

#include <boost/asio/post.hpp>

#include "control_server.h"
#include "psa/agent/remote_config.h"
#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"
#include "remote_bundle.h"

namespace psa::agent {

namespace asio = boost::asio;

namespace {

constexpr auto kTick = std::chrono::seconds(1);
constexpr size_t kAuditBatchEntries = 200;
constexpr size_t kAuditBatchBytes = 256 * 1024;
constexpr size_t kBundleChunkBytes = 128 * 1024;
constexpr int kUnauthAuditsPerMinute = 10;
constexpr const char* kAgentScope = kAuditUploadScope;
constexpr const char* kAuditCursorKey = kAuditUploadKey;

json::Value str(std::string s) { return json::Value::string(std::move(s)); }
json::Value i64(int64_t v) { return json::Value::integer(v); }

Rejection makeRejection(RejectReason reason, std::string message,
                        std::vector<PathError> errors = {}) {
  Rejection r;
  r.reason = reason;
  r.message = std::move(message);
  r.errors = std::move(errors);
  return r;
}

json::Value errorsJson(const std::vector<PathError>& errors) {
  json::Value list = json::Value::array();
  for (const auto& e : errors) {
    json::Value o = json::Value::object();
    o.set("path", str(e.path));
    o.set("message", str(e.message));
    list.push(std::move(o));
  }
  return list;
}

json::Value namesJson(const std::vector<std::string>& names) {
  json::Value list = json::Value::array();
  for (const auto& n : names) {
    list.push(str(n));
  }
  return list;
}

std::string firstErrors(const std::vector<PathError>& errors, size_t max = 3) {
  std::string out;
  for (size_t i = 0; i < errors.size() && i < max; ++i) {
    out += (i ? "; " : "") + errors[i].path + ": " + errors[i].message;
  }
  if (errors.size() > max) {
    out += "; and " + std::to_string(errors.size() - max) + " more";
  }
  return out;
}

// Unknown members of a command's args are refused: a typo must not silently do something else.
std::optional<Rejection> checkArgs(const json::Value& args, std::initializer_list<const char*> known) {
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
  static const std::vector<std::string> names = {"ping",       "status",    "restart-adapter",
                                                 "set-log-level", "rotate-key", "retry-dead",
                                                 "bundle"};
  return names;
}

}  // namespace

RemoteManager::RemoteManager(AgentContext& ctx, const adapters::SourceRegistry& registry,
                             RemoteHooks hooks)
    : ctx_(ctx), registry_(registry), hooks_(std::move(hooks)) {}

RemoteManager::~RemoteManager() { stop(); }

// ------------------------------------------------------------------------------ boot

Result<ConfigPtr> RemoteManager::selectStartupConfig(ConfigPtr local) {
  state_ = std::make_unique<RemoteState>(local->state_dir / "remote");
  PSA_TRY(state_->load());
  std::lock_guard lock(mu_);
  base_doc_ = local->doc;
  current_ = local;
  config_source_ = "local";
  std::string problems;
  bool newest_failed = false;
  for (const bool newest : {true, false}) {
    auto stored = newest ? state_->readCurrent() : state_->readPrevious();
    const char* which = newest ? "newest cloud config" : "last known good cloud config";
    if (!stored) {
      if (!stored.error().is(Errc::not_found)) {
        problems += (problems.empty() ? "" : "; ") + std::string(which) + ": " + stored.error().message;
        log_.error("stored_config_unusable", {{"which", which}, {"error", stored.error().message}});
        newest_failed = newest_failed || newest;
      }
      continue;
    }
    ConfigLoad load = buildEffectiveConfig(local->doc, stored->overlay, local->source_file, registry_);
    if (!load.config) {
      std::string first = load.issues.empty() ? load.fatal
                                              : load.issues.front().path + ": " + load.issues.front().message;
      problems += (problems.empty() ? "" : "; ") + std::string(which) + " v" +
                  std::to_string(stored->version) + " is no longer valid with the local file: " + first;
      log_.error("stored_config_unusable", {{"which", which}, {"version", stored->version},
                                            {"issues", load.issues.size()}, {"first", first}});
      newest_failed = newest_failed || newest;
      continue;
    }
    current_ = load.config;
    config_source_ = newest ? "cloud" : "cloud-last-known-good";
    state_->setApplied(*stored);
    if (!newest) {
      log_.error("using_last_known_good", {{"version", stored->version},
                                           {"hint", "the newest cloud config could not be used; see status"}});
    } else {
      log_.info("cloud_config_loaded", {{"version", stored->version}});
    }
    break;
  }
  if (config_source_ == "local" && newest_failed) {
    log_.error("using_local_file_only", {{"hint", "no stored cloud config is usable"}});
  }
  startup_problem_ = problems;
  return current_;
}

void RemoteManager::start() {
  if (started_) {
    return;
  }
  started_ = true;
  const Config& cfg = *currentConfig();
  if (cfg.cloud.configured) {
    auto keys = SigningKeys::load(cfg.cloud.config_signing_keys);
    if (!keys) {
      keys_problem_ = keys.error().message;
      log_.error("signing_keys_unusable", {{"error", keys_problem_},
                                           {"hint", "remote config and commands are refused until fixed"}});
    } else {
      keys_ = std::move(keys).value();
      if (keys_.empty()) {
        log_.warn("no_signing_key", {{"hint", "set cloud.config_signing_key to allow remote management"}});
      }
      for (const auto& id : keys_.ids()) {
        log_.info("signing_key", {{"key_id", id}});
      }
    }
  }
  if (ctx_.store != nullptr) {
    auto cursor = ctx_.store->watermark(kAgentScope, kAuditCursorKey);
    if (cursor && cursor->has_value()) {
      audit_cursor_ = std::strtoll((*cursor)->c_str(), nullptr, 10);
    }
  }
  post([this] { armTick(); });
}

void RemoteManager::armTick() {
  // Worker thread. The next tick is a second after this one ended: ticks never pile up behind a
  // long apply.
  tick_timer_.expires_after(kTick);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) {
      return;
    }
    guardInvariant("remote.tick", [this] {
      tick();
      armTick();
    });
  });
}

void RemoteManager::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  // The timer is touched only on the worker; join() then waits for the cancelled wait too.
  asio::post(worker_, [this] { tick_timer_.cancel(); });
  worker_.join();
}

void RemoteManager::post(std::function<void()> task) {
  if (stopping_) {
    return;
  }
  asio::post(worker_, [this, task = std::move(task)] {
    if (stopping_) {
      return;
    }
    guardInvariant("remote.worker", task);
  });
}

void RemoteManager::onConfigDocument(std::string payload) {
  post([this, payload = std::move(payload)] { handleConfigDocument(payload); });
}

void RemoteManager::onCommand(std::string name, std::string payload) {
  post([this, name = std::move(name), payload = std::move(payload)] { handleCommand(name, payload); });
}

void RemoteManager::requestReload() {
  post([this] { handleReload(); });
}

ConfigPtr RemoteManager::currentConfig() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::string RemoteManager::cachedStatus() const {
  std::lock_guard lock(mu_);
  return cached_status_;
}

// ------------------------------------------------------------------------------ config documents

std::optional<Rejection> RemoteManager::applyOverlay(const json::Value& base_doc,
                                                     const json::Value& overlay,
                                                     ApplySummary& summary, ConfigPtr& applied) {
  ConfigPtr running = currentConfig();
  ConfigLoad load = buildEffectiveConfig(base_doc, overlay, running->source_file, registry_);
  if (!load.config) {
    std::vector<PathError> errors;
    for (const auto& i : load.issues) {
      errors.push_back(PathError{"config." + i.path, i.message});
    }
    if (errors.empty()) {
      errors.push_back(PathError{"config", load.fatal});
    }
    return makeRejection(RejectReason::schema,
                         "config violates the schema: " + firstErrors(errors), errors);
  }
  auto result = hooks_.apply(*load.config);
  if (!result) {
    return makeRejection(RejectReason::apply_failed, result.error().message);
  }
  summary = std::move(result).value();
  log::setLevel(load.config->log_level);
  applied = load.config;
  std::lock_guard lock(mu_);
  current_ = load.config;
  return std::nullopt;
}

void RemoteManager::handleConfigDocument(const std::string& text) {
  const int64_t now = Clock::system()->nowMs();
  const ConfigPtr running = currentConfig();
  auto opened = openConfigDocument(text, keys_, running->agent_id, now);
  const ConfigDocument& doc = opened.doc;
  std::optional<Rejection> rejection = std::move(opened.rejection);
  if (rejection && !keys_problem_.empty() && rejection->reason == RejectReason::unknown_key) {
    rejection->message += " (signing key file problem: " + keys_problem_ + ")";
  }
  if (rejection && !opened.authentic) {
    log_.warn("config_rejected", {{"reason", rejectReasonName(rejection->reason)}, {"version", doc.version}});
    auditUnauthenticated("config.rejected", *rejection);
    reportConfig(doc.version, rejection, doc.key_id, nullptr);
    return;
  }
  if (!rejection && doc.version <= state_->lastAppliedVersion()) {
    rejection = makeRejection(RejectReason::replay,
                              "version " + std::to_string(doc.version) +
                                  " is not greater than the last applied version " +
                                  std::to_string(state_->lastAppliedVersion()));
  }
  if (!rejection) {
    if (auto lk = state_->lock()) {
      rejection = makeRejection(RejectReason::locked, "config is locked on site by " + lk->by +
                                                          " since " + formatRfc3339(lk->at_ms) +
                                                          ": " + lk->reason);
    }
  }
  ApplySummary summary;
  OverlayCheck check;
  if (!rejection) {
    check = checkOverlay(doc.config, running->doc);
    if (!check.schema.empty()) {
      rejection = makeRejection(RejectReason::schema,
                                "config violates the schema: " + firstErrors(check.schema), check.schema);
    } else if (!check.forbidden.empty()) {
      rejection = makeRejection(RejectReason::forbidden,
                                "config tries to change what only the site may change: " +
                                    firstErrors(check.forbidden),
                                check.forbidden);
    }
  }
  if (!rejection) {
    json::Value base;
    {
      std::lock_guard lock(mu_);
      base = base_doc_;
    }
    ConfigPtr applied;
    rejection = applyOverlay(base, check.overlay, summary, applied);
    if (!rejection) {
      StoredConfig stored{doc.version, doc.key_id, now, check.overlay};
      if (Status st = state_->recordApplied(stored); !st) {
        // Without a durable record the replay protection and the next start would disagree
        // with what runs: put the previous config back.
        log_.error("config_persist_failed", {{"version", doc.version}, {"error", st.error().message}});
        ApplySummary back;
        ConfigPtr ignored;
        const auto previous = state_->applied();
        json::Value prev_overlay = previous ? previous->overlay : json::Value::object();
        if (auto again = applyOverlay(base, prev_overlay, back, ignored)) {
          log_.error("config_restore_failed", {{"error", again->message}});
        }
        rejection = makeRejection(RejectReason::apply_failed,
                                  "cannot persist the config (" + st.error().message +
                                      "); rolled back to the running config");
      } else {
        std::lock_guard lock(mu_);
        config_source_ = "cloud";
        startup_problem_.clear();
        pending_restart_ = check.pending_restart;
      }
    }
  }
  json::Value detail = json::Value::object();
  detail.set("version", i64(doc.version));
  detail.set("key_id", str(doc.key_id));
  if (rejection) {
    detail.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    detail.set("error", str(rejection->message.substr(0, 1000)));
    log_.warn("config_rejected", {{"reason", rejectReasonName(rejection->reason)},
                                  {"version", doc.version}, {"error", rejection->message}});
    audit("cloud", "config.rejected", std::move(detail));
  } else {
    detail.set("started", namesJson(summary.started));
    detail.set("replaced", namesJson(summary.replaced));
    detail.set("stopped", namesJson(summary.stopped));
    detail.set("unchanged", i64(static_cast<int64_t>(summary.unchanged.size())));
    detail.set("pending_restart", namesJson(check.pending_restart));
    log_.info("config_applied", {{"version", doc.version}, {"started", summary.started.size()},
                                 {"replaced", summary.replaced.size()},
                                 {"stopped", summary.stopped.size()},
                                 {"unchanged", summary.unchanged.size()},
                                 {"pending_restart", check.pending_restart.size()}});
    audit("cloud", "config.applied", std::move(detail));
  }
  reportConfig(doc.version, rejection, doc.key_id, rejection ? nullptr : &summary,
               check.pending_restart);
  checkStatus(true);
}

void RemoteManager::handleReload() {
  const ConfigPtr running = currentConfig();
  log_.info("reload_requested", {{"file", running->source_file.string()}});
  ConfigLoad load = loadConfig(running->source_file, registry_);
  json::Value detail = json::Value::object();
  detail.set("file", str(running->source_file.string()));
  if (!load.config) {
    if (!load.fatal.empty()) {
      log_.error("reload_rejected", {{"error", load.fatal}});
    }
    for (const auto& issue : load.issues) {
      log_.error("reload_rejected", {{"path", issue.path}, {"line", issue.line}, {"error", issue.message}});
    }
    detail.set("reason", str("schema"));
    detail.set("issues", i64(static_cast<int64_t>(load.issues.size())));
    audit("local", "config.reload_rejected", std::move(detail));
    return;
  }
  json::Value base;
  {
    std::lock_guard lock(mu_);
    base = base_doc_;
  }
  const auto changes = restartOnlyChanges(base, load.config->doc);
  if (!changes.empty()) {
    std::string list;
    for (const auto& c : changes) {
      list += (list.empty() ? "" : ",") + c;
    }
    log_.error("reload_rejected", {{"reason", "restart_required"}, {"changed", list},
                                   {"hint", "these settings apply only at start: restart the service"}});
    detail.set("reason", str("restart_required"));
    detail.set("changed", namesJson(changes));
    audit("local", "config.reload_rejected", std::move(detail));
    return;
  }
  const auto stored = state_->applied();
  const json::Value overlay = stored ? stored->overlay : json::Value::object();
  if (overlay.find("adapters") != nullptr) {
    log_.warn("reload_adapters_overridden",
              {{"cloud_version", stored->version},
               {"hint", "the cloud config sets the adapters; local adapter edits do not apply"}});
  }
  ApplySummary summary;
  ConfigPtr applied;
  auto rejection = applyOverlay(load.config->doc, overlay, summary, applied);
  if (rejection) {
    log_.error("reload_rejected", {{"reason", rejectReasonName(rejection->reason)}, {"error", rejection->message}});
    detail.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    detail.set("error", str(rejection->message.substr(0, 1000)));
    audit("local", "config.reload_rejected", std::move(detail));
    return;
  }
  {
    std::lock_guard lock(mu_);
    base_doc_ = load.config->doc;
  }
  log_.info("reload_applied", {{"started", summary.started.size()}, {"replaced", summary.replaced.size()},
                               {"stopped", summary.stopped.size()}, {"unchanged", summary.unchanged.size()}});
  detail.set("started", namesJson(summary.started));
  detail.set("replaced", namesJson(summary.replaced));
  detail.set("stopped", namesJson(summary.stopped));
  audit("local", "config.reloaded", std::move(detail));
  checkStatus(true);
}

void RemoteManager::reportConfig(int64_t version, const std::optional<Rejection>& rejection,
                                 const std::string& key_id, const ApplySummary* summary,
                                 const std::vector<std::string>& pending_restart) {
  json::Value r = json::Value::object();
  r.set("version", version > 0 ? i64(version) : json::Value::null());
  r.set("result", str(rejection ? "rejected" : "applied"));
  if (rejection) {
    r.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    r.set("error", str(rejection->message));
    if (!rejection->errors.empty()) {
      r.set("errors", errorsJson(rejection->errors));
    }
  } else if (summary != nullptr) {
    r.set("started", namesJson(summary->started));
    r.set("replaced", namesJson(summary->replaced));
    r.set("stopped", namesJson(summary->stopped));
    r.set("unchanged", namesJson(summary->unchanged));
    r.set("pending_restart", namesJson(pending_restart));
  }
  if (!key_id.empty()) {
    r.set("key_id", str(key_id));
  }
  r.set("at", str(formatRfc3339(Clock::system()->nowMs())));
  {
    std::lock_guard lock(mu_);
    last_result_ = r;
  }
  if (ctx_.link != nullptr) {
    ctx_.link->publishConfigState(json::serialize(r));
  }
}

// ------------------------------------------------------------------------------ commands

void RemoteManager::handleCommand(const std::string& name, const std::string& text) {
  const int64_t now = Clock::system()->nowMs();
  const ConfigPtr running = currentConfig();
  auto opened = openCommandDocument(text, keys_, running->agent_id, name, now);
  const CommandDocument& cmd = opened.doc;
  std::optional<Rejection> rejection = std::move(opened.rejection);
  if (rejection && !opened.authentic) {
    log_.warn("command_rejected", {{"command", name}, {"reason", rejectReasonName(rejection->reason)}});
    auditUnauthenticated("command.rejected", *rejection);
    reportCommand(cmd.id, name, rejection, json::Value::object());
    return;
  }
  if (!rejection && state_->commandSeen(cmd.id)) {
    rejection = makeRejection(RejectReason::replay, "command id \"" + cmd.id + "\" was already received");
  }
  if (!rejection) {
    if (Status st = state_->rememberCommand(cmd.id, cmd.expires_at_ms, now); !st) {
      rejection = makeRejection(RejectReason::failed,
                                "cannot record the command id (" + st.error().message + ")");
    }
  }
  json::Value data = json::Value::object();
  bool bundle_sent = false;
  if (!rejection) {
    if (cmd.command == "bundle") {
      rejection = checkArgs(cmd.args, {});
      if (!rejection) {
        publishBundle(cmd);
        bundle_sent = true;
      }
    } else {
      rejection = runCommand(cmd, data);
    }
  }
  json::Value detail = json::Value::object();
  detail.set("id", str(cmd.id));
  detail.set("command", str(name));
  detail.set("key_id", str(cmd.key_id));
  detail.set("result", str(rejection ? (rejection->reason == RejectReason::failed ? "failed" : "rejected") : "ok"));
  if (rejection) {
    detail.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    detail.set("error", str(rejection->message.substr(0, 1000)));
    log_.warn("command_rejected", {{"command", name}, {"id", cmd.id},
                                   {"reason", rejectReasonName(rejection->reason)}, {"error", rejection->message}});
  } else {
    log_.info("command_done", {{"command", name}, {"id", cmd.id}});
  }
  audit("cloud", "command." + (rejection && rejection->reason == RejectReason::unknown_command ? std::string("unknown") : name),
        std::move(detail));
  if (!bundle_sent) {
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
    if ((id == nullptr) == !want_all || (id != nullptr && (!id->isString() || id->asString().empty()))) {
      return fail(RejectReason::bad_args, "expected either args.id (a dead letter's msg-id) or args.all = true",
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
  return fail(RejectReason::unknown_command, "unknown command \"" + cmd.command + "\" (known: " + known + ")");
}

void RemoteManager::publishBundle(const CommandDocument& cmd) {
  auto bundle = buildSupportBundle(ctx_);
  if (!bundle) {
    reportCommand(cmd.id, cmd.command,
                  makeRejection(RejectReason::failed, "cannot build the bundle: " + bundle.error().message),
                  json::Value::object());
    return;
  }
  const std::string& bytes = bundle->bytes;
  const std::string sha = psa::sha256Hex(bytes);
  const size_t chunks = std::max<size_t>(1, (bytes.size() + kBundleChunkBytes - 1) / kBundleChunkBytes);
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

// ------------------------------------------------------------------------------ lock

Status RemoteManager::lockConfig(const std::string& reason, const std::string& actor) {
  const bool was = state_->lock().has_value();
  PSA_TRY(state_->setLock(LockInfo{reason, actor, Clock::system()->nowMs()}));
  json::Value detail = json::Value::object();
  detail.set("reason", str(reason));
  detail.set("was_locked", json::Value::boolean(was));
  audit(actor, "config.locked", std::move(detail));
  log_.info("config_locked", {{"by", actor}});
  post([this] { checkStatus(true); });
  return {};
}

Status RemoteManager::unlockConfig(const std::string& actor) {
  const bool was = state_->lock().has_value();
  PSA_TRY(state_->clearLock());
  json::Value detail = json::Value::object();
  detail.set("was_locked", json::Value::boolean(was));
  audit(actor, "config.unlocked", std::move(detail));
  log_.info("config_unlocked", {{"by", actor}});
  post([this] { checkStatus(true); });
  return {};
}

json::Value RemoteManager::configStatus() const {
  json::Value c = json::Value::object();
  const auto applied = state_ ? state_->applied() : std::nullopt;
  std::string source;
  std::string problem;
  json::Value last;
  {
    std::lock_guard lock(mu_);
    source = config_source_;
    problem = startup_problem_;
    last = last_result_;
  }
  c.set("origin", str(source));
  c.set("file", str(currentConfig()->source_file.string()));
  c.set("version", applied ? i64(applied->version) : json::Value::null());
  c.set("applied_at", applied && applied->applied_at_ms ? str(formatRfc3339(applied->applied_at_ms))
                                                       : json::Value::null());
  c.set("last_applied_version", state_ ? i64(state_->lastAppliedVersion()) : i64(0));
  c.set("problem", problem.empty() ? json::Value::null() : str(problem));
  std::vector<std::string> pending;
  {
    std::lock_guard lock(mu_);
    pending = pending_restart_;
  }
  c.set("pending_restart", namesJson(pending));
  c.set("log_level", str(std::string(log::levelName(log::level()))));
  const auto lk = state_ ? state_->lock() : std::nullopt;
  c.set("locked", json::Value::boolean(lk.has_value()));
  if (lk) {
    json::Value l = json::Value::object();
    l.set("reason", str(lk->reason));
    l.set("by", str(lk->by));
    l.set("at", lk->at_ms ? str(formatRfc3339(lk->at_ms)) : json::Value::null());
    c.set("lock", std::move(l));
  }
  c.set("last_result", last.isNull() ? json::Value::null() : last);
  return c;
}

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
  const int64_t now = Clock::system()->nowMs();
  if (now - unauth_window_start_ >= 60'000) {
    unauth_window_start_ = now;
    unauth_in_window_ = 0;
  }
  if (unauth_in_window_ >= kUnauthAuditsPerMinute) {
    ++unauth_suppressed_;
    return;
  }
  ++unauth_in_window_;
  json::Value detail = json::Value::object();
  detail.set("reason", str(std::string(rejectReasonName(rejection.reason))));
  detail.set("error", str(rejection.message.substr(0, 500)));
  detail.set("authenticated", json::Value::boolean(false));
  if (unauth_suppressed_ > 0) {
    detail.set("suppressed_before", i64(static_cast<int64_t>(unauth_suppressed_)));
    unauth_suppressed_ = 0;
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
  batch.watermarks.push_back(store::WatermarkUpdate{kAgentScope, kAuditCursorKey, std::to_string(seq)});
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
}

void RemoteManager::checkStatus(bool force) {
  json::Value status = buildStatus(ctx_);
  // What counts as a state change: adapter state/health/error, link state and error, queue
  // crossing 50/80/95 % of its budget, refusing input, dead letters appearing, delivery
  // stalling, config.
  std::string sig;
  if (const json::Value* list = status.find("adapters")) {
    for (const auto& a : list->items()) {
      sig += a.getString("name") + "=" + a.getString("state") + (a.getBool("healthy", true) ? "+" : "-");
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
  std::string text = json::serialize(status);
  {
    std::lock_guard lock(mu_);
    cached_status_ = text;
  }
  if (ctx_.link == nullptr) {
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  const int interval_s = currentConfig()->cloud.status_interval_s;
  const bool due = now - last_status_ >= std::chrono::seconds(interval_s);
  if (force || due || sig != status_signature_) {
    if (sig != status_signature_ && !status_signature_.empty()) {
      log_.debug("status_changed");
    }
    status_signature_ = std::move(sig);
    last_status_ = now;
    ctx_.link->publishStatus(std::move(text));
  }
}

// ------------------------------------------------------------------------------ control socket

void registerRemoteControlHandlers(ControlServer& server, RemoteManager& remote) {
  server.handle("config.lock", [&remote](const ControlRequest& req, const Peer& peer) {
    ControlResponse r;
    const std::string reason = req.args.getString("reason");
    if (reason.empty() || reason.size() > 500) {
      r.ok = false;
      r.error = "a reason (1-500 characters) is required";
      r.exit_code = 2;
      return r;
    }
    const bool was = remote.configStatus().getBool("locked");
    const std::string actor = peer.actor();
    if (Status st = remote.lockConfig(reason, actor); !st) {
      r.ok = false;
      r.error = st.error().message;
      return r;
    }
    r.result = json::Value::object();
    r.result.set("locked", json::Value::boolean(true));
    r.result.set("was_locked", json::Value::boolean(was));
    r.result.set("reason", json::Value::string(reason));
    r.result.set("by", json::Value::string(actor));
    return r;
  });
  server.handle("config.unlock", [&remote](const ControlRequest&, const Peer& peer) {
    ControlResponse r;
    const bool was = remote.configStatus().getBool("locked");
    const std::string actor = peer.actor();
    if (Status st = remote.unlockConfig(actor); !st) {
      r.ok = false;
      r.error = st.error().message;
      return r;
    }
    r.result = json::Value::object();
    r.result.set("locked", json::Value::boolean(false));
    r.result.set("was_locked", json::Value::boolean(was));
    return r;
  });
}

}  // namespace psa::agent
