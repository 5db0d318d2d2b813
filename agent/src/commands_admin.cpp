// `pms-agent audit verify`, `keys rotate`, `keys init`, `log level [LEVEL]`.

#include "cli_support.h"
#include "command.h"
#include "psa/store/os/durable_file.h"

namespace psa::agent {
namespace {

constexpr auto kAdminTimeout = std::chrono::minutes(5);

}  // namespace

/// "OK    audit chain  intact: ..." / "FAIL  audit chain  broken at entry N: ..." for a verify
/// result; true when intact.
bool auditVerifyLine(const json::Value& v, std::string& line) {
  const uint64_t entries = static_cast<uint64_t>(v.getInt("entries"));
  if (v.getBool("ok")) {
    line = checkLine("OK", "audit chain",
                     "intact: " + humanCount(entries) + (entries == 1 ? " entry" : " entries") +
                         (entries ? " (seq " + humanCount(static_cast<uint64_t>(v.getInt("first_seq"))) +
                                        " to " + humanCount(static_cast<uint64_t>(v.getInt("last_seq"))) + ")"
                                  : std::string()));
    return true;
  }
  line = checkLine("FAIL", "audit chain",
                   "broken at entry " + std::to_string(v.getInt("first_bad_seq")) + ": " +
                       v.getString("problem") +
                       " ▸ the audit table was changed outside the agent; keep a copy of the "
                       "database (pms-agent bundle) and report it");
  return false;
}

void addAdminCommands(CommandTable& table) {
  table.add(Command{
      "audit verify", "", "verify the audit trail's hash chain and report the first break",
      "Walks every entry: each one's SHA-256 must match its contents and link to the previous\n"
      "entry. Works while the agent is down. Exit 0 if intact, 1 at the first break.",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("json", "machine-readable output");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        auto cli = loadCliConfig(ctx, "audit verify");
        if (!cli) {
          return kExitFailure;
        }
        ControlResponse r = readFromAgentOrFiles(ctx, *cli->config, "audit.verify",
                                                 json::Value::object(), &auditVerifyOp);
        if (!r.ok) {
          ctx.err << "pms-agent audit verify: " << r.error << "\n";
          return r.exit_code == 0 ? kExitFailure : r.exit_code;
        }
        std::string line;
        const bool ok = auditVerifyLine(r.result, line);
        if (vm.count("json")) {
          ctx.out << json::serialize(r.result, true) << "\n";
        } else {
          ctx.out << line << "\n";
        }
        return ok ? kExitOk : kExitFailure;
      }});

  table.add(Command{
      "keys rotate", "", "start using a new data key for new records",
      "Needs the running agent; audited with your uid. Older keys stay in the key file until\n"
      "no record needs them. Back up the key file afterwards.",
      {},
      [](const po::variables_map&, CommandContext& ctx) {
        ControlResponse r;
        if (int rc = actOnAgent(ctx, "keys rotate", "keys.rotate", json::Value::object(), r, kAdminTimeout);
            rc != kExitOk) {
          return rc;
        }
        ctx.out << checkLine("OK", "keys rotate",
                             "new data key " + std::to_string(r.result.getInt("key_id")) +
                                 " is used for new records (" +
                                 std::to_string(r.result.getInt("keys")) +
                                 " keys in the key file; older ones are dropped when their "
                                 "records drain) ▸ back up the key file")
                << "\n";
        return kExitOk;
      }});

  table.add(Command{
      "keys init", "", "create the store's key file (and database) if missing",
      "The package's postinst runs this as the service user, so the key file belongs to it\n"
      "(mode 0600). Does nothing when the key file exists or the agent runs. A database\n"
      "that holds records without its key file is an error: restore the key from backup.",
      {},
      [](const po::variables_map&, CommandContext& ctx) {
        auto cli = loadCliConfig(ctx, "keys init");
        if (!cli) {
          return kExitFailure;
        }
        const Config& cfg = *cli->config;
        std::error_code ec;
        if (std::filesystem::exists(cfg.store.key_file, ec)) {
          ctx.out << checkLine("OK", "keys init", cfg.store.key_file.string() + " exists") << "\n";
          return kExitOk;
        }
        AgentReply reply = askAgent(cfg, "status", json::Value::object(), std::chrono::seconds(10));
        if (reply.reach == AgentReach::answered || reply.reach == AgentReach::no_answer) {
          ctx.err << "pms-agent keys init: an agent is running with this config; it manages the "
                     "key file itself\n";
          return kExitFailure;
        }
        if (reply.reach == AgentReach::denied) {
          ctx.err << "pms-agent keys init: " << reply.error << "\n";
          return kExitFailure;
        }
        os::restrictNewFilesToOwner();  // the database and its WAL are the service's alone
        if (Status st = os::createServiceDirectory(cfg.state_dir); !st) {
          ctx.err << "pms-agent keys init: " << st.error().message << "\n";
          return kExitFailure;
        }
        auto opened = store::SqliteStore::open(cfg.store);
        if (!opened) {
          ctx.err << "pms-agent keys init: " << opened.error().message << "\n";
          return kExitFailure;
        }
        const bool created = (*opened)->openReport().key_created;
        (*opened)->close();
        ctx.out << checkLine("OK", "keys init",
                             cfg.store.key_file.string() +
                                 (created ? " created (mode 0600)" : " exists"))
                << "\n";
        return kExitOk;
      }});

  table.add(Command{
      "log level", "[LEVEL]", "show or change the running agent's log level (debug, info, warn, error)",
      "Changes the level at once, until the next restart (the config's agent.log_level\n"
      "applies again then). Needs the running agent; a change is audited with your uid.",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("level", po::value<std::string>(), "debug, info, warn or error");
        p.add("level", 1);
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        json::Value args = json::Value::object();
        if (vm.count("level")) {
          const std::string level = vm["level"].as<std::string>();
          log::Level parsed;
          if (level == "off" || !log::parseLevel(level, parsed)) {
            ctx.err << "pms-agent log level: unknown level \"" << level.substr(0, 32)
                    << "\" (expected debug, info, warn or error)\n";
            return kExitUsage;
          }
          args.set("level", json::Value::string(level));
        }
        ControlResponse r;
        if (int rc = actOnAgent(ctx, "log level", "log.level", std::move(args), r, kAdminTimeout); rc != kExitOk) {
          return rc;
        }
        if (vm.count("level")) {
          ctx.out << checkLine("OK", "log level",
                               r.result.getString("level") + " (was " +
                                   r.result.getString("previous") + "; back to " +
                                   r.result.getString("config_level") + " at the next restart)")
                  << "\n";
        } else {
          ctx.out << r.result.getString("level") << " (config: " << r.result.getString("config_level")
                  << ")\n";
        }
        return kExitOk;
      }});
}

}  // namespace psa::agent
