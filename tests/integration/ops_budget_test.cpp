// A queue at its disk budget refuses input (HL7 AR), and that is the most urgent thing a
// technician can be told: the real `pms-agent run` with a 1 MiB store.max_bytes, a real
// mosquitto over mutual TLS, HL7 over real MLLP sockets. `check` and `status` warn from 80 % of
// the budget and fail once the store refuses records, naming the fix (the dead letters, the
// cloud link, store.max_bytes); a larger budget brings both back to OK.
#include <gtest/gtest.h>

#include "mllp_senders.h"
#include "ops_harness.h"

namespace psa::test {
namespace {

namespace hl7 = psa::adapters::hl7;
using namespace std::chrono_literals;

constexpr size_t kMessageBytes = 20000;  // about 2 % of the budget each
constexpr const char* kFull = "receiver queue full; message not accepted, retry later";

json::Value jsonOf(const CommandResult& r) {
  auto at = r.output.find('{');
  auto doc = json::parse(at == std::string::npos ? r.output : r.output.substr(at));
  EXPECT_TRUE(doc.ok()) << r.output;
  return doc ? *doc : json::Value::object();
}

// The `budget` member of the running agent's queue status.
json::Value budgetOf(const AgentProcess& agent) {
  const json::Value s = jsonOf(agent.cli({"status", "--json"}));
  const json::Value* q = s.find("queue");
  const json::Value* b = q != nullptr ? q->find("budget") : nullptr;
  return b != nullptr ? *b : json::Value::object();
}

hl7::AckSummary ackOf(const Result<std::string>& raw) {
  if (!raw) {
    ADD_FAILURE() << raw.error().describe();
    return {};
  }
  auto s = hl7::summarizeAck(raw.value());
  EXPECT_TRUE(s.ok()) << raw.value();
  return s ? s.value() : hl7::AckSummary{};
}

// An ADT message without MSH-9: answered AE and kept as a dead letter.
std::string badMessage(const std::string& id) {
  std::string m = adtMessage(id, "DOE", kMessageBytes);
  m.replace(m.find("ADT^A01^ADT_A01"), 15, "");
  return m;
}

struct BudgetAgent {
  explicit BudgetAgent(CloudEnv& env)
      : port(freePort()),
        agent(env.tmp / "state", mllpAgentConfig(port, "{}", R"({"max_bytes":1048576})")) {
    agent.config().set("cloud", cloudSection(env));
  }
  bool connected() {
    const json::Value s = jsonOf(agent.cli({"status", "--json"}));
    const json::Value* c = s.find("cloud");
    return c != nullptr && c->getBool("connected");
  }
  int port;
  AgentProcess agent;
};

TEST(OpsBudget, DeadLettersFillingTheBudgetWarnThenFailWithTheFix) {
  CloudEnv env({}, "psa-budget-dead");
  BudgetAgent b(env);
  AgentProcess& agent = b.agent;
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor([&] { return b.connected(); }, 60s)) << agent.log();
  auto c = mllpConnect(b.port);
  ASSERT_NE(c, nullptr);

  // Dead letters up to 80 % of the budget: a warning, nothing refused yet.
  int sent = 0;
  json::Value budget = budgetOf(agent);
  EXPECT_EQ(budget.getString("state"), "ok") << json::serialize(budget);
  while (budget.getString("state") == "ok" && sent < 200) {
    auto ack = ackOf(c->exchange(badMessage("DEAD" + std::to_string(sent++))));
    ASSERT_EQ(ack.code, "AE") << ack.text;
    budget = budgetOf(agent);
  }
  ASSERT_EQ(budget.getString("state"), "warn") << json::serialize(budget);
  EXPECT_GE(budget.find("used_percent")->asNumber(), 80.0);
  EXPECT_FALSE(budget.getBool("refusing"));
  EXPECT_EQ(budget.getInt("refused_total"), 0);

