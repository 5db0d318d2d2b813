#include "cli_support.h"

#include <cmath>
#include <cstdio>
#include <ostream>

#include "control_server.h"
#include "psa/store/clock.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {

std::unique_ptr<CliConfig> loadCliConfig(CommandContext& ctx, const std::string& command) {
  auto out = std::make_unique<CliConfig>();
  adapters::registerBuiltinSources(out->registry);
  ConfigLoad load = loadConfig(ctx.config_path, out->registry);
  if (!load.config) {
    if (!load.fatal.empty() && load.issues.empty()) {
      ctx.err << "pms-agent " << command << ": " << load.fatal << "\n";
    }
    for (const auto& issue : load.issues) {
      ctx.err << ctx.config_path.string() << ":" << issue.line << ":" << issue.column << ": "
              << (issue.path.empty() ? "" : issue.path + ": ") << issue.message << "\n";
    }
    if (!load.issues.empty()) {
      ctx.err << "pms-agent " << command << ": the config is invalid ▸ pms-agent config validate "
              << ctx.config_path.string() << "\n";
    }
    if (!ctx.config_given) {
      ctx.err << "(the config file defaults to " << os::pathToUtf8(platformDefaults().config_file)
              << "; use --config FILE or $PMS_AGENT_CONFIG)\n";
    }
    return nullptr;
  }
  out->config = std::move(load.config);
  return out;
}

AgentReply askAgent(const Config& config, const std::string& cmd, json::Value args,
                    std::chrono::milliseconds timeout) {
  AgentReply reply;
  ControlRequest req;
  req.cmd = cmd;
  req.args = std::move(args);
  auto res = callAgent(config.control_socket, req, timeout);
  if (res) {
    reply.reach = AgentReach::answered;
    reply.response = std::move(res).value();
    return reply;
  }
  const Error& e = res.error();
  reply.error = e.message;
  if (e.is(Errc::unavailable)) {
    reply.reach = AgentReach::not_running;
  } else if (e.is(Errc::timeout)) {
    reply.reach = AgentReach::no_answer;
    reply.error = "the agent does not answer on " + config.control_socket.string() + " (" +
                  e.message + "); is it hung? ▸ journalctl -u pms-agent -n 50";
  } else if (e.is(Errc::unauthorized)) {
    reply.reach = AgentReach::denied;
  } else {
    reply.reach = AgentReach::failed;
  }
  return reply;
}

Result<store::SqliteStorePtr> openStoreReadOnly(const Config& config) {
  store::StoreOptions o = config.store;
  o.read_only = true;
  o.integrity_check = store::IntegrityCheck::off;
  auto opened = store::SqliteStore::open(o);
  if (!opened) {
    const Error& e = opened.error();
    if (e.is(Errc::unavailable)) {
      return Error(Errc::unavailable, e.message + " (an agent that does not answer on its "
                                                  "control socket?) ▸ systemctl status pms-agent");
    }
    if (e.message.find("unable to open") != std::string::npos ||
        e.message.find("permission") != std::string::npos) {
      return Error(e.code, e.message + " ▸ run as root (the files belong to the service user)");
    }
    return e;
  }
  return std::move(opened).value();
}

ControlResponse readFromAgentOrFiles(CommandContext& ctx, const Config& config,
                                     const std::string& cmd, const json::Value& args, StoreOp op,
                                     bool* offline) {
  if (offline != nullptr) {
    *offline = false;
  }
  AgentReply reply = askAgent(config, cmd, args);
  if (reply.reach == AgentReach::answered) {
    return std::move(reply.response);
  }
  if (reply.reach == AgentReach::denied || reply.reach == AgentReach::failed) {
    return replyError(Error(Errc::unauthorized, reply.error));
  }
  noteOffline(ctx, reply);
  if (offline != nullptr) {
    *offline = true;
  }
  auto store = openStoreReadOnly(config);
  if (!store) {
    return replyError(Error(Errc::io, store.error().message));
  }
  return op(**store, args);
}

