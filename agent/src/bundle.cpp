#include "bundle.h"

#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include "bundle_system.h"
#include "cli_support.h"
#include "psa/store/clock.h"
#include "psa/store/os/durable_file.h"
#include "status_document.h"

namespace psa::agent {
namespace {

namespace fs = std::filesystem;

std::string pretty(const json::Value& v) { return json::serialize(v, true) + "\n"; }

// The last `n` lines of a text file (reads at most the last 4 MB).
std::vector<std::string> tailFile(const fs::path& file, size_t n) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return {};
  }
  in.seekg(0, std::ios::end);
  const auto size = static_cast<int64_t>(in.tellg());
  const int64_t start = std::max<int64_t>(0, size - (4 << 20));
  in.seekg(start);
  std::deque<std::string> lines;
  std::string line;
  bool first = start > 0;  // a partial first line is dropped
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      continue;
    }
    lines.push_back(std::move(line));
    if (lines.size() > n) {
      lines.pop_front();
    }
  }
  return {lines.begin(), lines.end()};
}

std::string stamp() {
  const std::tm tm = utcCalendar(Clock::system()->nowMs() / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

std::vector<ArchiveFile> collectBundle(CommandContext& ctx, const BundleOptions& o,
                                       std::vector<std::string>& notes) {
  std::vector<ArchiveFile> files;
  adapters::SourceRegistry registry;
  adapters::registerBuiltinSources(registry);
  ConfigLoad load = loadConfig(ctx.config_path, registry);
  const std::string agent_id = load.config ? load.config->agent_id : "unknown";
  const std::string dir = "pms-agent-bundle-" + agent_id + "-" + stamp() + "/";
  auto add = [&](const std::string& name, std::string data) {
    files.push_back(ArchiveFile{dir + name, std::move(data), 0600});
  };

  add("version.json", pretty(versionInfo()));
  add("system.txt", systemInfo());

  // Checks first: they also say what is wrong when the rest cannot be collected.
  CheckReport checks = runChecks(ctx.config_path, o.checks);
  add("check.txt", checkReportText(checks));
  add("check.json", pretty(checkReportJson(checks)));

  if (!load.config) {
    std::string problems = load.fatal.empty() ? "" : load.fatal + "\n";
    for (const auto& i : load.issues) {
      problems += ctx.config_path.string() + ":" + std::to_string(i.line) + ":" +
                  std::to_string(i.column) + ": " + (i.path.empty() ? "" : i.path + ": ") +
                  i.message + "\n";
    }
    add("config-problems.txt", problems);
    notes.push_back("the config is invalid: only version, system and check results are included");
    return files;
  }
  const Config& cfg = *load.config;
  add("config.json", pretty(maskedConfig(cfg, registry)));

  std::ostringstream quiet;
  CommandContext sub{ctx.config_path, ctx.config_given, quiet, quiet};
  json::Value status;
  bool running = false;
  if (fetchStatus(sub, cfg, status, running, true)) {
    add("status.json", pretty(status));
    std::ostringstream text;
    renderStatus(text, status);
    add("status.txt", text.str());
  } else {
    notes.push_back("status: " + quiet.str());
  }
  if (!running) {
    notes.push_back("the agent was not running: status, queue and audit come from its files");
  }

  json::Value args = json::Value::object();
  ControlResponse stats =
      readFromAgentOrFiles(sub, cfg, "queue.stats", json::Value::object(), &queueStatsOp);
  if (stats.ok) {
    add("queue-stats.json", pretty(stats.result));
  } else {
    notes.push_back("queue stats: " + stats.error);
  }
  json::Value dead_args = json::Value::object();
  dead_args.set("dead", json::Value::boolean(true));
  dead_args.set("limit", json::Value::integer(static_cast<int64_t>(std::min<size_t>(o.dead_letters, 1000))));
  ControlResponse dead = readFromAgentOrFiles(sub, cfg, "queue.list", dead_args, &queueListOp);
  if (dead.ok) {
    add("dead-letters.json", pretty(dead.result));
  }

  ControlResponse verify =
      readFromAgentOrFiles(sub, cfg, "audit.verify", json::Value::object(), &auditVerifyOp);
  if (verify.ok) {
    add("audit-verify.json", pretty(verify.result));
    json::Value a = json::Value::object();
    const int64_t last = verify.result.getInt("last_seq");
    a.set("after", json::Value::integer(std::max<int64_t>(0, last - static_cast<int64_t>(o.audit_entries))));
    a.set("limit", json::Value::integer(static_cast<int64_t>(std::min<size_t>(o.audit_entries, 1000))));
    ControlResponse entries = readFromAgentOrFiles(sub, cfg, "audit.entries", a, &auditEntriesOp);
    if (entries.ok) {
      add("audit-recent.json", pretty(entries.result));
    }
  } else {
    notes.push_back("audit: " + verify.error);
  }

  // Logs: the agent's own recent lines, else the log file.
  std::string log_text;
  if (running) {
    json::Value la = json::Value::object();
    la.set("lines", json::Value::integer(static_cast<int64_t>(std::min<size_t>(o.log_lines, 2000))));
    AgentReply lr = askAgent(cfg, "log.recent", la);
    if (lr.reach == AgentReach::answered && lr.response.ok) {
      for (const auto& l : lr.response.result.find("lines")->items()) {
        log_text += l.asString() + "\n";
      }
    }
  }
  if (log_text.empty() && !cfg.log_file.empty()) {
    for (const auto& l : tailFile(cfg.log_file, o.log_lines)) {
      log_text += l + "\n";
    }
  }
  if (!log_text.empty()) {
    add("log.txt", log_text);
  } else {
    notes.push_back("no log lines: the agent is not running and agent.log_file is not set (see "
                    "journal.txt)");
  }
  if (o.journal) {
    ServiceLogExtract extract = serviceLogExtract(o.log_lines);
    if (!extract.text.empty()) {
      add(extract.file_name, extract.text);
    }
  }

  std::string readme =
      "Support bundle of the Practice Studio Edge Agent " + agent_id + "\n"
      "Created " + formatRfc3339(Clock::system()->nowMs()) + " from " + ctx.config_path.string() +
      "\n\nIt holds no patient data: payloads are never read, logs carry ids and counts only,\n"
      "and secrets in the config are masked.\n\nFiles:\n";
  for (const auto& f : files) {
    readme += "  " + f.name.substr(dir.size()) + "\n";
  }
  if (!notes.empty()) {
    readme += "\nNotes:\n";
    for (const auto& n : notes) {
      readme += "  - " + n + "\n";
    }
  }
  files.insert(files.begin(), ArchiveFile{dir + "README.txt", readme, 0600});
  return files;
}

Status writeBundle(const fs::path& out, const std::vector<ArchiveFile>& files) {
  const int64_t now_s = Clock::system()->nowMs() / 1000;
  auto tar = tarArchive(files, now_s);
  if (!tar) {
    return tar.error();
  }
  const std::string gz = gzipStored(*tar, now_s);
  return os::writeFileDurably(out, gz, os::FileAccess::owner_only);
}

}  // namespace psa::agent
