// The technician's command line against the real `pms-agent run`: every command with queued,
// delivered and dead-lettered records, with the agent down, with bad arguments, and as a
// user the control socket refuses. Payloads carry a PHI marker that must never reach a log,
// a non-reveal output or a support bundle.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Every CLI output of a test, to check for the marker at the end.
struct Outputs {
  std::string all;
  CommandResult operator()(AgentProcess& agent, const std::vector<std::string>& args) {
    CommandResult r = agent.cli(args);
    all += "\n$ pms-agent";
    for (const auto& a : args) {
      all += " " + a;
    }
    all += "\n" + r.output;
    return r;
  }
};

json::Value parseJson(const std::string& text) {
  // stderr notes may precede the document on the combined output.
  auto at = text.find('{');
  auto doc = json::parse(at == std::string::npos ? text : text.substr(at));
  EXPECT_TRUE(doc.ok()) << text;
  return doc ? *doc : json::Value();
}

void expectNoMarkerIn(const fs::path& root, const std::string& marker) {
  auto hits = filesContaining(root, marker);
  std::string list;
  for (const auto& h : hits) {
    list += h.string() + " ";
  }
  EXPECT_TRUE(hits.empty()) << "PHI marker found in: " << list;
}

// Extracts a bundle with the real tar and returns the directory.
fs::path extractBundle(const fs::path& bundle, const fs::path& into) {
  fs::create_directories(into);
  auto r = runCommand({"/bin/tar", "-xzf", bundle.string(), "-C", into.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const auto& e : fs::directory_iterator(into)) {
    return e.path();
  }
  return into;
}

TEST(OpsCli, EveryCommandAgainstALiveAgentWithQueuedDeliveredAndDeadRecords) {
  CloudEnv env({}, "psa-ops-cli");
  CloudSim sim(env.simOptions());
  const std::string marker = uniqueMarker();
  const fs::path state = env.tmp / "state";
  const Prefilled pre = prefillStore(state, 200, 4, marker);
  Outputs run;

  // Phase 1: no cloud yet, so the records stay queued.
  AgentProcess agent(state, baseConfig());
  ASSERT_TRUE(agent.start()) << agent.log();

  auto r = run(agent, {"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("pms-agent 0.1.0 · practice-0042 (acme-health) · up ", 0), 0u) << r.output;
  EXPECT_NE(r.output.find("\nCLOUD   not configured: records queue locally ▸ add a \"cloud\" section"),
            std::string::npos) << r.output;
  const std::string queue_line = lineStarting(r.output, "QUEUE   ");
  EXPECT_EQ(queue_line.rfind("QUEUE   pending 200 (", 0), 0u) << r.output;
  EXPECT_NE(queue_line.find("  dead 4  ▸ pms-agent queue dead"), std::string::npos) << queue_line;
  EXPECT_NE(r.output.find("        patient 100 (dead 2) · appointment 100 (dead 2)"), std::string::npos)
      << r.output;
  EXPECT_NE(lineStarting(r.output, "KEY     ").find("queue.key 0600 "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\nADAPTERS  none configured\n"), std::string::npos) << r.output;

  r = run(agent, {"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json::Value doc = parseJson(r.output);
  EXPECT_EQ(doc.getString("state"), "online");
  EXPECT_EQ(doc.find("queue")->getInt("pending"), 200);
  EXPECT_EQ(doc.find("queue")->getInt("dead"), 4);
  EXPECT_TRUE(doc.find("key_file")->getBool("ok"));
  EXPECT_EQ(doc.find("key_file")->getString("mode"), "0600");
  EXPECT_EQ(doc.find("key_file")->getInt("uid"), static_cast<int64_t>(::getuid()));
  ASSERT_NE(doc.find("process"), nullptr);
  EXPECT_GT(doc.find("process")->getInt("rss_bytes"), 1 << 20);
  EXPECT_GT(doc.find("process")->getInt("open_handles"), 3);
  EXPECT_FALSE(doc.find("cloud")->getBool("configured"));
  EXPECT_EQ(doc.find("config")->getString("origin"), "local");

  r = run(agent, {"queue", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("pending       200 records ("), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dead letters  4  ▸ pms-agent queue dead"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\ndedupe index  0 of "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("window cut"), std::string::npos) << r.output;
  r = run(agent, {"queue", "stats", "--json"});
  EXPECT_EQ(parseJson(r.output).getInt("pending"), 200);
  EXPECT_EQ(parseJson(r.output).getInt("dedupe_entries"), 0);
  EXPECT_EQ(parseJson(r.output).getInt("dedupe_max_entries"), (int64_t{10} << 30) / 10 / 160)
      << "default cap: a tenth of the 10 GiB budget at 160 bytes per identity";
  EXPECT_TRUE(parseJson(r.output).find("dedupe_window_cut_s")->isNull());

  r = run(agent, {"queue", "list", "--limit", "5"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("MSG_ID", 0), 0u) << r.output;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NE(r.output.find(pre.queued[i]), std::string::npos) << r.output;
  }
  EXPECT_EQ(r.output.find(pre.queued[5]), std::string::npos);
  EXPECT_NE(r.output.find("5 records; more follow ▸ pms-agent queue list --after "), std::string::npos)
      << r.output;
  r = run(agent, {"queue", "list", "--json", "--limit", "1000"});
  doc = parseJson(r.output);
  ASSERT_EQ(doc.find("records")->items().size(), 200u);
  EXPECT_FALSE(doc.getBool("more"));
  const int64_t seq5 = doc.find("records")->items()[4].getInt("seq");
  r = run(agent, {"queue", "list", "--after", std::to_string(seq5), "--limit", "1"});
  EXPECT_NE(r.output.find(pre.queued[5]), std::string::npos) << r.output;

  r = run(agent, {"queue", "show", pre.queued[7]});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("msg_id        " + pre.queued[7]), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("state         pending"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("source        cerner-adt (vendor cerner)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kind          appointment"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("▸ the payload is not shown; pms-agent queue show " + pre.queued[7] +
                          " --reveal decrypts it (audited)"),
            std::string::npos) << r.output;

  r = run(agent, {"queue", "dead"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const auto& id : pre.dead) {
    EXPECT_NE(r.output.find(id), std::string::npos) << r.output;
  }
  EXPECT_EQ(linesWith(r.output, "HL7 validation: PID-3 missing (segment 2, byte 64)").size(), 4u)
      << r.output;
  EXPECT_NE(r.output.find("4 records\n▸ pms-agent queue show ID · queue retry ID · queue retry-all"),
            std::string::npos) << r.output;
  r = run(agent, {"queue", "show", pre.dead[1], "--json"});
  doc = parseJson(r.output);
  EXPECT_EQ(doc.getString("state"), "dead");
  EXPECT_EQ(doc.getString("reason"), "HL7 validation: PID-3 missing (segment 2, byte 64)");

  // Phase 2: with the cloud configured the queue drains (delivered records).
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  agent.config().set("cloud", cloudSection(env));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(sim.waitForUnique(200, 60s)) << agent.log();
  ASSERT_TRUE(waitFor([&] { return parseJson(agent.cli({"queue", "stats", "--json"}).output).getInt("pending") == 0; }, 30s));

  r = run(agent, {"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string cloud_line = lineStarting(r.output, "CLOUD   ");
  EXPECT_EQ(cloud_line.rfind("CLOUD   connected  " + env.broker->url() + "  in-flight 0", 0), 0u)
      << r.output;
  EXPECT_NE(cloud_line.find("  sent 200  "), std::string::npos) << cloud_line;
  EXPECT_EQ(lineStarting(r.output, "QUEUE   ").rfind("QUEUE   pending 0 (", 0), 0u) << r.output;
  r = run(agent, {"queue", "list"});
  EXPECT_EQ(r.output, "no queued records\n");

  // Reveal: the payload, and an audit entry with our uid.
  r = run(agent, {"queue", "show", pre.dead[0], "--reveal"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("PID|1||" + marker), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("this reveal is recorded in the audit trail as uid:" +
                          std::to_string(::getuid())),
            std::string::npos)
      << r.output;
  const std::string reveal_output = r.output;
  run.all.resize(run.all.size() - r.output.size());  // the one output allowed to hold PHI

  r = run(agent, {"queue", "retry", pre.dead[0]});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "OK    queue retry   " + pre.dead[0] +
                          " is queued again (same msg-id; the cloud de-duplicates)\n");
  ASSERT_TRUE(sim.waitForUnique(201, 30s));
  EXPECT_TRUE(sim.unique().count(pre.dead[0]));
  r = run(agent, {"queue", "retry", pre.dead[0]});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "pms-agent queue retry: no dead letter with msg_id " + pre.dead[0] + "\n");

  r = run(agent, {"queue", "purge-dead"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "OK    queue purge   3 dead letters purged\n");
  r = run(agent, {"queue", "retry-all"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "OK    queue retry   0 dead letters queued again\n");
  r = run(agent, {"queue", "dead"});
  EXPECT_EQ(r.output, "no dead letters\n");

  r = run(agent, {"keys", "rotate"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("OK    keys rotate   new data key 2 is used for new records (2 keys", 0), 0u)
      << r.output;

  r = run(agent, {"log", "level"});
  EXPECT_EQ(r.output, "info (config: info)\n");
  r = run(agent, {"log", "level", "debug"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "OK    log level     debug (was info; back to info at the next restart)\n");

  r = run(agent, {"audit", "verify"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("OK    audit chain   intact: ", 0), 0u) << r.output;

  r = run(agent, {"check"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lineStarting(r.output, "OK    config        "), "OK    config        " +
                                                               agent.configFile().string() +
                                                               " valid (0 adapters)");
  EXPECT_EQ(lineStarting(r.output, "OK    agent         running (pid ").empty(), false) << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    key file      "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    state dir     "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    client cert   CN=practice-0042 issued by "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker dns    localhost → "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker tcp    connected to "), "") << r.output;
  EXPECT_NE(lineStarting(r.output, "OK    broker tls    TLSv1."), "") << r.output;
  EXPECT_EQ(lineStarting(r.output, "OK    broker auth   "),
            "OK    broker auth   the running agent is connected (MQTT session authenticated)")
      << r.output;
  EXPECT_EQ(r.output.find("FAIL"), std::string::npos) << r.output;

  const fs::path bundle = env.tmp / "support.tar.gz";
  r = run(agent, {"bundle", "--out", bundle.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("OK    bundle        " + bundle.string() + " (", 0), 0u) << r.output;
  struct stat st {};
  ASSERT_EQ(::stat(bundle.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(runCommand({"/bin/gzip", "-t", bundle.string()}).exit_code, 0);
  const fs::path dir = extractBundle(bundle, env.tmp / "bundle");
  for (const char* f : {"README.txt", "version.json", "system.txt", "check.txt", "check.json",
                        "config.json", "status.json", "status.txt", "queue-stats.json",
                        "dead-letters.json", "audit-verify.json", "audit-recent.json", "log.txt"}) {
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  }
  EXPECT_EQ(json::parse(readFile(dir / "status.json"))->getString("state"), "online");
  EXPECT_TRUE(json::parse(readFile(dir / "audit-verify.json"))->getBool("ok"));
  EXPECT_NE(readFile(dir / "log.txt").find("event=ready"), std::string::npos);
  EXPECT_NE(readFile(dir / "check.txt").find("OK    broker tls"), std::string::npos);
  // The client key's path is in the config, its contents are not; the masked config names no
  // secret.
  EXPECT_EQ(readFile(dir / "config.json").find("PRIVATE KEY"), std::string::npos);

  ASSERT_EQ(agent.stop(), 0) << agent.log();

  // The audit trail: every administrative act with the uid, the data exchange counted.
  const auto entries = auditEntriesOf(state);
  const std::string uid = "uid:" + std::to_string(::getuid());
  auto find = [&](const std::string& action) -> const store::AuditEntry* {
    for (const auto& e : entries) {
      if (e.action == action) {
        return &e;
      }
    }
    return nullptr;
  };
  for (const char* action : {"cli.queue.reveal", "cli.queue.retry", "cli.queue.purge_dead",
                             "cli.queue.retry_all", "cli.keys.rotate", "cli.log.level"}) {
    const store::AuditEntry* e = find(action);
    ASSERT_NE(e, nullptr) << action;
    EXPECT_EQ(e->actor, uid) << action;
  }
  EXPECT_NE(find("cli.queue.reveal")->detail.find("\"args\":{\"id\":\"" + pre.dead[0] + "\"}"),
            std::string::npos);
  EXPECT_NE(find("cli.queue.purge_dead")->detail.find("\"result\":\"ok: 3 purged\""), std::string::npos);
  EXPECT_NE(find("cli.log.level")->detail.find("\"args\":{\"level\":\"debug\"}"), std::string::npos);
  EXPECT_NE(find("dead.retried"), nullptr);
  EXPECT_EQ(auditCount(entries, "dead.purged"), 3);
  EXPECT_NE(find("key.rotated"), nullptr);
  EXPECT_EQ(auditCount(entries, "records.delivered"), 201);
  EXPECT_EQ(agent.cli({"audit", "verify"}).exit_code, 0);

  // No PHI anywhere but the reveal's own output.
  EXPECT_NE(reveal_output.find(marker), std::string::npos);
  EXPECT_EQ(run.all.find(marker), std::string::npos) << "PHI marker in a CLI output";
  EXPECT_EQ(agent.log().find(marker), std::string::npos) << "PHI marker in the agent's log";
  EXPECT_NE(agent.log().find("event=payload_revealed msg_id=" + pre.dead[0]), std::string::npos);
  expectNoMarkerIn(state, marker);
  expectNoMarkerIn(env.tmp / "bundle", marker);
}

TEST(OpsCli, CommandsWithTheAgentDownSaySoAndReadTheFiles) {
  TempDir tmp("psa-ops-down");
  const std::string marker = uniqueMarker();
  const fs::path state = tmp / "state";
  const Prefilled pre = prefillStore(state, 30, 2, marker);
  AgentProcess agent(state, baseConfig());
  // Write the config without starting: the agent has never run with it.
  writeFile(agent.configFile(), json::serialize(agent.config(), true));
  const std::string socket = (state / "control.sock").string();
  const std::string down = "pms-agent: the agent is not running (nothing answers on " + socket +
                           "); showing what its files say\n";
  const std::string db_before = readFile(state / "queue.db");

  auto r = agent.cli({"status"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("pms-agent 0.1.0 · practice-0042 (acme-health) · NOT RUNNING: nothing "
                          "answers on " + socket + " ▸ systemctl start pms-agent; journalctl -u "
                          "pms-agent -n 50\n"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find(down), std::string::npos) << r.output;
  EXPECT_EQ(lineStarting(r.output, "QUEUE   ").rfind("QUEUE   pending 30 (", 0), 0u) << r.output;
  r = agent.cli({"status", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  json::Value doc = parseJson(r.output);
  EXPECT_EQ(doc.getString("state"), "not running");
  EXPECT_EQ(doc.find("queue")->getInt("dead"), 2);

  r = agent.cli({"queue", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind(down, 0), 0u) << r.output;
  EXPECT_NE(r.output.find("pending       30 records"), std::string::npos) << r.output;
  r = agent.cli({"queue", "list", "--limit", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(pre.queued[2]), std::string::npos) << r.output;
  r = agent.cli({"queue", "dead"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(pre.dead[1]), std::string::npos) << r.output;
  r = agent.cli({"queue", "show", pre.dead[0]});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("state         dead"), std::string::npos) << r.output;
  r = agent.cli({"queue", "show", "01JAAAAAAAAAAAAAAAAAAAAAAA"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, down + "pms-agent queue show: no record with msg_id 01JAAAAAAAAAAAAAAAAAAAAAAA\n");
  r = agent.cli({"audit", "verify"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK    audit chain   intact: "), std::string::npos) << r.output;

  // What needs the daemon says so and how to start it.
  const std::string needs = "the agent is not running (nothing answers on " + socket +
                            ")\nThis command needs the running agent ▸ systemctl start pms-agent "
                            "(then pms-agent status)\n";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"queue", "retry", pre.dead[0]},
        std::vector<std::string>{"queue", "retry-all"}, std::vector<std::string>{"queue", "purge-dead"},
        std::vector<std::string>{"queue", "show", pre.dead[0], "--reveal"},
        std::vector<std::string>{"keys", "rotate"}, std::vector<std::string>{"log", "level", "debug"},
        std::vector<std::string>{"queue", "salvage", (state / "x.db").string()}}) {
    r = agent.cli(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << " " << args[1];
    EXPECT_NE(r.output.find(needs), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(marker), std::string::npos);
  }

  r = agent.cli({"check"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lineStarting(r.output, "WARN  agent         "),
            "WARN  agent         not running (nothing answers on " + socket +
                ") ▸ systemctl start pms-agent; journalctl -u pms-agent -n 50");
  EXPECT_EQ(lineStarting(r.output, "WARN  queue         ").rfind("WARN  queue         pending 30, dead 2, oldest ", 0), 0u)
      << r.output;
  EXPECT_NE(r.output.find("▸ pms-agent queue dead"), std::string::npos) << r.output;

  const fs::path bundle = tmp / "b.tar.gz";
  r = agent.cli({"bundle", "--out", bundle.string(), "--no-journal"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("note: the agent was not running: status, queue and audit come from its files"),
            std::string::npos) << r.output;
  const fs::path dir = extractBundle(bundle, tmp / "bundle");
  EXPECT_EQ(json::parse(readFile(dir / "status.json"))->getString("state"), "not running");
  EXPECT_EQ(json::parse(readFile(dir / "queue-stats.json"))->getInt("pending"), 30);
  EXPECT_NE(readFile(dir / "README.txt").find("the agent was not running"), std::string::npos);
  expectNoMarkerIn(tmp / "bundle", marker);

  // Reading never wrote: the database is byte for byte what it was.
  EXPECT_EQ(readFile(state / "queue.db"), db_before);
}

TEST(OpsCli, ALockedDatabaseIsNamedWhenTheAgentDoesNotAnswer) {
  if (::access("/usr/bin/sqlite3", X_OK) != 0) {
    GTEST_SKIP() << "needs the sqlite3 command line tool (packaging/install-deps.sh installs it)";
  }
  TempDir tmp("psa-ops-locked");
  const fs::path state = tmp / "state";
  prefillStore(state, 3, 0, "x");
  AgentProcess agent(state, baseConfig());
  writeFile(agent.configFile(), json::serialize(agent.config(), true));
  // Another process holds the database exclusively (as a wedged writer could).
  Process::Options po;
  po.argv = {"/usr/bin/sqlite3", (state / "queue.db").string()};
  po.stdin_data = "PRAGMA locking_mode=EXCLUSIVE;\nBEGIN EXCLUSIVE;\nSELECT count(*) FROM queue;\n"
                  ".print locked\n.shell sleep 30\n";
  po.stdout_file = tmp / "sqlite3.out";
  Process holder(std::move(po));
  ASSERT_TRUE(waitFor([&] { return readFile(tmp / "sqlite3.out").find("locked") != std::string::npos; }, 10s));
  auto r = agent.cli({"queue", "stats"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("pms-agent queue stats: the queue database " + (state / "queue.db").string() +
                          " is locked by another process (an agent that does not answer on its "
                          "control socket?) ▸ systemctl status pms-agent\n"),
            std::string::npos) << r.output;
  holder.kill();
}

TEST(OpsCli, BadArgumentsAreUsageErrorsWithExitCode2) {
  TempDir tmp("psa-ops-args");
  AgentProcess agent(tmp / "state", baseConfig());
  writeFile(agent.configFile(), json::serialize(agent.config(), true));
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"queue", "show"},
       "pms-agent queue show: missing ID (a msg_id from `pms-agent queue list` or `pms-agent queue dead`)\n"},
      {{"queue", "show", "12345"},
       "pms-agent queue show: \"12345\" is not a msg_id (26 characters of 0-9 and A-Z, as "
       "`pms-agent queue list` shows)\n"},
      {{"queue", "retry", "not-an-id"},
       "pms-agent queue retry: \"not-an-id\" is not a msg_id (26 characters of 0-9 and A-Z, as "
       "`pms-agent queue list` shows)\n"},
      {{"queue", "list", "--limit", "0"}, "pms-agent queue list: --limit must be from 1 to 1000\n"},
      {{"queue", "dead", "--after=-4"}, "pms-agent queue dead: --after must be a seq (0 or more)\n"},
      {{"log", "level", "loud"},
       "pms-agent log level: unknown level \"loud\" (expected debug, info, warn or error)\n"},
      {{"bundle"}, "pms-agent bundle: missing --out FILE (e.g. --out /tmp/pms-agent-bundle.tar.gz)\n"},
      {{"bundle", "--out", tmp.path().string()},
       "pms-agent bundle: " + tmp.path().string() + " is a directory; give a file name\n"},
      {{"check", "--timeout", "0"}, "pms-agent check: --timeout must be from 1 to 60 seconds\n"},
      {{"queue", "salvage"},
       "pms-agent queue salvage: missing FILE (e.g. "
       "/var/lib/pms-agent/queue.db.corrupt-20261125T101500Z)\n"},
  };
  for (const auto& c : cases) {
    auto r = agent.cli(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.output;
    EXPECT_EQ(r.output, c.message);
  }
  // Option and command errors from the parser name the problem and print the usage.
  auto r = agent.cli({"queue", "stats", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output.rfind("pms-agent queue stats: unrecognised option '--bogus'\n\nusage: pms-agent queue stats", 0), 0u)
      << r.output;
  r = agent.cli({"queue", "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output.rfind("pms-agent: unknown command 'queue frobnicate'; see pms-agent queue --help\n", 0), 0u)
      << r.output;
  r = agent.cli({"status", "extra"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output.rfind("pms-agent status: too many positional options have been specified on the command line", 0), 0u)
      << r.output;
  // A config that does not exist is a failure (1) that says where it looked.
  r = runCommand({binary("pms-agent").string(), "--config", (tmp / "nope.json").string(), "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "pms-agent status: config file " + (tmp / "nope.json").string() + " does not exist\n");
}

TEST(OpsCli, ControlSocketRefusesAnotherUser) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to run the CLI as another user (nobody)";
  }
  if (::access("/usr/bin/setpriv", X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/setpriv (util-linux) to drop to nobody";
  }
  TempDir tmp("psa-ops-perm");
  ::chmod(tmp.path().c_str(), 0755);
  const fs::path state = tmp / "state";
  prefillStore(state, 3, 1, uniqueMarker());
  AgentProcess agent(state, baseConfig());
  ASSERT_TRUE(agent.start()) << agent.log();
  ::chmod(state.c_str(), 0755);  // nobody may reach the socket file, only its mode decides
  ::chmod(agent.configFile().c_str(), 0644);
  struct stat st {};
  ASSERT_EQ(::stat((state / "control.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  auto asNobody = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                     "--clear-groups", binary("pms-agent").string(), "--config",
                                     agent.configFile().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  };
  const std::string denied = "permission denied on the control socket " +
                             (state / "control.sock").string() +
                             " (run as root or as a member of the pms-agent group)\n";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"queue", "stats"}, std::vector<std::string>{"queue", "purge-dead"},
        std::vector<std::string>{"keys", "rotate"}, std::vector<std::string>{"status"}}) {
    auto r = asNobody(args);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(denied), std::string::npos) << r.output;
  }
  // Nothing was done for the refused user.
  EXPECT_EQ(parseJson(agent.cli({"queue", "stats", "--json"}).output).getInt("dead"), 1);
  ASSERT_EQ(agent.stop(), 0);
  for (const auto& e : auditEntriesOf(state)) {
    EXPECT_NE(e.actor, "uid:65534") << e.action;
  }
}

TEST(OpsCli, LogLevelChangesAtRunTimeAndLogsStayPhiFree) {
  TempDir tmp("psa-ops-log");
  const std::string marker = uniqueMarker();
  const fs::path state = tmp / "state";
  const Prefilled pre = prefillStore(state, 5, 1, marker);
  json::Value cfg = baseConfig("info");
  cfg.find("agent")->set("log_file", json::Value::string((tmp / "agent-file.log").string()));
  cfg.find("agent")->set("log_max_bytes", json::Value::integer(4096));
  cfg.find("agent")->set("log_keep", json::Value::integer(2));
  AgentProcess agent(state, cfg);
  ASSERT_TRUE(agent.start()) << agent.log();

  ASSERT_EQ(agent.cli({"status"}).exit_code, 0);
  EXPECT_EQ(agent.log().find("event=request cmd=status"), std::string::npos) << "debug line at info level";
  ASSERT_EQ(agent.cli({"log", "level", "debug"}).exit_code, 0);
  EXPECT_NE(agent.log().find(
                "level=warn comp=control event=log_level_changed to=debug from=info peer=uid:"),
            std::string::npos)
      << agent.log();
  ASSERT_EQ(agent.cli({"status"}).exit_code, 0);
  EXPECT_TRUE(waitFor(
      [&] { return agent.log().find("event=request cmd=status peer=uid:") != std::string::npos; },
      5s))
      << agent.log();
  ASSERT_EQ(agent.cli({"log", "level", "warn"}).exit_code, 0);
  const size_t before = linesWith(agent.log(), "event=request").size();
  ASSERT_EQ(agent.cli({"status"}).exit_code, 0);
  EXPECT_EQ(linesWith(agent.log(), "event=request").size(), before);

  // Reveal and many requests at debug level: the payload never reaches a log line, and the
  // size-rotated file keeps at most log_keep old files.
  ASSERT_EQ(agent.cli({"log", "level", "debug"}).exit_code, 0);
  ASSERT_EQ(agent.cli({"queue", "show", pre.dead[0], "--reveal"}).exit_code, 0);
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(agent.cli({"queue", "show", pre.queued[static_cast<size_t>(i % 5)]}).exit_code, 0);
  }
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_TRUE(fs::exists(tmp / "agent-file.log.1"));
  EXPECT_FALSE(fs::exists(tmp / "agent-file.log.3"));
  EXPECT_EQ(agent.log().find(marker), std::string::npos);
  expectNoMarkerIn(tmp.path(), marker);
}

}  // namespace
}  // namespace psa::test