int actOnAgent(CommandContext& ctx, const std::string& command, const std::string& cmd,
               json::Value args, ControlResponse& out, std::chrono::milliseconds timeout) {
  auto cli = loadCliConfig(ctx, command);
  if (!cli) {
    return kExitFailure;
  }
  AgentReply reply = askAgent(*cli->config, cmd, std::move(args), timeout);
  if (reply.reach != AgentReach::answered) {
    return reportUnreachable(ctx, command, reply);
  }
  if (!reply.response.ok) {
    return reportAgentError(ctx, command, reply);
  }
  out = std::move(reply.response);
  return kExitOk;
}

int reportUnreachable(CommandContext& ctx, const std::string& command, const AgentReply& reply) {
  switch (reply.reach) {
    case AgentReach::not_running:
      ctx.err << "pms-agent " << command << ": " << reply.error
              << "\nThis command needs the running agent ▸ systemctl start pms-agent (then "
                 "pms-agent status)\n";
      return kExitFailure;
    case AgentReach::denied:
    case AgentReach::no_answer:
    case AgentReach::failed:
    case AgentReach::answered:
      break;
  }
  ctx.err << "pms-agent " << command << ": " << reply.error << "\n";
  return kExitFailure;
}

int reportAgentError(CommandContext& ctx, const std::string& command, const AgentReply& reply) {
  ctx.err << "pms-agent " << command << ": " << reply.response.error << "\n";
  return reply.response.exit_code == 0 ? kExitFailure : reply.response.exit_code;
}

void noteOffline(CommandContext& ctx, const AgentReply& reply) {
  if (reply.reach == AgentReach::not_running) {
    ctx.err << "pms-agent: " << reply.error << "; showing what its files say\n";
  } else {
    ctx.err << "pms-agent: " << reply.error << "\n(showing what its files say)\n";
  }
}

std::string humanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  // Powers of 1024 with the familiar labels (as df -h and file managers show them).
  while (v >= 1024.0 && u + 1 < std::size(units)) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (v < 10.0 && std::fabs(v - std::round(v)) >= 0.05) {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  }
  return buf;
}

std::string humanCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) {
      out.push_back(',');
    }
    out.push_back(digits[i]);
  }
  return out;
}

std::string humanShortCount(uint64_t n) {
  char buf[32];
  if (n >= 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  } else if (n >= 10'000) {
    std::snprintf(buf, sizeof buf, "%.1fk", static_cast<double>(n) / 1e3);
  } else {
    return std::to_string(n);
  }
  return buf;
}

std::string humanSeconds(double s) {
  char buf[48];
  if (s < 0) {
    s = 0;
  }
  if (s < 60) {
    std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%.0f min", std::floor(s / 60));
  } else if (s < 86400) {
    const auto h = static_cast<long>(s / 3600);
    const auto m = static_cast<long>(std::fmod(s, 3600) / 60);
    std::snprintf(buf, sizeof buf, "%ldh %ldmin", h, m);
  } else {
    const auto d = static_cast<long>(s / 86400);
    const auto h = static_cast<long>(std::fmod(s, 86400) / 3600);
    std::snprintf(buf, sizeof buf, "%ldd %ldh", d, h);
  }
  return buf;
}

std::string agoText(const std::string& rfc3339, int64_t now_ms) {
  int64_t ms = 0;
  if (rfc3339.empty() || !parseRfc3339(rfc3339, ms)) {
    return {};
  }
  return humanSeconds(static_cast<double>(now_ms - ms) / 1000.0) + " ago";
}

std::string padRight(const std::string& s, size_t width) {
  size_t cols = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) {
      ++cols;
    }
  }
  return cols >= width ? s + " " : s + std::string(width - cols, ' ');
}

std::string checkLine(const std::string& level, const std::string& name, const std::string& text) {
  return padRight(level, 6) + padRight(name, 14) + text;
}

bool looksLikeMsgId(const std::string& s) {
  if (s.size() != 26) {
    return false;
  }
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' &&
                                                c != 'O' && c != 'U');
    if (!ok) {
      return false;
    }
  }
  return s[0] <= '7';
}

}  // namespace psa::agent
