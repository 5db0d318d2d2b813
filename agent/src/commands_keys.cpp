// `pms-agent keys export` / `keys import`: moving the queue's data keys to another server. On
// Windows the key file is DPAPI-protected for this machine, so a copied state folder alone does
// not decrypt on the new one: export writes the keys as plain text (the Linux key file format),
// import protects them again there. Both run with the agent stopped (the queue must not change
// while it moves) and are recorded in the audit trail with the caller's identity.
#include <fstream>
#include <sstream>

#include "audit_trail.h"
#include "cli_support.h"
#include "command.h"
#include "control_transport.h"
#include "psa/store/os/durable_file.h"
#include "psa/store/os/utf8_path.h"

namespace psa::agent {

namespace {

namespace fs = std::filesystem;

// Both commands move files the running agent owns: refuse while it runs.
bool agentStopped(CommandContext& ctx, const Config& cfg, const std::string& command) {
  AgentReply reply = askAgent(cfg, "status", json::Value::object(), std::chrono::seconds(10));
  if (reply.reach == AgentReach::answered || reply.reach == AgentReach::no_answer) {
    ctx.err << "pms-agent " << command
            << ": the agent is running; stop it first (systemctl stop pms-agent / net stop "
               "pms-agent): the queue must not change while its keys move\n";
    return false;
  }
  if (reply.reach == AgentReach::denied) {
    ctx.err << "pms-agent " << command << ": " << reply.error << "\n";
    return false;
  }
  return true;
}

json::Value detail(size_t keys, const fs::path& file) {
  json::Value d = json::Value::object();
  d.set("keys", json::Value::integer(static_cast<int64_t>(keys)));
  d.set("file", json::Value::string(os::pathToUtf8(file)));
  return d;
}

size_t keyCount(const std::string& text) {
  std::istringstream in(text);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.rfind("key ", 0) == 0 ? 1 : 0;
  }
  return n;
}

int exportKeys(const po::variables_map& vm, CommandContext& ctx) {
  auto cli = loadCliConfig(ctx, "keys export");
  if (!cli) {
    return kExitFailure;
  }
  const Config& cfg = *cli->config;
  if (!agentStopped(ctx, cfg, "keys export")) {
    return kExitFailure;
  }
  const fs::path out = os::pathFromUtf8(vm["out"].as<std::string>());
  auto text = store::SqliteStore::exportKeys(cfg.store.key_file);
  if (!text) {
    ctx.err << "pms-agent keys export: " << text.error().message << "\n";
    return kExitFailure;
  }
  const size_t keys = keyCount(text->reveal());
  auto opened = store::SqliteStore::open(cfg.store);
  if (!opened) {
    ctx.err << "pms-agent keys export: " << opened.error().message << "\n";
    return kExitFailure;
  }
  // On record before the key leaves the machine.
  Status audited = auditAct(**opened, localPeer().actor(), "cli.keys.export", detail(keys, out));
  (*opened)->close();
  if (!audited) {
    ctx.err << "pms-agent keys export: cannot record the export in the audit trail ("
            << audited.error().message << "); nothing exported\n";
    return kExitFailure;
  }
  if (Status st = os::writeFileDurably(out, text->reveal(), os::FileAccess::owner_only); !st) {
    ctx.err << "pms-agent keys export: " << st.error().message << "\n";
    return kExitFailure;
  }
  ctx.out << checkLine("OK", "keys export",
                       os::pathToUtf8(out) + " (" + std::to_string(keys) +
                           " keys, readable by you alone) ▸ it decrypts the queue: move it with "
                           "the queue, then `pms-agent keys import FILE` there and delete it")
          << "\n";
  return kExitOk;
}

int importKeys(const po::variables_map& vm, CommandContext& ctx) {
  auto cli = loadCliConfig(ctx, "keys import");
  if (!cli) {
    return kExitFailure;
  }
  const Config& cfg = *cli->config;
  if (!agentStopped(ctx, cfg, "keys import")) {
    return kExitFailure;
  }
  const fs::path file = os::pathFromUtf8(vm["file"].as<std::string>());
  std::string text;
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      ctx.err << "pms-agent keys import: cannot read " << os::pathToUtf8(file) << "\n";
      return kExitFailure;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (Status st = os::createServiceDirectory(cfg.state_dir); !st) {
    ctx.err << "pms-agent keys import: " << st.error().message << "\n";
    return kExitFailure;
  }
  // Written beside the key file first, and tried on the queue: keys that do not open it never
  // replace the ones that do.
  fs::path trial = cfg.store.key_file;
  trial += ".import";
  Status written = store::SqliteStore::importKeys(trial, text, os::pathToUtf8(file));
  std::fill(text.begin(), text.end(), '\0');
  if (!written) {
    ctx.err << "pms-agent keys import: " << written.error().message << "\n";
    return kExitFailure;
  }
  store::StoreOptions trial_options = cfg.store;
  trial_options.key_file = trial;
  auto opened = store::SqliteStore::open(trial_options);
  std::error_code ec;
  if (!opened) {
    fs::remove(trial, ec);
    ctx.err << "pms-agent keys import: the keys in " << os::pathToUtf8(file)
            << " do not open the queue " << os::pathToUtf8(cfg.store.db_path) << ": "
            << opened.error().message
            << " ▸ copy the old server's queue.db (with queue.db-wal) into the state folder "
               "first; nothing was changed\n";
    return kExitFailure;
  }
  const size_t keys = (*opened)->stats() ? (*opened)->stats()->key_count : 0;
  Status audited = auditAct(**opened, localPeer().actor(), "cli.keys.import", detail(keys, file));
  (*opened)->close();
  if (!audited) {
    fs::remove(trial, ec);
    ctx.err << "pms-agent keys import: cannot record the import in the audit trail ("
            << audited.error().message << "); nothing was changed\n";
    return kExitFailure;
  }
  if (Status st = os::renameDurably(trial, cfg.store.key_file); !st) {
    ctx.err << "pms-agent keys import: " << st.error().message << "\n";
    return kExitFailure;
  }
  ctx.out << checkLine("OK", "keys import",
                       os::pathToUtf8(cfg.store.key_file) + " now holds the " +
                           std::to_string(keys) +
                           " keys of the queue, protected for this machine ▸ delete " +
                           os::pathToUtf8(file) + ", then start the agent")
          << "\n";
  return kExitOk;
}

}  // namespace

void addKeyMoveCommands(CommandTable& table) {
  table.add(Command{
      "keys export", "--out FILE",
      "write the queue's data keys to FILE for a move to another server (agent stopped)",
      "With the agent stopped, writes the keys as plain text (readable by you alone) and\n"
      "records the export in the audit trail. On Windows the key file is protected for this\n"
      "machine (DPAPI): move FILE with the state folder and run `pms-agent keys import FILE`\n"
      "on the new server. FILE decrypts the queue: delete it once imported.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("out", po::value<std::string>()->required(), "where to write the keys");
      },
      exportKeys});
  table.add(Command{
      "keys import", "FILE",
      "take the data keys in FILE (from keys export) as this server's key file (agent stopped)",
      "Checks FILE, then that its keys open the queue in the state folder (copy the old\n"
      "server's queue.db there first), then replaces the key file, protected for this machine,\n"
      "and records the import in the audit trail. Keys that do not open the queue change\n"
      "nothing.",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::string>()->required(), "the exported key file");
        p.add("file", 1);
      },
      importKeys});
}

}  // namespace psa::agent
