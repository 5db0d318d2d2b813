// Runs the real `pms-agent run` process for integration tests: writes a config into a temp
// state dir, starts the binary, waits for readiness, and stops it (SIGTERM or SIGKILL).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test {

class AgentProcess {
 public:
  /// `config` is the whole config document; agent.state_dir is set to `state_dir` if absent.
  AgentProcess(std::filesystem::path state_dir, json::Value config);
  ~AgentProcess();

  const std::filesystem::path& configFile() const { return config_file_; }
  const std::filesystem::path& logFile() const { return log_file_; }
  const std::filesystem::path& stateDir() const { return state_dir_; }
  json::Value& config() { return config_; }

  /// Runs `program` instead of build/bin/pms-agent (a test build of the agent with extra
  /// adapter types, e.g. agent_testsources); it must take `run --config FILE`.
  void setProgram(std::filesystem::path program) { program_ = std::move(program); }
  /// Adds `name=value` to the environment of the processes start() launches from now on (an
  /// empty value takes it out again), e.g. PSA_TEST_FAULT (psa/store/test_fault.h).
  void setEnvironment(const std::string& name, const std::string& value);
  /// Writes config() to the config file (start() does this too).
  void writeConfig();
  /// Writes the config file and sends SIGHUP (the agent reloads it through the staged apply).
  void reload();
  /// Writes the config and starts the process; returns after the "ready" log line (or false on
  /// timeout / early exit).
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// SIGTERM and wait; returns the exit code (or -1 on timeout).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// SIGKILL.
  void kill();
  bool running();
  Process* process() { return process_.get(); }
  std::string log() const;
  /// Runs `pms-agent --config <file> args...` to completion.
  CommandResult cli(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

 private:
  std::filesystem::path state_dir_;
  std::filesystem::path config_file_;
  std::filesystem::path log_file_;
  json::Value config_;
  std::unique_ptr<Process> process_;
  std::filesystem::path program_;
  std::map<std::string, std::string> env_;
  size_t log_offset_ = 0;
};

}  // namespace psa::test
