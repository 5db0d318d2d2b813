// RemoteManager: boot config selection, the worker and its tick, config documents, SIGHUP
// reloads, the config lock. Commands are in remote_commands.cpp, audit upload and P/status in
// remote_publish.cpp.
#include "remote_manager.h"

#include <boost/asio/post.hpp>

#include "control_server.h"
#include "psa/agent/remote_config.h"
#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/fatal.h"
#include "remote_json.h"

namespace psa::agent {

namespace asio = boost::asio;
using namespace remote_json;

namespace {

constexpr auto kTick = std::chrono::seconds(1);

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
        problems +=
            (problems.empty() ? "" : "; ") + std::string(which) + ": " + stored.error().message;
        log_.error("stored_config_unusable", {{"which", which}, {"error", stored.error().message}});
        newest_failed = newest_failed || newest;
      }
      continue;
    }
    ConfigLoad load =
        buildEffectiveConfig(local->doc, stored->overlay, local->source_file, registry_);
    if (!load.config) {
      std::string first = load.issues.empty()
                              ? load.fatal
                              : load.issues.front().path + ": " + load.issues.front().message;
      problems += (problems.empty() ? "" : "; ") + std::string(which) + " v" +
                  std::to_string(stored->version) +
                  " is no longer valid with the local file: " + first;
      log_.error("stored_config_unusable", {{"which", which},
                                            {"version", stored->version},
                                            {"issues", load.issues.size()},
                                            {"first", first}});
      newest_failed = newest_failed || newest;
      continue;
    }
    current_ = load.config;
    config_source_ = newest ? "cloud" : "cloud-last-known-good";
    state_->setApplied(*stored);
    if (!newest) {
      log_.error("using_last_known_good",
                 {{"version", stored->version},
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
      log_.error("signing_keys_unusable",
                 {{"error", keys_problem_},
                  {"hint", "remote config and commands are refused until fixed"}});
    } else {
      keys_ = std::move(keys).value();
      if (keys_.empty()) {
        log_.warn("no_signing_key",
                  {{"hint", "set cloud.config_signing_key to allow remote management"}});
      }
      for (const auto& id : keys_.ids()) {
        log_.info("signing_key", {{"key_id", id}});
      }
    }
  }
  if (ctx_.store != nullptr) {
    auto cursor = ctx_.store->watermark(kAuditUploadScope, kAuditUploadKey);
    if (cursor && cursor->has_value()) {
      audit_cursor_ = std::strtoll((*cursor)->c_str(), nullptr, 10);
    }
  }
  if (cfg.cloud.configured) {
    upgrade::UpgradeAgent::Env env;
    env.state_dir = cfg.state_dir;
    env.release_key_files = cfg.cloud.release_keys;
    env.config_keys = &keys_;
    env.publish = [this](std::string json, cloudlink::CloudLink::PublishCallback done) {
      if (ctx_.link != nullptr) {
        ctx_.link->publishCommandResult(std::move(json), std::move(done));
      } else if (done) {
        done(Error(Errc::closed, "no cloud link"));
      }
    };
    env.post = [this](std::function<void()> task) { post(std::move(task)); };
    env.audit = [this](std::string actor, std::string action, json::Value detail) {
      audit(std::move(actor), std::move(action), std::move(detail));
    };
    upgrade_ = std::make_unique<upgrade::UpgradeAgent>(std::move(env));
  }
  post([this] {
    if (upgrade_) {
      upgrade_->start();
    }
    armTick();
  });
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
  post([this, name = std::move(name), payload = std::move(payload)] {
    handleCommand(name, payload);
  });
}

void RemoteManager::onUpgradeChunk(std::string payload) {
  post([this, payload = std::move(payload)] {
    if (upgrade_) {
      upgrade_->onChunk(payload);
    }
  });
}

