// `pms-agent queue ...`: inspect the queue and dead letters (from the running agent, or from
// the files when it is down) and act on them (retry, purge, salvage, reveal: running agent
// only, audited with the caller's uid).

#include <algorithm>
#include <cctype>

#include "cli_support.h"
#include "command.h"
#include "field_policy_setup.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/os/process_info.h"

namespace psa::agent {
namespace {

// Salvage and purges may walk a large database.
constexpr auto kStateChangeTimeout = std::chrono::minutes(10);

constexpr const char* kArrow = "▸";

void defineJson(po::options_description& o) {
  o.add_options()("json", "machine-readable output (stable keys)");
}

void definePaging(po::options_description& o, po::positional_options_description&) {
  o.add_options()("limit", po::value<int64_t>()->default_value(100), "at most N records (1-1000)")(
      "after", po::value<int64_t>()->default_value(0), "start after this seq (paging)");
  defineJson(o);
}

void defineId(po::options_description& o, po::positional_options_description& p) {
  o.add_options()("id", po::value<std::string>(), "the record's msg_id");
  p.add("id", 1);
}

// The ID positional, upper-cased; prints a usage error and returns false if it is not one.
bool takeId(const po::variables_map& vm, CommandContext& ctx, const std::string& command,
            std::string& id) {
  if (!vm.count("id")) {
    ctx.err << "pms-agent " << command << ": missing ID (a msg_id from `pms-agent queue list` or "
            << "`pms-agent queue dead`)\n";
    return false;
  }
  id = vm["id"].as<std::string>();
  std::transform(id.begin(), id.end(), id.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (!looksLikeMsgId(id)) {
    ctx.err << "pms-agent " << command << ": \"" << vm["id"].as<std::string>().substr(0, 64)
            << "\" is not a msg_id (26 characters of 0-9 and A-Z, as `pms-agent queue list` "
               "shows)\n";
    return false;
  }
  return true;
}

json::Value idArgs(const std::string& id) {
  json::Value a = json::Value::object();
  a.set("id", json::Value::string(id));
  return a;
}

int printJsonOrFail(CommandContext& ctx, const std::string& command, const ControlResponse& r) {
  if (!r.ok) {
    ctx.err << "pms-agent " << command << ": " << r.error << "\n";
    return r.exit_code == 0 ? kExitFailure : r.exit_code;
  }
  ctx.out << json::serialize(r.result, true) << "\n";
  return kExitOk;
}

std::string ago(const json::Value& v, std::string_view key, int64_t now) {
  std::string a = agoText(v.getString(key), now);
  return a.empty() ? "-" : a;
}

void renderStats(std::ostream& out, const json::Value& q) {
  const auto u = [&](std::string_view k) { return static_cast<uint64_t>(std::max<int64_t>(0, q.getInt(k))); };
  out << padRight("pending", 14) << humanCount(u("pending")) << " records ("
      << humanBytes(u("pending_bytes")) << " of payload)";
  if (u("leased") > 0) {
    out << ", " << humanCount(u("leased")) << " in flight";
  }
  if (u("retry") > 0) {
    out << ", " << humanCount(u("retry")) << " waiting to retry";
  }
  out << "\n";
  out << padRight("oldest", 14);
  if (const json::Value* age = q.find("oldest_pending_age_s"); age && age->isNumber()) {
    out << humanSeconds(age->asNumber()) << " (received " << q.getString("oldest_pending_at") << ")\n";
  } else {
    out << "-\n";
  }
  out << padRight("dead letters", 14) << humanCount(u("dead"));
  if (u("dead") > 0) {
    out << "  " << kArrow << " pms-agent queue dead";
  }
  out << "\n";
  out << padRight("database", 14) << humanBytes(u("db_bytes")) << " of the "
      << humanBytes(u("max_bytes")) << " budget\n";
  if (const json::Value* kinds = q.find("by_kind")) {
    out << padRight("by kind", 14);
    bool any = false;
    for (const auto& [kind, k] : kinds->members()) {
      if (k.getInt("pending") == 0 && k.getInt("dead") == 0) {
        continue;
      }
      out << (any ? ", " : "") << kind << " " << humanCount(static_cast<uint64_t>(k.getInt("pending")));
      if (k.getInt("dead") > 0) {
        out << " (dead " << k.getInt("dead") << ")";
      }
      any = true;
    }
    out << (any ? "" : "-") << "\n";
  }
  out << padRight("data keys", 14) << "current " << q.getInt("key_id") << " (" << q.getInt("keys")
      << " in use)\n";
  if (const json::Value* p = q.find("policy")) {
    out << padRight("field policy", 14) << policyCountsText(*p) << " since start\n";
  }
  out << padRight("since start", 14) << "appended " << humanCount(u("appended_total"))
      << ", delivered " << humanCount(u("delivered_total")) << ", duplicates "
      << humanCount(u("duplicates_total")) << "\n";
  if (q.find("dedupe_max_entries") != nullptr) {
    out << padRight("dedupe index", 14) << humanCount(u("dedupe_entries")) << " of "
        << humanCount(u("dedupe_max_entries")) << " identities";
    if (const json::Value* cut = q.find("dedupe_window_cut_s"); cut != nullptr && !cut->isNull()) {
      out << "  " << kArrow << " full: window cut to " << cut->asInt() / 3600
          << " h by volume (store.dedupe_max_entries)";
    }
    out << "\n";
  }
}

void renderList(std::ostream& out, const json::Value& r, bool dead, const std::string& command) {
  const auto& rows = r.find("records")->items();
  if (rows.empty()) {
    out << (dead ? "no dead letters\n" : "no queued records\n");
    return;
  }
  const int64_t now = Clock::system()->nowMs();
  size_t src_w = 6;
  for (const auto& row : rows) {
    src_w = std::max(src_w, row.getString("source").size());
  }
  out << padRight("MSG_ID", 28) << padRight("SEQ", 10) << padRight("SOURCE", src_w + 2)
      << padRight("KIND", 13) << padRight("FORMAT", 12) << padRight("SIZE", 10);
  if (dead) {
    out << padRight("DEAD", 16) << "REASON\n";
  } else {
    out << padRight("STATE", 11) << padRight("TRIES", 7) << "RECEIVED\n";
  }
  int64_t last_seq = 0;
  for (const auto& row : rows) {
    out << padRight(row.getString("msg_id"), 28) << padRight(std::to_string(row.getInt("seq")), 10)
        << padRight(row.getString("source"), src_w + 2) << padRight(row.getString("kind"), 13)
        << padRight(row.getString("format"), 12)
        << padRight(humanBytes(static_cast<uint64_t>(row.getInt("size"))), 10);
    if (dead) {
      out << padRight(ago(row, "dead_at", now), 16) << row.getString("reason") << "\n";
    } else {
      out << padRight(row.getString("state"), 11)
          << padRight(std::to_string(row.getInt("attempts")), 7) << ago(row, "received_at", now)
          << "\n";
    }
    last_seq = row.getInt("seq");
  }
  out << rows.size() << (rows.size() == 1 ? " record" : " records");
  if (r.getBool("more")) {
    out << "; more follow " << kArrow << " pms-agent " << command << " --after " << last_seq;
  }
  out << "\n";
  if (dead) {
    out << kArrow << " pms-agent queue show ID · queue retry ID · queue retry-all · queue "
                     "purge-dead\n";
  }
}

void renderRecord(std::ostream& out, const json::Value& r) {
  const int64_t now = Clock::system()->nowMs();
  auto line = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) {
      out << padRight(k, 14) << v << "\n";
    }
  };
  auto timeLine = [&](const std::string& k) {
    const std::string t = r.getString(k);
    if (!t.empty()) {
      line(k, t + " (" + agoText(t, now) + ")");
    }
  };
  line("msg_id", r.getString("msg_id"));
  line("state", r.getString("state"));
  line("seq", std::to_string(r.getInt("seq")));
  line("source", r.getString("source") + " (vendor " + r.getString("vendor") + ")");
  line("kind", r.getString("kind"));
  line("format", r.getString("format"));
  timeLine("received_at");
  line("size", humanBytes(static_cast<uint64_t>(r.getInt("size"))) + " (" +
                   humanCount(static_cast<uint64_t>(r.getInt("size"))) + " bytes)");
  line("attempts", std::to_string(r.getInt("attempts")));
  timeLine("next_attempt_at");
  line("reason", r.getString("reason"));
  timeLine("dead_at");
  line("key_id", std::to_string(r.getInt("key_id")));
}

int listCommand(const po::variables_map& vm, CommandContext& ctx, bool dead) {
  const std::string command = dead ? "queue dead" : "queue list";
  const int64_t limit = vm["limit"].as<int64_t>();
  const int64_t after = vm["after"].as<int64_t>();
  if (limit < 1 || limit > 1000) {
    ctx.err << "pms-agent " << command << ": --limit must be from 1 to 1000\n";
    return kExitUsage;
  }
  if (after < 0) {
    ctx.err << "pms-agent " << command << ": --after must be a seq (0 or more)\n";
    return kExitUsage;
  }
  auto cli = loadCliConfig(ctx, command);
  if (!cli) {
    return kExitFailure;
  }
  json::Value args = json::Value::object();
  args.set("limit", json::Value::integer(limit));
  args.set("after", json::Value::integer(after));
  args.set("dead", json::Value::boolean(dead));
  ControlResponse r = readFromAgentOrFiles(ctx, *cli->config, "queue.list", args, &queueListOp);
  if (vm.count("json") || !r.ok) {
    return printJsonOrFail(ctx, command, r);
  }
  renderList(ctx.out, r.result, dead, command);
  return kExitOk;
}

}  // namespace

