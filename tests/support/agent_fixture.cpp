#include "agent_fixture.h"

#include <signal.h>

namespace psa::test {

AgentProcess::AgentProcess(std::filesystem::path state_dir, json::Value config)
    : state_dir_(std::move(state_dir)), config_(std::move(config)) {
  std::filesystem::create_directories(state_dir_);
  config_file_ = state_dir_ / "agent.json";
  log_file_ = state_dir_ / "agent.log";
  json::Value* agent = config_.find("agent");
  if (agent == nullptr) {
    agent = &config_.set("agent", json::Value::object());
  }
  if (agent->find("state_dir") == nullptr) {
    agent->set("state_dir", json::Value::string(state_dir_.string()));
  }
  if (config_.find("control") == nullptr) {
    json::Value control = json::Value::object();
    control.set("socket", json::Value::string((state_dir_ / "control.sock").string()));
    config_.set("control", std::move(control));
  }
}

AgentProcess::~AgentProcess() {
  if (process_ && process_->running()) {
    process_->kill();
  }
}

void AgentProcess::setEnvironment(const std::string& name, const std::string& value) {
  if (value.empty()) {
    env_.erase(name);
  } else {
    env_[name] = value;
  }
}

void AgentProcess::writeConfig() { writeFile(config_file_, json::serialize(config_, true)); }

void AgentProcess::reload() {
  writeConfig();
  if (process_) {
    process_->signal(SIGHUP);
  }
}

bool AgentProcess::start(std::chrono::milliseconds timeout) {
  writeConfig();
  log_offset_ = readFile(log_file_).size();
  Process::Options opts;
  opts.argv = {(program_.empty() ? binary("pms-agent") : program_).string(), "run", "--config",
               config_file_.string()};
  opts.stdout_file = log_file_;
  opts.env = env_;
  process_ = std::make_unique<Process>(std::move(opts));
  return waitFor(
      [&] {
        if (!process_->running()) {
          return true;
        }
        return readFile(log_file_).find("event=ready", log_offset_) != std::string::npos;
      },
      timeout) &&
         process_->running();
}

int AgentProcess::stop(std::chrono::milliseconds timeout) {
  if (!process_) {
    return -1;
  }
  process_->signal(SIGTERM);
  auto st = process_->wait(timeout);
  return st ? *st : -1;
}

void AgentProcess::kill() {
  if (process_) {
    process_->kill();
  }
}

bool AgentProcess::running() { return process_ && process_->running(); }

std::string AgentProcess::log() const { return readFile(log_file_); }

CommandResult AgentProcess::cli(const std::vector<std::string>& args,
                                std::chrono::milliseconds timeout) const {
  std::vector<std::string> argv = {binary("pms-agent").string(), "--config", config_file_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return runCommand(argv, timeout);
}

}  // namespace psa::test