void RemoteManager::onWriteRequest(std::string kind, std::string payload) {
  if (hooks_.write_request) {
    hooks_.write_request(std::move(kind), std::move(payload));
  }
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
                                                     ApplySummary& summary, ConfigPtr& applied,
                                                     const char* actor) {
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
    return makeRejection(RejectReason::schema, "config violates the schema: " + firstErrors(errors),
                         errors);
  }
  auto result = hooks_.apply(*load.config);
  if (!result) {
    return makeRejection(RejectReason::apply_failed, result.error().message);
  }
  summary = std::move(result).value();
  log::setLevel(load.config->log_level);
  if (!sameJson(running->policy.describe(), load.config->policy.describe())) {
    // The rules are references and actions, never values: safe to audit and log in full.
    log_.info("policy_changed", {{"default_ssn_mask", load.config->policy.default_ssn_mask},
                                 {"rules", load.config->policy.rules.size()}});
    audit(actor, "policy.changed", load.config->policy.describe());
  }
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
    log_.warn("config_rejected",
              {{"reason", rejectReasonName(rejection->reason)}, {"version", doc.version}});
    auditUnauthenticated("config.rejected", *rejection);
    reportConfig(doc.version, rejection, doc.key_id, nullptr);
    return;
  }
  if (!rejection && doc.version <= state_->lastAppliedVersion()) {
    rejection =
        makeRejection(RejectReason::replay, "version " + std::to_string(doc.version) +
                                                " is not greater than the last applied version " +
                                                std::to_string(state_->lastAppliedVersion()));
  }
  if (!rejection) {
    if (auto lk = state_->lock()) {
      rejection =
          makeRejection(RejectReason::locked, "config is locked on site by " + lk->by + " since " +
                                                  formatRfc3339(lk->at_ms) + ": " + lk->reason);
    }
  }
  ApplySummary summary;
  OverlayCheck check;
  if (!rejection) {
    check = checkOverlay(doc.config, running->doc);
    if (!check.schema.empty()) {
      rejection =
          makeRejection(RejectReason::schema,
                        "config violates the schema: " + firstErrors(check.schema), check.schema);
    } else if (!check.forbidden.empty()) {
      rejection = makeRejection(
          RejectReason::forbidden,
          "config tries to change what only the site may change: " + firstErrors(check.forbidden),
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
    rejection = applyOverlay(base, check.overlay, summary, applied, "cloud");
    if (!rejection) {
      StoredConfig stored{doc.version, doc.key_id, now, check.overlay};
      if (Status st = state_->recordApplied(stored); !st) {
        // Without a durable record the replay protection and the next start would disagree
        // with what runs: put the previous config back.
        log_.error("config_persist_failed",
                   {{"version", doc.version}, {"error", st.error().message}});
        ApplySummary back;
        ConfigPtr ignored;
        const auto previous = state_->applied();
        json::Value prev_overlay = previous ? previous->overlay : json::Value::object();
        if (auto again = applyOverlay(base, prev_overlay, back, ignored, "cloud")) {
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
                                  {"version", doc.version},
                                  {"error", rejection->message}});
    audit("cloud", "config.rejected", std::move(detail));
  } else {
    detail.set("started", namesJson(summary.started));
    detail.set("replaced", namesJson(summary.replaced));
    detail.set("stopped", namesJson(summary.stopped));
    detail.set("unchanged", i64(static_cast<int64_t>(summary.unchanged.size())));
    detail.set("pending_restart", namesJson(check.pending_restart));
    log_.info("config_applied", {{"version", doc.version},
                                 {"started", summary.started.size()},
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
      log_.error("reload_rejected",
                 {{"path", issue.path}, {"line", issue.line}, {"error", issue.message}});
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
    log_.error("reload_rejected",
               {{"reason", "restart_required"},
                {"changed", list},
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
  auto rejection = applyOverlay(load.config->doc, overlay, summary, applied, "local");
  if (rejection) {
    log_.error("reload_rejected",
               {{"reason", rejectReasonName(rejection->reason)}, {"error", rejection->message}});
    detail.set("reason", str(std::string(rejectReasonName(rejection->reason))));
    detail.set("error", str(rejection->message.substr(0, 1000)));
    audit("local", "config.reload_rejected", std::move(detail));
    return;
  }
  {
    std::lock_guard lock(mu_);
    base_doc_ = load.config->doc;
  }
  log_.info("reload_applied", {{"started", summary.started.size()},
                               {"replaced", summary.replaced.size()},
                               {"stopped", summary.stopped.size()},
                               {"unchanged", summary.unchanged.size()}});
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
