// `pms-agent config lock --reason TEXT` / `config unlock`: a technician freezes the config on
// site so remote pushes are refused with `locked` until unlocked. Talks to the running agent
// (the lock is persisted in <state_dir>/remote/lock.json, audited with the caller's uid, and
// shown in `status`).
#include <fstream>
#include <iostream>
#include <sstream>

#include "command.h"
#include "control_server.h"
#include "psa/agent/config.h"
#include "psa/store/json.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {
namespace {

// The control socket named by a config file. Only the two keys it needs are read, so a config
// with adapter types this binary does not know still works.
Result<std::filesystem::path> socketFromConfig(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Error(Errc::io, "cannot read config file " + file.string());
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  if (!doc || !doc->isObject()) {
    return Error(Errc::invalid_input, file.string() + " is not valid JSON; run `pms-agent config validate`");
  }
  std::filesystem::path state_dir = platformDefaults().state_dir;
  if (const json::Value* agent = doc->find("agent"); agent != nullptr && agent->isObject()) {
    state_dir = os::pathFromUtf8(agent->getString("state_dir", os::pathToUtf8(state_dir)));
  }
  std::filesystem::path socket = platformDefaults().control_address;
  if (const json::Value* control = doc->find("control"); control != nullptr && control->isObject()) {
    socket = os::pathFromUtf8(control->getString("socket", os::pathToUtf8(socket)));
  }
  return socket.is_absolute() ? socket : state_dir / socket;
}

int callLock(const po::variables_map& vm, CommandContext& ctx, ControlRequest request) {
  auto socket = socketFromConfig(ctx.config_path);
  if (!socket) {
    ctx.err << "pms-agent " << request.cmd << ": " << socket.error().message << "\n";
    return kExitFailure;
  }
  auto response = callAgent(*socket, request, std::chrono::seconds(30));
  if (!response) {
    ctx.err << "pms-agent: " << response.error().message << "\n";
    return kExitFailure;
  }
  if (!response->ok) {
    ctx.err << "pms-agent: " << response->error << "\n";
    return response->exit_code == 0 ? kExitFailure : response->exit_code;
  }
  const json::Value& r = response->result;
  if (vm.count("json") != 0) {
    ctx.out << json::serialize(r, true) << "\n";
    return kExitOk;
  }
  if (r.getBool("locked")) {
    ctx.out << "config locked" << (r.getBool("was_locked") ? " (was already locked; reason updated)" : "")
            << ": remote config pushes are refused with \"locked\" until `pms-agent config unlock`\n"
            << "  reason: " << r.getString("reason") << "\n";
  } else {
    ctx.out << (r.getBool("was_locked") ? "config unlocked: remote config pushes are accepted again\n"
                                        : "config was not locked\n");
  }
  return kExitOk;
}

}  // namespace

void addLockCommands(CommandTable& table) {
  table.add(Command{
      "config lock", "--reason TEXT",
      "lock the config on site: remote pushes are refused with \"locked\" until unlocked",
      "The lock survives restarts, is audited with your uid, and shows in `pms-agent status`.\n"
      "Remote commands (ping, status, bundle, ...) still work. Needs the running agent.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("reason", po::value<std::string>()->required(),
                        "why (shown to the cloud and in status)")("json", "machine-readable output");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        const std::string reason = vm["reason"].as<std::string>();
        if (reason.empty()) {
          ctx.err << "pms-agent config lock: --reason must not be empty\n";
          return kExitUsage;
        }
        ControlRequest req;
        req.cmd = "config.lock";
        req.args.set("reason", json::Value::string(reason));
        return callLock(vm, ctx, std::move(req));
      }});
  table.add(Command{
      "config unlock", "", "remove the on-site config lock: remote pushes are accepted again", "",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("json", "machine-readable output");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        ControlRequest req;
        req.cmd = "config.unlock";
        return callLock(vm, ctx, std::move(req));
      }});
}

}  // namespace psa::agent
