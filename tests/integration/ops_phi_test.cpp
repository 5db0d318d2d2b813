// The technician's view of an agent that has handled patient data from real sources: a marker
// sent over MLLP (accepted and rejected messages) and dropped in CSV files (stored rows, a
// dead-lettered row, a failing file) reaches the cloud, yet never appears in the agent's log
// (at debug level), its log file, any CLI output (status, check, queue, audit) or the support
// bundle. Also shows that status and check describe the real adapters, and (issue 4's end-to-end
// test) that an HL7 message sent over MLLP arrives at the simulator byte-identical exactly once.
#include <gtest/gtest.h>

#include <algorithm>

#include "mllp_senders.h"
#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

TEST(OpsPhi, MarkerFromEverySourceNeverReachesLogsCliOutputOrBundle) {
  CloudEnv env({}, "psa-ops-phi");
  CloudSim sim(env.simOptions());
  const std::string m = uniqueMarker();
  const fs::path state = env.tmp / "state";
  const fs::path drop = env.tmp / "drop";
  const fs::path input = env.tmp / "input";
  fs::create_directories(drop);
  fs::create_directories(input);
  const int port = freePort();

  json::Value cfg = baseConfig("debug");
  cfg.find("agent")->set("log_file", json::Value::string((state / "agent-file.log").string()));
  cfg.set("cloud", cloudSection(env));
  json::Value adapters = json::Value::array();
  adapters.push(*json::parse(R"({"name":"cerner-adt","type":"hl7-mllp","vendor":"cerner","listen":"127.0.0.1:)" +
                             std::to_string(port) + R"("})"));
  adapters.push(*json::parse(R"({"name":"ecw-export","type":"file-drop","vendor":"eclinicalworks","path":")" +
                             drop.string() + R"(","format":"csv","kind":"patient"})"));
  cfg.set("adapters", std::move(adapters));
  AgentProcess agent(state, cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  std::string outputs;
  auto cli = [&](const std::vector<std::string>& args) {
    auto r = agent.cli(args);
    outputs += r.output;
    return r;
  };

  // HL7: one good message, one without MSH-9 (AE, dead letter); the marker in PID-5 of both.
  writeFile(input / "msgs.hl7",
            "MSH|^~\\&|REG|HOSP|PS|EDGE|20261126083000||ADT^A04^ADT_A01|PHI-1|P|2.5.1\r"
            "EVN|A04|20261126083000\rPID|1||MRN1^^^HOSP^MR||" + m + "^ALEX\r"
            "MSH|^~\\&|REG|HOSP|PS|EDGE|20261126083000|||PHI-2|P|2.5.1\r"
            "EVN|A04|20261126083000\rPID|1||MRN2^^^HOSP^MR||" + m + "^SAM\r");
  auto sent = cli({"hl7", "send", (input / "msgs.hl7").string(), "--to", "127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(sent.exit_code, 1) << sent.output;  // not every ACK was AA
  EXPECT_NE(sent.output.find("AA"), std::string::npos) << sent.output;
  EXPECT_NE(sent.output.find("AE"), std::string::npos) << sent.output;
  // CSV: two stored rows and a ragged (dead-lettered) row; a second file fails (bad quote).
  writeFile(drop / ".p.tmp", "Id,LastName,Note\n1," + m + ",ok\n2,DOE," + m + ",EXTRA\n3,ROE,x" + m + "\n");
  fs::rename(drop / ".p.tmp", drop / "patients.csv");
  writeFile(drop / ".f.tmp", "Id,LastName,Note\n1," + m + ",ok\n2,\"" + m + ",x\n");
  fs::rename(drop / ".f.tmp", drop / "broken.csv");

  // One message sent byte-exact by a plain MLLP client, one through python3-hl7's mllp_send.
  const std::string exact = adtMessage("PHI-EXACT", m + "^EXACT");
  {
    auto c = mllpConnect(port);
    ASSERT_TRUE(c);
    auto ack = c->exchange(exact);
    ASSERT_TRUE(ack.ok()) << ack.error().describe();
    EXPECT_NE(ack->find("MSA|AA|PHI-EXACT\r"), std::string::npos) << "ACK without PHI check";
  }
  size_t expected = 4;
  if (fs::exists("/usr/bin/mllp_send")) {
    std::string loose = adtMessage("PHI-PY", m + "^PY");
    std::replace(loose.begin(), loose.end(), '\r', '\n');
    writeFile(input / "py.txt", loose + "\n");
    auto py = runCommand({"/usr/bin/python3", "/usr/bin/mllp_send", "--loose", "-p", std::to_string(port), "-f",
                          (input / "py.txt").string(), "127.0.0.1"}, 60s);
    ASSERT_EQ(py.exit_code, 0) << "mllp_send failed";
    EXPECT_NE(py.output.find("MSA|AA|PHI-PY\r"), std::string::npos) << "mllp_send got no AA";
    expected = 5;
  }

  // The good records reach the cloud, marker and all.
  ASSERT_TRUE(waitFor([&] { return sim.unique().size() >= expected; }, 60s)) << agent.log();
  // The byte-exact message: exactly one delivery, byte-identical, sha256 verified.
  {
    std::vector<SimMessage> copies;
    for (const auto& msg : sim.messages()) {
      if (msg.payload.find("|PHI-EXACT|") != std::string::npos) {
        copies.push_back(msg);
      }
    }
    ASSERT_EQ(copies.size(), 1u) << "the MLLP message did not arrive exactly once";
    EXPECT_TRUE(copies[0].payload == exact) << "payload not byte-identical (size " << copies[0].payload.size()
                                            << " vs " << exact.size() << ")";
    EXPECT_TRUE(copies[0].sha256_ok);
    EXPECT_EQ(copies[0].source, "cerner-adt");
    EXPECT_EQ(copies[0].format, "hl7v2");
    EXPECT_EQ(copies[0].kind, "patient");
  }
  size_t with_marker = 0;
  for (const auto& [id, msg] : sim.unique()) {
    with_marker += msg.payload.find(m) != std::string::npos ? 1 : 0;
  }
  EXPECT_GE(with_marker, 3u);
  ASSERT_TRUE(waitFor([&] {
    auto s = json::parse(cli({"queue", "stats", "--json"}).output);
    return s && s->getInt("dead") >= 2;
  }, 30s)) << agent.log();

  // The technician looks at everything.
  auto r = cli({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\n  cerner-adt  hl7-mllp   "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n  ecw-export  file-drop  "), std::string::npos) << r.output;
  cli({"status", "--json"});
  r = cli({"check"});
  EXPECT_NE(r.output.find("adapter cerner-adt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("adapter ecw-export"), std::string::npos) << r.output;
  cli({"queue", "stats"});
  cli({"queue", "list", "--limit", "1000"});
  r = cli({"queue", "dead", "--json"});
  auto dead = json::parse(r.output);
  ASSERT_TRUE(dead.ok()) << r.output;
  for (const auto& d : dead->find("records")->items()) {
    cli({"queue", "show", d.getString("msg_id")});
  }
  cli({"audit", "verify"});
  // The state dir while the agent runs (database, WAL, key, remote state, log file, ...).
  EXPECT_TRUE(fs::exists(state / "queue.db-wal"));
  EXPECT_EQ(filesContaining(state, m), std::vector<fs::path>{}) << "PHI marker under the running agent's state dir";
  const fs::path bundle = env.tmp / "bundle.tar.gz";
  r = cli({"bundle", "--out", bundle.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  const fs::path extracted = env.tmp / "bundle";
  fs::create_directories(extracted);
  ASSERT_EQ(runCommand({"/bin/tar", "-xzf", bundle.string(), "-C", extracted.string()}).exit_code, 0);

  EXPECT_EQ(outputs.find(m), std::string::npos) << "PHI marker in a CLI output";
  EXPECT_EQ(agent.log().find(m), std::string::npos) << "PHI marker in the agent's log";
  EXPECT_NE(agent.log().find("level=debug"), std::string::npos) << "the log ran at debug level";
  EXPECT_EQ(filesContaining(state, m), std::vector<fs::path>{}) << "PHI marker under the state dir";
  EXPECT_EQ(filesContaining(extracted, m), std::vector<fs::path>{}) << "PHI marker in the bundle";
}

}  // namespace
}  // namespace psa::test
