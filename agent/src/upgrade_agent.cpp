#include "upgrade_agent.h"

#include <algorithm>
#include <ctime>
#include <mutex>

#include "build_info.h"
#include "package_facts.h"
#include "psa/store/clock.h"
#include "psa/store/os/durable_file.h"
#include "upgrade_system.h"

namespace psa::agent::upgrade {
namespace fs = std::filesystem;

namespace {

// The signed command of the download in progress, kept beside its chunks for the hand-off.
constexpr const char* kCommandFile = "command.envelope";
// Progress reports while downloading: at most one per 10 % of the chunks or 5 s.
constexpr auto kProgressEvery = std::chrono::seconds(5);

json::Value str(const std::string& s) { return json::Value::string(s); }

int minuteOfDay(const std::tm& t) { return t.tm_hour * 60 + t.tm_min; }

}  // namespace

UpgradeAgent::UpgradeAgent(Env env) : env_(std::move(env)), paths_(Paths::under(env_.state_dir)) {}

void UpgradeAgent::start() {
  if (!env_.release_key_files.empty()) {
    auto keys = SigningKeys::load(env_.release_key_files);
    if (keys) {
      release_keys_ = std::move(keys).value();
    } else {
      log_.error("release_keys_unusable",
                 {{"error", keys.error().message},
                  {"hint", "every upgrade package is refused as bad_signature until fixed"}});
    }
  }
  // The agent owns these folders, so it may delete the events the helper (another user) left.
  if (Status st = os::createServiceDirectory(paths_.events); !st) {
    log_.warn("upgrade_dir_unusable", {{"error", st.error().message}});
  }
  watching_ = true;  // events of an attempt that ended while this agent was down
  download_ = Download::resume(paths_.download);
  if (download_) {
    envelope_ = readFile(paths_.download / kCommandFile).value_or("");
    if (envelope_.empty()) {
      // Without the signed command the helper would refuse the package: start over.
      download_->discard();
      download_.reset();
    } else {
      log_.info("download_resumed", {{"version", download_->version()},
                                     {"received", download_->received()},
                                     {"chunks", download_->total()}});
    }
  }
}

Host UpgradeAgent::hostFacts() const {
  Host h;
  h.running_version = kAgentVersion;
  h.now_ms = Clock::system()->nowMs();
  const std::time_t now = static_cast<std::time_t>(h.now_ms / 1000);
  {
    // std::localtime/gmtime share a static buffer; this is their only caller in the agent.
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    h.local_minute_of_day = minuteOfDay(*std::localtime(&now));
    h.utc_minute_of_day = minuteOfDay(*std::gmtime(&now));
  }
  std::error_code ec;
  const fs::space_info space = fs::space(env_.state_dir, ec);
  h.free_bytes = ec ? 0 : space.available;
  return h;
}

void UpgradeAgent::report(const std::string& id, const std::string& stage, const Refusal* refusal,
                          json::Value data, cloudlink::CloudLink::PublishCallback done) {
  json::Value r = json::Value::object();
  r.set("id", id.empty() ? json::Value::null() : str(id));
  r.set("command", str("upgrade"));
  const bool final_bad = stage == kStageRejected || stage == kStageRolledBack ||
                         stage == kStageFailed;
  r.set("result", str(stage == kStageRejected     ? "rejected"
                      : final_bad                 ? "failed"
                      : stage == kStageUpgraded   ? "ok"
                                                  : "progress"));
  r.set("stage", str(stage));
  if (refusal != nullptr) {
    r.set("reason", str(refusal->reason));
    r.set("error", str(refusal->message.substr(0, 1000)));
  }
  r.set("data", std::move(data));
  r.set("at", str(formatRfc3339(Clock::system()->nowMs())));
  env_.publish(json::serialize(r), std::move(done));
}

void UpgradeAgent::refuse(const std::string& id, const Refusal& refusal, const char* step) {
  log_.warn("upgrade_rejected", {{"id", id}, {"step", step}, {"reason", refusal.reason}});
  json::Value detail = json::Value::object();
  detail.set("id", str(id));
  detail.set("result", str("rejected"));
  detail.set("reason", str(refusal.reason));
  detail.set("error", str(refusal.message.substr(0, 1000)));
  env_.audit("cloud", "upgrade.rejected", std::move(detail));
  report(id, kStageRejected, &refusal, json::Value::object());
}

void UpgradeAgent::onCommand(const CommandDocument& cmd, const std::string& envelope) {
  auto parsed = parseArgs(cmd.args, cmd.issued_at_ms);
  if (auto* rejection = std::get_if<Rejection>(&parsed)) {
    refuse(cmd.id, Refusal{"bad_args", rejection->message}, "args");
    return;
  }
  const Args& args = std::get<Args>(parsed);
  if (!upgradeSupported()) {
    refuse(cmd.id, Refusal{"unsupported", "self-upgrade is not available on this system yet"},
           "platform");
    return;
  }
  std::error_code ec;
  if (fs::exists(paths_.request, ec)) {
    refuse(cmd.id,
           Refusal{"in_progress", "an upgrade is being installed; send the command again once its "
                                  "outcome is reported"},
           "hand-off");
    return;
  }
  if (auto refusal = checkBeforeDownload(args, hostFacts())) {
    refuse(cmd.id, *refusal, "before download");
    return;
  }
  if (download_ && download_->version() != args.version) {
    log_.info("download_replaced", {{"previous", download_->version()}, {"version", args.version}});
  }
  auto started = Download::begin(paths_.download, cmd.args, cmd.issued_at_ms, cmd.id);
  if (!started) {
    refuse(cmd.id, Refusal{"failed", "cannot start the download: " + started.error().message},
           "download");
    return;
  }
  if (Status st = os::writeFileDurably(paths_.download / kCommandFile, envelope,
                                       os::FileAccess::owner_only);
      !st) {
    refuse(cmd.id, Refusal{"failed", "cannot keep the command: " + st.error().message},
           "download");
    return;
  }
  download_ = std::move(started).value();
  envelope_ = envelope;
  reported_chunks_ = download_->received();
  reported_at_ = std::chrono::steady_clock::now();
  json::Value detail = json::Value::object();
  detail.set("id", str(cmd.id));
  detail.set("version", str(args.version));
  detail.set("size", json::Value::integer(static_cast<int64_t>(args.size)));
  detail.set("release_key_id", str(args.release_key_id));
  env_.audit("cloud", "upgrade.accepted", std::move(detail));
  log_.info("download_started", {{"id", cmd.id},
                                 {"version", args.version},
                                 {"size", args.size},
                                 {"resumed_chunks", download_->received()}});
  json::Value data = json::Value::object();
  data.set("version", str(args.version));
  data.set("received", json::Value::integer(download_->received()));
  data.set("chunks", json::Value::integer(download_->total()));
  report(cmd.id, kStageDownloading, nullptr, std::move(data));
  if (download_->complete()) {
    finishDownload();
  }
}

void UpgradeAgent::onChunk(const std::string& payload) {
  auto chunk = parseChunk(payload);
  if (!chunk) {
    ++chunks_ignored_;
    log_.warn("chunk_refused", {{"error", chunk.error().message}});
    return;
  }
  if (!download_) {
    ++chunks_ignored_;
    log_.debug("chunk_ignored", {{"version", chunk->version}, {"why", "no upgrade announced"}});
    return;
  }
  const Download::Accepted got = download_->accept(*chunk);
  if (got.outcome != Download::Outcome::stored && got.outcome != Download::Outcome::duplicate) {
    ++chunks_ignored_;
    log_.warn("chunk_refused", {{"chunk", chunk->index}, {"why", got.why}});
    return;
  }
  const uint32_t received = download_->received();
  const auto now = std::chrono::steady_clock::now();
  const uint32_t step = std::max<uint32_t>(1, download_->total() / 10);
  if (download_->complete() || received >= reported_chunks_ + step ||
      now - reported_at_ >= kProgressEvery) {
    reported_chunks_ = received;
    reported_at_ = now;
    json::Value data = json::Value::object();
    data.set("version", str(download_->version()));
    data.set("received", json::Value::integer(received));
    data.set("chunks", json::Value::integer(download_->total()));
    report(download_->commandId(), kStageDownloading, nullptr, std::move(data));
  }
  if (download_->complete()) {
    finishDownload();
  }
}

void UpgradeAgent::finishDownload() {
  const std::string id = download_->commandId();
  const Args args = download_->args();
  auto fail = [&](const Refusal& refusal, const char* step) {
    refuse(id, refusal, step);
    download_->discard();
    download_.reset();
  };
  auto bytes = download_->assemble();
  if (!bytes) {
    return fail(Refusal{"failed", "cannot read the download: " + bytes.error().message},
                "assemble");
  }
  static const SigningKeys kNoKeys;
  const SigningKeys& config_keys = env_.config_keys ? *env_.config_keys : kNoKeys;
  if (auto refusal = verifyPackage(*bytes, args, release_keys_, config_keys)) {
    return fail(*refusal, "verify");
  }
  // The staged file keeps the platform's package suffix: dpkg-deb and msiexec go by content,
  // people by name.
  const std::string name = "pms-agent_" + args.version + packageSuffix();
  std::error_code ec;
  fs::remove_all(paths_.staged, ec);
  if (Status st = os::createServiceDirectory(paths_.staged); !st) {
    return fail(Refusal{"failed", st.error().message}, "stage");
  }
  const fs::path staged = paths_.staged / name;
  if (Status st = os::writeFileDurably(staged, *bytes, os::FileAccess::normal); !st) {
    return fail(Refusal{"failed", "cannot stage the package: " + st.error().message}, "stage");
  }
  if (auto refusal = checkPackage(readPackageFacts(staged), args)) {
    fs::remove_all(paths_.staged, ec);
    return fail(*refusal, "package");
  }
  json::Value data = json::Value::object();
  data.set("version", str(args.version));
  report(id, kStageVerified, nullptr, data);
  Request request;
  request.action = "install";
  request.command = envelope_;
  request.package = name;
  request.requested_by = "cloud";
  request.at_ms = Clock::system()->nowMs();
  if (Status st = os::writeFileDurably(paths_.request, json::serialize(toJson(request)),
                                       os::FileAccess::normal);
      !st) {
    return fail(Refusal{"failed", "cannot hand the package over: " + st.error().message},
                "hand-off");
  }
  json::Value detail = json::Value::object();
  detail.set("id", str(id));
  detail.set("version", str(args.version));
  env_.audit("cloud", "upgrade.handed_off", std::move(detail));
  log_.info("upgrade_handed_off", {{"id", id}, {"version", args.version}});
  watching_ = true;
  report(id, kStageInstalling, nullptr, data);
  download_->discard();
  download_.reset();
  envelope_.clear();
}

void UpgradeAgent::tick() {
  // Only while an attempt can produce events: an idle agent makes no system call here.
  if (!watching_) {
    return;
  }
  const std::vector<fs::path> pending = pendingEvents(paths_.events);
  std::error_code ec0;
  if (pending.empty() && events_in_flight_.empty() && !fs::exists(paths_.request, ec0)) {
    watching_ = false;
    return;
  }
  for (const fs::path& file : pending) {
    if (events_in_flight_.count(file) != 0) {
      continue;
    }
    auto doc = readJsonObject(file);
    std::error_code ec;
    if (!doc) {
      // A torn write cannot happen (written durably); anything else is not ours to keep.
      log_.warn("event_unreadable", {{"file", file.filename().string()}});
      fs::remove(file, ec);
      continue;
    }
    const Event e = eventFromJson(*doc);
    json::Value data = json::Value::object();
    data.set("version", str(e.version));
    if (!e.previous.empty()) {
      data.set("previous", str(e.previous));
    }
    const Refusal refusal{e.reason, e.error};
    const bool has_reason = !e.reason.empty();
    if (audited_.insert(file).second) {
      json::Value detail = json::Value::object();
      detail.set("id", str(e.id));
      detail.set("version", str(e.version));
      detail.set("previous", str(e.previous));
      detail.set("reason", str(e.reason));
      detail.set("error", str(e.error.substr(0, 1000)));
      env_.audit("helper", "upgrade." + e.stage, std::move(detail));
    }
    events_in_flight_.insert(file);
    report(e.id, e.stage, has_reason ? &refusal : nullptr, std::move(data),
           [this, file](Status st) {
             env_.post([this, file, ok = bool(st)] {
               events_in_flight_.erase(file);
               if (ok) {
                 audited_.erase(file);
                 std::error_code ec2;
                 fs::remove(file, ec2);
               }
             });
           });
  }
}

}  // namespace psa::agent::upgrade
