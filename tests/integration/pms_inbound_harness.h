// The PMS-inbound MLLP simulator (tests/sim/pms_inbound_sim.py) as a real child process, for
// the write-back tests: its port, restarts on the same port with the same change log, and the
// change log (one line per message the PMS applied).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test {

// The simulator as a child process; restart() brings it back on the same port with the same
// change log (a PMS that persists what it applied).
class InboundSim {
 public:
  InboundSim(const TempDir& dir, std::vector<std::string> args)
      : InboundSim(dir.path(), std::move(args)) {}
  InboundSim(std::filesystem::path dir, std::vector<std::string> args)
      : dir_(std::move(dir)), args_(std::move(args)) {
    start();
  }

  void start() {
    const std::filesystem::path ready = dir_ / "inbound.ready.json";
    std::filesystem::remove(ready);
    Process::Options opts;
    opts.argv = {"/usr/bin/python3", std::string(PSA_SOURCE_DIR) + "/tests/sim/pms_inbound_sim.py",
                 "--ready-file",     ready.string(),
                 "--change-log",     changeLogPath().string(),
                 "--port",           std::to_string(port_)};
    opts.argv.insert(opts.argv.end(), args_.begin(), args_.end());
    opts.stdout_file = dir_ / "inbound.log";
    process_.emplace(std::move(opts));
    if (!waitFor([&] { return std::filesystem::exists(ready) || !process_->running(); },
                 std::chrono::seconds(60)) ||
        !std::filesystem::exists(ready)) {
      throw std::runtime_error("pms_inbound_sim did not start: " + readFile(dir_ / "inbound.log"));
    }
    port_ = static_cast<int>(json::parse(readFile(ready)).value().getInt("port"));
  }

  void kill() { process_->kill(); }
  /// Options for the next start().
  void setArgs(std::vector<std::string> args) { args_ = std::move(args); }
  int port() const { return port_; }
  std::filesystem::path changeLogPath() const { return dir_ / "changes.jsonl"; }

  /// Change-log entries for `msh10` (every entry when empty).
  std::vector<json::Value> changes(const std::string& msh10 = {}) const {
    std::vector<json::Value> out;
    if (!std::filesystem::exists(changeLogPath())) {
      return out;
    }
    const std::string text = readFile(changeLogPath());
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) {
        end = text.size();
      }
      auto v = json::parse(std::string_view(text).substr(start, end - start));
      if (v && (msh10.empty() || v->getString("msh10") == msh10)) {
        out.push_back(std::move(v).value());
      }
      start = end + 1;
    }
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::vector<std::string> args_;
  int port_ = 0;
  std::optional<Process> process_;
};

}  // namespace psa::test
