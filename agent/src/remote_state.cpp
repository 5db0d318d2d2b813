#include "remote_state.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/os/durable_file.h"

namespace psa::agent {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxRememberedCommands = 10000;
constexpr size_t kMaxStateFileBytes = 8u << 20;

Result<std::string> readAll(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return Error(Errc::not_found, file.string() + " does not exist");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Error(Errc::io, "cannot read " + file.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > kMaxStateFileBytes) {
    return Error(Errc::corrupt, file.string() + " is implausibly large");
  }
  return text;
}

Result<json::Value> readJson(const fs::path& file) {
  auto text = readAll(file);
  if (!text) {
    return std::move(text).error();
  }
  json::Limits l;
  l.max_depth = 48;
  auto v = json::parse(*text, l);
  if (!v || !v->isObject()) {
    return Error(Errc::corrupt, file.string() + " is damaged: " +
                                    (v ? std::string("not a JSON object") : v.error().message));
  }
  return std::move(v).value();
}

std::string configChecksum(const json::Value& overlay) {
  return psa::sha256Hex(json::serialize(overlay));
}

}  // namespace

RemoteState::RemoteState(fs::path dir) : dir_(std::move(dir)) {}

Status RemoteState::load() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return Error(Errc::io, "cannot create " + dir_.string() + ": " + ec.message());
  }
  PSA_TRY(os::restrictToOwner(dir_));
  std::lock_guard lock(mu_);
  last_applied_ = 0;
  commands_.clear();
  auto state = readJson(dir_ / "state.json");
  if (state) {
    last_applied_ = state->getInt("last_applied_version", 0);
    if (const json::Value* cmds = state->find("commands"); cmds != nullptr && cmds->isObject()) {
      for (const auto& [id, exp] : cmds->members()) {
        if (exp.isInteger()) {
          commands_[id] = exp.asInt();
        }
      }
    }
  } else if (!state.error().is(Errc::not_found)) {
    log_.error("state_damaged", {{"file", (dir_ / "state.json").string()},
                                 {"error", state.error().message},
                                 {"hint", "the last applied version is recovered from the stored configs"}});
  }
  // A crash between writing the config file and state.json, or a damaged state file: the
  // stored configs carry their versions too.
  for (const char* name : {"config-current.json", "config-previous.json"}) {
    if (auto c = readConfigFile(dir_ / name)) {
      last_applied_ = std::max(last_applied_, c->version);
    }
  }
  lock_.reset();
  auto lk = readJson(dir_ / "lock.json");
  if (lk) {
    lock_ = LockInfo{lk->getString("reason"), lk->getString("by"), lk->getInt("at_ms", 0)};
  } else if (!lk.error().is(Errc::not_found)) {
    log_.error("lock_damaged", {{"file", (dir_ / "lock.json").string()},
                                {"hint", "treated as locked; `pms-agent config unlock` clears it"}});
    lock_ = LockInfo{"lock file damaged", "unknown", 0};
  }
  return {};
}

int64_t RemoteState::lastAppliedVersion() const {
  std::lock_guard lock(mu_);
  return last_applied_;
}

std::optional<StoredConfig> RemoteState::applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

void RemoteState::setApplied(std::optional<StoredConfig> config) {
  std::lock_guard lock(mu_);
  applied_ = std::move(config);
}

Status RemoteState::recordApplied(const StoredConfig& config) {
  json::Value doc = json::Value::object();
  doc.set("format", json::Value::integer(1));
  doc.set("version", json::Value::integer(config.version));
  doc.set("key_id", json::Value::string(config.key_id));
  doc.set("applied_at_ms", json::Value::integer(config.applied_at_ms));
  doc.set("applied_at", json::Value::string(formatRfc3339(config.applied_at_ms)));
  doc.set("config", config.overlay);
  doc.set("sha256", json::Value::string(configChecksum(config.overlay)));

  std::lock_guard lock(mu_);
  const fs::path current = dir_ / "config-current.json";
  const fs::path previous = dir_ / "config-previous.json";
  // Only a current file that is itself readable becomes the last known good.
  if (readConfigFile(current)) {
    PSA_TRY(os::renameDurably(current, previous));
  }
  PSA_TRY(
      os::writeFileDurably(current, json::serialize(doc, true) + "\n", os::FileAccess::owner_only));
  const int64_t before = last_applied_;
  last_applied_ = std::max(last_applied_, config.version);
  applied_ = config;
  if (Status st = writeStateLocked(); !st) {
    last_applied_ = before;
    return st;
  }
  return {};
}