  CommandResult r = agent.cli({"check", "--timeout", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::string line = lineStarting(r.output, "WARN  queue         ");
  EXPECT_EQ(line.rfind("WARN  queue         the queue is filling its disk budget (", 0), 0u)
      << r.output;
  EXPECT_NE(line.find("new records are refused when it is full ▸ pms-agent queue purge-dead "
                      "deletes the " +
                      std::to_string(sent) +
                      " dead letters (look first: "
                      "pms-agent queue dead), or pms-agent queue retry-all sends them again; "
                      "raise store.max_bytes"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(linesWith(r.output, "FAIL").size(), 0u) << r.output;
  r = agent.cli({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  line = lineStarting(r.output, "QUEUE   ");
  EXPECT_NE(
      line.find("  dead " + std::to_string(sent) + "  WARN the queue is filling its disk budget ("),
      std::string::npos)
      << r.output;
  EXPECT_NE(line.find("▸ pms-agent queue purge-dead"), std::string::npos) << line;

  // On until the store refuses: AR to the sender, FAIL to the technician.
  hl7::AckSummary refused;
  while (refused.code.empty() && sent < 400) {
    auto ack = ackOf(c->exchange(badMessage("DEAD" + std::to_string(sent))));
    if (ack.code == "AE") {
      ++sent;
    } else {
      refused = ack;
    }
  }
  ASSERT_EQ(refused.code, "AR");
  EXPECT_EQ(refused.text, kFull);
  budget = budgetOf(agent);
  EXPECT_EQ(budget.getString("state"), "full") << json::serialize(budget);
  EXPECT_TRUE(budget.getBool("refusing")) << json::serialize(budget);
  EXPECT_EQ(budget.getString("cause"), "budget");
  EXPECT_GE(budget.getInt("refused_total"), 1);
  EXPECT_FALSE(budget.getString("last_refused_at").empty());

  r = agent.cli({"check", "--timeout", "3"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  line = lineStarting(r.output, "FAIL  queue         ");
  EXPECT_EQ(line.rfind("FAIL  queue         FULL: refusing new records (", 0), 0u) << r.output;
  EXPECT_NE(line.find(" budget, "), std::string::npos) << line;
  EXPECT_NE(line.find("; refused 1 time, last "), std::string::npos) << line;
  EXPECT_NE(line.find(" ▸ pms-agent queue purge-dead deletes the " + std::to_string(sent) +
                      " dead letters (look first: pms-agent queue dead), or pms-agent queue "
                      "retry-all sends them again; raise store.max_bytes"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("cloud link"), std::string::npos) << line;  // it is connected
  // The disk itself is fine, and says where the budget news is.
  EXPECT_NE(
      lineStarting(r.output, "OK    disk          ").find("the queue's budget: see the queue line"),
      std::string::npos)
      << r.output;
  r = agent.cli({"check", "--json", "--timeout", "3"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const json::Value report = jsonOf(r);
  EXPECT_FALSE(report.getBool("ok", true));
  bool queue_failed = false;
  for (const auto& item : report.find("checks")->items()) {
    queue_failed |= item.getString("name") == "queue" && item.getString("level") == "fail";
  }
  EXPECT_TRUE(queue_failed) << r.output;

  r = agent.cli({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;  // the agent runs: status itself succeeds
  line = lineStarting(r.output, "QUEUE   ");
  EXPECT_NE(line.find("  dead " + std::to_string(sent) + "  FAIL FULL: refusing new records ("),
            std::string::npos)
      << r.output;
  EXPECT_NE(line.find("▸ pms-agent queue purge-dead deletes the "), std::string::npos) << line;
  EXPECT_NE(line.find("raise store.max_bytes"), std::string::npos) << line;

  // One of the fixes: a larger budget (the others are exercised by the next test and by the
  // queue CLI tests). The sender's resend is accepted and both lines are clean again.
  c.reset();
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  agent.config().find("store")->set("max_bytes", json::Value::integer(8 << 20));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor([&] { return b.connected(); }, 60s)) << agent.log();
  c = mllpConnect(b.port);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(ackOf(c->exchange(adtMessage(refused.control_id, "DOE", kMessageBytes))).code, "AA");
  EXPECT_EQ(budgetOf(agent).getString("state"), "ok") << json::serialize(budgetOf(agent));
  r = agent.cli({"check", "--timeout", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  line = lineStarting(r.output, "WARN  queue         ");
  EXPECT_EQ(line.find("budget"), std::string::npos) << line;  // dead letters: yes; budget: fine
  EXPECT_NE(line.find("▸ pms-agent queue dead"), std::string::npos) << r.output;
  r = agent.cli({"status"});
  line = lineStarting(r.output, "QUEUE   ");
  EXPECT_EQ(line.find("FAIL"), std::string::npos) << r.output;
  EXPECT_EQ(line.find("WARN"), std::string::npos) << r.output;
  EXPECT_NE(line.find("▸ pms-agent queue dead"), std::string::npos) << r.output;
  c.reset();
  EXPECT_EQ(agent.stop(), 0) << agent.log();
}

TEST(OpsBudget, CloudLinkDownPendingRecordsFillTheBudgetUntilItIsBack) {
  CloudEnv env({}, "psa-budget-link");
  BudgetAgent b(env);
  AgentProcess& agent = b.agent;
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor([&] { return b.connected(); }, 60s)) << agent.log();
  env.broker->stop();
  ASSERT_TRUE(waitFor([&] { return !b.connected(); }, 60s)) << agent.log();
  auto c = mllpConnect(b.port);
  ASSERT_NE(c, nullptr);

  // Good messages that cannot leave: they fill the budget until the store refuses them.
  hl7::AckSummary refused;
  bool warned = false;
  for (int i = 0; i < 400 && refused.code.empty(); ++i) {
    const std::string id = "PEND" + std::to_string(i);
    auto ack = ackOf(c->exchange(adtMessage(id, "DOE", kMessageBytes)));
    if (ack.code != "AA") {
      refused = ack;
      break;
    }
    if (!warned && budgetOf(agent).getString("state") == "warn") {
      warned = true;
      const CommandResult r = agent.cli({"status"});
      const std::string line = lineStarting(r.output, "QUEUE   ");
      EXPECT_NE(line.find("  WARN the queue is filling its disk budget ("), std::string::npos)
          << r.output;
      EXPECT_NE(line.find("▸ restore the cloud link so pending records drain (see CLOUD); "
                          "raise store.max_bytes"),
                std::string::npos)
          << line;
    }
  }
  EXPECT_TRUE(warned);
  ASSERT_EQ(refused.code, "AR");
  EXPECT_EQ(refused.text, kFull);

  CommandResult r = agent.cli({"check", "--timeout", "3"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string line = lineStarting(r.output, "FAIL  queue         ");
  EXPECT_EQ(line.rfind("FAIL  queue         FULL: refusing new records (", 0), 0u) << r.output;
  EXPECT_NE(line.find("▸ restore the cloud link so pending records drain (see CLOUD); raise "
                      "store.max_bytes"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("purge-dead"), std::string::npos) << line;  // there are no dead letters
  r = agent.cli({"status"});
  EXPECT_NE(lineStarting(r.output, "QUEUE   ").find("FAIL FULL: refusing new records ("),
            std::string::npos)
      << r.output;

  // The link is back: the queue drains and the line no longer blames the link. (The budget may
  // stay full even so: at 1 MiB the SQLite write-ahead log, which counts against the budget,
  // can fill it on its own until the store truncates the log.)
  env.broker->start();
  ASSERT_TRUE(waitFor(
      [&] {
        const json::Value s = jsonOf(agent.cli({"status", "--json"}));
        return s.find("queue") != nullptr && s.find("queue")->getInt("pending", -1) == 0;
      },
      120s))
      << agent.log();
  r = agent.cli({"check", "--timeout", "3"});
  EXPECT_EQ(lineStarting(r.output, "FAIL  queue         ").find("cloud link"), std::string::npos)
      << r.output;
  c.reset();
  EXPECT_EQ(agent.stop(), 0) << agent.log();
}

}  // namespace
}  // namespace psa::test