void addQueueCommands(CommandTable& table) {
  table.add(Command{
      "queue stats", "", "queue depth by kind, bytes against the budget, oldest record, dead letters",
      "Works while the agent is down (reads the database files read-only).",
      [](po::options_description& o, po::positional_options_description&) { defineJson(o); },
      [](const po::variables_map& vm, CommandContext& ctx) {
        auto cli = loadCliConfig(ctx, "queue stats");
        if (!cli) {
          return kExitFailure;
        }
        ControlResponse r = readFromAgentOrFiles(ctx, *cli->config, "queue.stats",
                                                 json::Value::object(), &queueStatsOp);
        if (vm.count("json") || !r.ok) {
          return printJsonOrFail(ctx, "queue stats", r);
        }
        renderStats(ctx.out, r.result);
        return kExitOk;
      }});

  table.add(Command{"queue list", "", "records waiting to be sent, oldest first (metadata only)",
                    "Works while the agent is down. Page with --after SEQ.", definePaging,
                    [](const po::variables_map& vm, CommandContext& ctx) {
                      return listCommand(vm, ctx, false);
                    }});

  table.add(Command{"queue dead", "", "dead letters: records that were rejected, with the reason",
                    "Works while the agent is down. Page with --after SEQ.", definePaging,
                    [](const po::variables_map& vm, CommandContext& ctx) {
                      return listCommand(vm, ctx, true);
                    }});

  table.add(Command{
      "queue show", "ID", "one record's metadata; --reveal decrypts its payload (audited)",
      "Without --reveal only metadata is shown (works while the agent is down).\n"
      "--reveal asks the running agent to decrypt the payload; the act is recorded in the\n"
      "audit trail with your uid before any byte is shown. The payload is patient data:\n"
      "do not copy it anywhere.",
      [](po::options_description& o, po::positional_options_description& p) {
        defineId(o, p);
        o.add_options()("reveal", "decrypt and print the payload (audited)");
        defineJson(o);
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        std::string id;
        if (!takeId(vm, ctx, "queue show", id)) {
          return kExitUsage;
        }
        if (vm.count("reveal")) {
          ControlResponse r;
          if (int rc = actOnAgent(ctx, "queue show --reveal", "queue.reveal", idArgs(id), r,
                                  kStateChangeTimeout);
              rc != kExitOk) {
            return rc;
          }
          if (vm.count("json")) {
            ctx.out << json::serialize(r.result, true) << "\n";
            return kExitOk;
          }
          std::string payload = base64Decode(r.result.getString("payload_base64")).value_or(std::string());
          renderRecord(ctx.out, *r.result.find("record"));
          ctx.out << "---- payload (" << humanCount(payload.size())
                  << " bytes; this reveal is recorded in the audit trail as "
                  << r.result.getString("actor") << ") ----\n";
          if (os::stdoutIsTerminal()) {
            // HL7 separates segments with CR, which would overwrite lines on a terminal.
            std::replace(payload.begin(), payload.end(), '\r', '\n');
          }
          ctx.out << payload;
          if (!payload.empty() && payload.back() != '\n') {
            ctx.out << "\n";
          }
          ctx.out << "---- end of payload ----\n";
          return kExitOk;
        }
        auto cli = loadCliConfig(ctx, "queue show");
        if (!cli) {
          return kExitFailure;
        }
        ControlResponse r =
            readFromAgentOrFiles(ctx, *cli->config, "queue.show", idArgs(id), &queueShowOp);
        if (vm.count("json") || !r.ok) {
          return printJsonOrFail(ctx, "queue show", r);
        }
        renderRecord(ctx.out, r.result);
        ctx.out << kArrow << " the payload is not shown; pms-agent queue show " << id
                << " --reveal decrypts it (audited)\n";
        return kExitOk;
      }});

  table.add(Command{
      "queue retry", "ID", "put one dead letter back in the queue (same msg-id)",
      "Needs the running agent; audited with your uid.",
      defineId,
      [](const po::variables_map& vm, CommandContext& ctx) {
        std::string id;
        if (!takeId(vm, ctx, "queue retry", id)) {
          return kExitUsage;
        }
        ControlResponse r;
        if (int rc =
                actOnAgent(ctx, "queue retry", "queue.retry", idArgs(id), r, kStateChangeTimeout);
            rc != kExitOk) {
          return rc;
        }
        ctx.out << checkLine("OK", "queue retry",
                             id + " is queued again (same msg-id; the cloud de-duplicates)")
                << "\n";
        return kExitOk;
      }});

  table.add(Command{
      "queue retry-all", "", "put every dead letter back in the queue",
      "Needs the running agent; audited with your uid. Records that are still bad will be\n"
      "dead-lettered again.",
      {},
      [](const po::variables_map&, CommandContext& ctx) {
        ControlResponse r;
        if (int rc = actOnAgent(ctx, "queue retry-all", "queue.retry_all", json::Value::object(), r,
                                kStateChangeTimeout);
            rc != kExitOk) {
          return rc;
        }
        const int64_t n = r.result.getInt("retried");
        ctx.out << checkLine("OK", "queue retry", humanCount(static_cast<uint64_t>(n)) +
                                                      (n == 1 ? " dead letter" : " dead letters") +
                                                      " queued again")
                << "\n";
        return kExitOk;
      }});

  table.add(Command{
      "queue purge-dead", "", "delete every dead letter (their data is gone for good)",
      "Needs the running agent; audited with your uid.", {},
      [](const po::variables_map&, CommandContext& ctx) {
        ControlResponse r;
        if (int rc = actOnAgent(ctx, "queue purge-dead", "queue.purge_dead", json::Value::object(),
                                r, kStateChangeTimeout);
            rc != kExitOk) {
          return rc;
        }
        const int64_t n = r.result.getInt("purged");
        ctx.out << checkLine("OK", "queue purge", humanCount(static_cast<uint64_t>(n)) +
                                                      (n == 1 ? " dead letter" : " dead letters") +
                                                      " purged")
                << "\n";
        return kExitOk;
      }});

  table.add(Command{
      "queue salvage", "FILE",
      "re-import the readable records of a moved-aside database (queue.db.corrupt-*)",
      "Needs the running agent; audited with your uid. The agent runs sandboxed: the file\n"
      "must be inside its state directory (where it moved the corrupt database).",
      [](po::options_description& o, po::positional_options_description& p) {
        o.add_options()("file", po::value<std::string>(), "the moved-aside database file");
        p.add("file", 1);
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        if (!vm.count("file")) {
          ctx.err << "pms-agent queue salvage: missing FILE (e.g. /var/lib/pms-agent/"
                     "queue.db.corrupt-20261125T101500Z)\n";
          return kExitUsage;
        }
        std::error_code ec;
        const auto file = std::filesystem::absolute(vm["file"].as<std::string>(), ec);
        json::Value args = json::Value::object();
        args.set("file", json::Value::string(file.string()));
        ControlResponse r;
        if (int rc = actOnAgent(ctx, "queue salvage", "queue.salvage", std::move(args), r,
                                kStateChangeTimeout);
            rc != kExitOk) {
          return rc;
        }
        ctx.out << checkLine("OK", "queue salvage",
                             file.string() + ": " +
                                 humanCount(static_cast<uint64_t>(r.result.getInt("imported"))) +
                                 " imported, " +
                                 humanCount(static_cast<uint64_t>(r.result.getInt("already_present"))) +
                                 " already present, " +
                                 humanCount(static_cast<uint64_t>(r.result.getInt("unreadable"))) +
                                 " unreadable")
                << "\n";
        return kExitOk;
      }});
}

}  // namespace psa::agent