Result<StoredConfig> RemoteState::readCurrent() const {
  return readConfigFile(dir_ / "config-current.json");
}

Result<StoredConfig> RemoteState::readPrevious() const {
  return readConfigFile(dir_ / "config-previous.json");
}

Result<StoredConfig> RemoteState::readConfigFile(const fs::path& file) const {
  auto doc = readJson(file);
  if (!doc) {
    return std::move(doc).error();
  }
  const json::Value* config = doc->find("config");
  const json::Value* version = doc->find("version");
  if (doc->getInt("format", 0) != 1 || config == nullptr || !config->isObject() ||
      version == nullptr || !version->isInteger() || version->asInt() < 1) {
    return Error(Errc::corrupt, file.string() + " is damaged: missing format, version or config");
  }
  if (doc->getString("sha256") != configChecksum(*config)) {
    return Error(Errc::corrupt, file.string() + " is damaged: checksum mismatch");
  }
  StoredConfig out;
  out.version = version->asInt();
  out.key_id = doc->getString("key_id");
  out.applied_at_ms = doc->getInt("applied_at_ms", 0);
  out.overlay = *config;
  return out;
}

std::optional<LockInfo> RemoteState::lock() const {
  std::lock_guard lock(mu_);
  return lock_;
}

Status RemoteState::setLock(const LockInfo& info) {
  json::Value doc = json::Value::object();
  doc.set("reason", json::Value::string(info.reason));
  doc.set("by", json::Value::string(info.by));
  doc.set("at_ms", json::Value::integer(info.at_ms));
  doc.set("at", json::Value::string(formatRfc3339(info.at_ms)));
  std::lock_guard lock(mu_);
  PSA_TRY(os::writeFileDurably(dir_ / "lock.json", json::serialize(doc, true) + "\n",
                               os::FileAccess::owner_only));
  lock_ = info;
  return {};
}

Status RemoteState::clearLock() {
  std::lock_guard lock(mu_);
  const fs::path file = dir_ / "lock.json";
  std::error_code ec;
  fs::remove(file, ec);
  if (ec) {
    return Error(Errc::io, "cannot remove " + file.string() + ": " + ec.message());
  }
  PSA_TRY(os::syncDirectory(dir_));
  lock_.reset();
  return {};
}

bool RemoteState::commandSeen(const std::string& id) const {
  std::lock_guard lock(mu_);
  return commands_.count(id) != 0;
}

Status RemoteState::rememberCommand(const std::string& id, int64_t expires_at_ms, int64_t now_ms) {
  std::lock_guard lock(mu_);
  // Expired ids are refused as expired anyway: forget them.
  for (auto it = commands_.begin(); it != commands_.end();) {
    it = it->second <= now_ms ? commands_.erase(it) : std::next(it);
  }
  while (commands_.size() >= kMaxRememberedCommands) {
    auto oldest = std::min_element(commands_.begin(), commands_.end(),
                                   [](const auto& a, const auto& b) { return a.second < b.second; });
    commands_.erase(oldest);
  }
  commands_[id] = expires_at_ms;
  return writeStateLocked();
}

Status RemoteState::writeStateLocked() {
  json::Value doc = json::Value::object();
  doc.set("format", json::Value::integer(1));
  doc.set("last_applied_version", json::Value::integer(last_applied_));
  json::Value cmds = json::Value::object();
  for (const auto& [id, exp] : commands_) {
    cmds.members().emplace_back(id, json::Value::integer(exp));
  }
  doc.set("commands", std::move(cmds));
  return os::writeFileDurably(dir_ / "state.json", json::serialize(doc) + "\n",
                              os::FileAccess::owner_only);
}

}  // namespace psa::agent
