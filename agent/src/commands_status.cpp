// `pms-agent status [--json]`: one screen a technician reads at a glance. Asks the running
// agent; when it is down, says so plainly and shows what the files say (queue, key, disk).
#include <algorithm>
#include <sstream>
#include <vector>

#include "cli_support.h"
#include "command.h"
#include "field_policy_setup.h"
#include "psa/cloudlink/broker_limits.h"
#include "psa/store/clock.h"
#include "queue_budget.h"
#include "status_document.h"

namespace psa::agent {
namespace {

constexpr const char* kArrow = "▸";

std::string scalarText(const json::Value& v) {
  switch (v.type()) {
    case json::Value::Type::string: return v.asString();
    case json::Value::Type::boolean: return v.asBool() ? "yes" : "no";
    case json::Value::Type::number:
      return v.isInteger() ? humanCount(static_cast<uint64_t>(std::max<int64_t>(0, v.asInt())))
                           : std::to_string(v.asNumber());
    default: return {};
  }
}

std::string listText(const json::Value& v) {
  if (!v.isArray()) {
    return scalarText(v);
  }
  std::string out;
  for (const auto& item : v.items()) {
    out += (out.empty() ? "" : ", ") + scalarText(item);
  }
  return out;
}

std::string countersText(const json::Value& c) {
  std::string out;
  for (const auto& [k, n] : telltaleCounters(c)) {
    out += "  " + k + " " + humanCount(static_cast<uint64_t>(n));
  }
  return out;
}

void renderHeader(std::ostream& out, const json::Value& s, int64_t now) {
  out << "pms-agent " << s.getString("version") << " · " << s.getString("agent_id") << " ("
      << s.getString("tenant") << ")";
  if (s.getString("state") != "online") {
    out << " · NOT RUNNING: " << s.getString("reason") << " " << kArrow
        << " systemctl start pms-agent; journalctl -u pms-agent -n 50\n";
    return;
  }
  out << " · up " << humanSeconds(static_cast<double>(s.getInt("uptime_s")));
  if (const json::Value* c = s.find("config")) {
    if (c->find("version") && c->find("version")->isInteger()) {
      out << " · config v" << c->getInt("version") << " (" << c->getString("origin");
      const std::string ago = agoText(c->getString("applied_at"), now);
      out << (ago.empty() ? "" : ", applied " + ago) << ")";
    } else {
      out << " · config " << c->getString("origin") << " " << c->getString("file");
    }
    if (c->getBool("locked")) {
      out << " (locked)";
    }
  }
  out << "\n";
}

void renderCloud(std::ostream& out, const json::Value& c, bool running, int64_t now) {
  out << "CLOUD   ";
  if (!c.getBool("configured")) {
    out << "not configured: records queue locally " << kArrow
        << " add a \"cloud\" section to the config\n";
    return;
  }
  if (!running) {
    out << "agent not running  " << c.getString("url") << "\n";
    return;
  }
  const std::string state = c.getString("state");
  if (c.getBool("connected")) {
    out << "connected";
  } else {
    out << "DISCONNECTED (" << state << ")";
    const std::string since = agoText(c.getString("since"), now);
    if (!since.empty()) {
      out << " since " << since.substr(0, since.size() - 4);
    }
  }
  out << "  " << c.getString("url") << "  in-flight " << c.getInt("in_flight");
  if (c.getInt("awaiting_receipt") > 0) {
    out << "  awaiting receipt " << c.getInt("awaiting_receipt");
  }
  out << "  sent " << humanShortCount(static_cast<uint64_t>(c.getInt("acked")));
  char rate[32];
  std::snprintf(rate, sizeof rate, "%.0f/s", c.find("drain_rate") ? c.find("drain_rate")->asNumber() : 0.0);
  out << "  drain " << rate;
  const std::string err = c.getString("last_error");
  if (!err.empty()) {
    const std::string ago = agoText(c.getString("last_error_at"), now);
    out << "  last error " << (ago.empty() ? "" : ago + ": ") << err;
  }
  if (!c.getBool("connected") && !c.getString("next_retry_at").empty()) {
    int64_t at = 0;
    if (parseRfc3339(c.getString("next_retry_at"), at)) {
      out << "  retry in " << humanSeconds(static_cast<double>(at - now) / 1000.0);
    }
  }
  out << "\n";
  if (const json::Value* b = c.find("broker"); b != nullptr && b->isObject()) {
    if (const std::string limits =
            cloudlink::brokerLimitsText(cloudlink::BrokerLimits::fromJson(*b));
        !limits.empty()) {
      out << "        broker: " << limits << "\n";
    }
  }
}

void renderQueue(std::ostream& out, const json::Value& q, const json::Value* cloud, int64_t now) {
  out << "QUEUE   ";
  if (q.find("error")) {
    out << "cannot read the queue: " << q.getString("error") << "\n";
    return;
  }
  const BudgetVerdict budget = judgeQueueBudget(q, cloud, now);
  out << "pending " << humanCount(static_cast<uint64_t>(q.getInt("pending"))) << " ("
      << humanBytes(static_cast<uint64_t>(q.getInt("db_bytes"))) << " of "
      << humanBytes(static_cast<uint64_t>(q.getInt("max_bytes"))) << ")";
  if (const json::Value* age = q.find("oldest_pending_age_s"); age && age->isNumber()) {
    out << "  oldest " << humanSeconds(age->asNumber());
  }
  if (q.getInt("leased") > 0) {
    out << "  in flight " << q.getInt("leased");
  }
  if (q.getInt("retry") > 0) {
    out << "  waiting to retry " << q.getInt("retry");
  }
  const int64_t dead = q.getInt("dead");
  out << "  dead " << humanCount(static_cast<uint64_t>(dead));
  if (budget.level != BudgetVerdict::Level::ok) {
    // Refusing input is the most urgent thing on the screen: say it here, with the fix.
    out << "  " << (budget.level == BudgetVerdict::Level::full ? "FAIL " : "WARN ") << budget.text
        << " " << kArrow << " " << budget.fix;
  } else if (dead > 0) {
    out << "  " << kArrow << " pms-agent queue dead";
  }
  out << "\n";
  if (const json::Value* k = q.find("by_kind")) {
    const std::string kinds = queueKindsText(*k);
    if (!kinds.empty()) {
      out << "        " << kinds << "\n";
    }
  }
}

void renderKey(std::ostream& out, const json::Value& k, const json::Value* q) {
  out << "KEY     " << k.getString("path");
  if (!k.getBool("present")) {
    if (q == nullptr) {
      out << "  not created yet (the agent creates it at first start)\n";
    } else {
      out << "  FAIL " << k.getString("problem") << " " << kArrow << " pms-agent check\n";
    }
    return;
  }
  out << " " << k.getString("mode") << " " << k.getString("owner");
  if (q != nullptr && q->getInt("key_id") > 0) {
    out << "  data key " << q->getInt("key_id") << " (" << q->getInt("keys") << " key"
        << (q->getInt("keys") == 1 ? "" : "s") << ")";
  }
  if (!k.getBool("ok")) {
    out << "  FAIL " << k.getString("problem");
    if (!k.getString("fix").empty()) {
      out << " " << kArrow << " " << k.getString("fix");
    }
  }
  out << "\n";
}

void renderDisk(std::ostream& out, const json::Value& d) {
  out << "DISK    " << d.getString("path");
  if (d.find("error")) {
    out << "  " << d.getString("error") << "\n";
    return;
  }
  const double used = d.find("used_percent") ? d.find("used_percent")->asNumber() : 0;
  char pct[16];
  std::snprintf(pct, sizeof pct, "%.0f%%", used);
  out << " " << pct << " used (" << humanBytes(static_cast<uint64_t>(d.getInt("free_bytes")))
      << " free)";
  if (used >= 90) {
    out << "  WARN " << kArrow << " free space or lower store.max_bytes";
  }
  out << "\n";
}

void renderAdapters(std::ostream& out, const json::Value& list, int64_t now) {
  if (list.items().empty()) {
    out << "ADAPTERS  none configured\n";
    return;
  }
  out << "ADAPTERS\n";
  size_t name_w = 0;
  size_t type_w = 0;
  for (const auto& a : list.items()) {
    name_w = std::max(name_w, a.getString("name").size());
    type_w = std::max(type_w, a.getString("type").size());
  }
  for (const auto& a : list.items()) {
    std::string line = "  " + padRight(a.getString("name"), name_w + 2) +
                       padRight(a.getString("type"), type_w + 2);
    const std::string state = a.getString("state");
    const bool healthy = a.getBool("healthy", true);
    line += healthy ? state : "FAIL " + state;
    if (const json::Value* d = a.find("detail"); d && d->isObject()) {
      line += adapterDetailText(*d);
    }
    if (const json::Value* c = a.find("counters"); c && c->isObject()) {
      line += countersText(*c);
    }
    const std::string last = agoText(a.getString("last_message_at"), now);
    if (!last.empty()) {
      line += "  last " + last;
    }
    const std::string err = a.getString("last_error");
    if (!err.empty()) {
      const std::string ago = agoText(a.getString("last_error_at"), now);
      line += "  last error " + (ago.empty() ? "" : ago + ": ") + err;
    }
    out << line << "\n";
  }
}

}  // namespace

std::string queueKindsText(const json::Value& by_kind) {
  std::string out;
  for (const auto& [kind, k] : by_kind.members()) {
    const int64_t pending = k.getInt("pending");
    const int64_t dead = k.getInt("dead");
    if (pending == 0 && dead == 0) {
      continue;
    }
    out += (out.empty() ? "" : " · ") + kind + " " + humanCount(static_cast<uint64_t>(pending));
    if (dead > 0) {
      out += " (dead " + humanCount(static_cast<uint64_t>(dead)) + ")";
    }
  }
  return out;
}

std::string adapterDetailText(const json::Value& d) {
  std::string out;
  for (const char* key : {"listen", "path", "base_url"}) {
    if (const json::Value* v = d.find(key)) {
      const std::string t = listText(*v);
      if (!t.empty()) {
        out += "  " + t;
      }
    }
  }
  if (d.getBool("tls")) {
    out += "  TLS";
  }
  if (const json::Value* v = d.find("connections_open"); v && v->isInteger()) {
    out += "  " + std::to_string(v->asInt()) + (v->asInt() == 1 ? " conn" : " conns");
  }
  if (const json::Value* v = d.find("next_poll_in_ms"); v && v->isNumber()) {
    out += "  next poll in " + humanSeconds(v->asNumber() / 1000.0);
  }
  if (const json::Value* v = d.find("next_bind_attempt_in_ms"); v && v->isNumber()) {
    out += "  next bind attempt in " + humanSeconds(v->asNumber() / 1000.0);
    if (const json::Value* n = d.find("bind_attempts"); n && n->isInteger()) {
      out += " (" + std::to_string(n->asInt()) + " failed)";
    }
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> telltaleCounters(const json::Value& c) {
  static const std::vector<std::string> first = {
      "messages", "accepted", "records", "files", "rows", "ack_AA", "ack_CA", "ack_AE", "ack_AR",
      "dead_letters", "errors", "framing_errors", "store_refused", "duplicates"};
  std::vector<std::pair<std::string, int64_t>> shown;
  auto take = [&](const std::string& k, const json::Value& v) {
    if (shown.size() < 6 && v.isInteger() && v.asInt() > 0 &&
        std::none_of(shown.begin(), shown.end(), [&](const auto& p) { return p.first == k; })) {
      shown.emplace_back(k, v.asInt());
    }
  };
  for (const auto& k : first) {
    if (const json::Value* v = c.find(k)) {
      take(k, *v);
    }
  }
  for (const auto& [k, v] : c.members()) {
    take(k, v);
  }
  return shown;
}

/// Renders a status document (from the agent or built from the files) for people.
void renderStatus(std::ostream& out, const json::Value& s) {
  const int64_t now = Clock::system()->nowMs();
  const bool running = s.getString("state") == "online";
  renderHeader(out, s, now);
  if (const json::Value* c = s.find("cloud")) {
    renderCloud(out, *c, running, now);
  }
  const json::Value* q = s.find("queue");
  if (q != nullptr) {
    renderQueue(out, *q, s.find("cloud"), now);
  }
  if (const json::Value* k = s.find("key_file")) {
    renderKey(out, *k, q != nullptr && !q->find("error") ? q : nullptr);
  }
  if (const json::Value* d = s.find("disk")) {
    renderDisk(out, *d);
  }
  if (const json::Value* l = s.find("log"); l != nullptr && running) {
    out << "LOG     level " << l->getString("level") << " · "
        << humanCount(static_cast<uint64_t>(l->getInt("errors"))) << " errors, "
        << humanCount(static_cast<uint64_t>(l->getInt("warnings"))) << " warnings since start";
    if (!l->getString("file").empty()) {
      out << " · " << l->getString("file");
    }
    out << "\n";
  }
  if (const json::Value* p = s.find("policy")) {
    out << "POLICY  SSN mask " << (p->getBool("default_ssn_mask", true) ? "on" : "OFF") << " · "
        << p->getInt("rules") << " rules · " << policyCountsText(*p) << " since start\n";
  }
  if (const json::Value* a = s.find("adapters")) {
    renderAdapters(out, *a, now);
  }
}

/// The status document from the running agent, or built from the files when it is down.
/// `running` tells which; returns false (after printing why) when neither works.
bool fetchStatus(CommandContext& ctx, const Config& cfg, json::Value& doc, bool& running,
                 bool quiet_offline) {
  AgentReply reply = askAgent(cfg, "status", json::Value::object(), std::chrono::seconds(30));
  if (reply.reach == AgentReach::answered) {
    if (!reply.response.ok) {
      reportAgentError(ctx, "status", reply);
      return false;
    }
    doc = std::move(reply.response.result);
    running = true;
    return true;
  }
  if (reply.reach == AgentReach::denied) {
    ctx.err << "pms-agent status: " << reply.error << "\n";
    return false;
  }
  running = false;
  if (!quiet_offline) {
    noteOffline(ctx, reply);
  }
  auto store = openStoreReadOnly(cfg);
  doc = buildOfflineStatus(cfg, store ? store->get() : nullptr,
                           reply.reach == AgentReach::not_running
                               ? "nothing answers on " + cfg.control_socket.string()
                               : reply.error,
                           store ? std::string() : store.error().message);
  return true;
}

void addStatusCommands(CommandTable& table) {
  table.add(Command{
      "status", "", "state of the adapters, the cloud link, the queue, the key file and disk",
      "Asks the running agent. When it is not running, says so and shows what its files say\n"
      "(queue, key file, disk). Exit 0 when the agent runs, 1 when it does not.\n"
      "--json prints the status document (the same the agent publishes on P/status).",
      [](po::options_description& o, po::positional_options_description&) {
        o.add_options()("json", "machine-readable output (stable keys)");
      },
      [](const po::variables_map& vm, CommandContext& ctx) {
        auto cli = loadCliConfig(ctx, "status");
        if (!cli) {
          return kExitFailure;
        }
        json::Value doc;
        bool running = false;
        if (!fetchStatus(ctx, *cli->config, doc, running, vm.count("json") > 0)) {
          return kExitFailure;
        }
        if (vm.count("json")) {
          ctx.out << json::serialize(doc, true) << "\n";
        } else {
          renderStatus(ctx.out, doc);
        }
        return running ? kExitOk : kExitFailure;
      }});
}

}  // namespace psa::agent
