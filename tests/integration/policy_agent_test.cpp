// The minimum-necessary field policy in the real agent (issue 16): HL7 over MLLP and CSV files
// carrying a marker name and Social Security numbers reach the cloud simulator (real mosquitto,
// real pms-cloud-sim) with the SSNs masked to their last four by default, and the full number
// is nowhere: not in the published payloads, the stored records and dead letters, the state
// directory (database, WAL), the log or the support bundle. A signed remote config then sets
// drop, hash and generalize rules, which apply to the next records and are audited.
#include <gtest/gtest.h>

#include "mllp_senders.h"
#include "psa/adapters/hl7/message.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kSsn = "987-65-4321";
constexpr const char* kSsnDigits = "987654321";
constexpr const char* kDeadSsn = "123-45-6789";

std::string adt(const std::string& control_id, const std::string& family, bool with_type = true) {
  return "MSH|^~\\&|REG|HOSP|PS|EDGE|20261126083000||" +
         std::string(with_type ? "ADT^A04^ADT_A01" : "") + "|" + control_id +
         "|P|2.5.1\rEVN|A04|20261126083000\r"
         "PID|1||MRN1^^^HOSP^MR~" +
         kSsnDigits + "^^^SSA^SS||" + family +
         "^ALEX||19800214|F|||12 MAIN ST^^SPRINGFIELD^IL^62704||555-0100|||||ACCT9|" + kSsn + "\r";
}

json::Value mllpAdapter(int port) {
  return *json::parse(
      R"({"name":"cerner-adt","type":"hl7-mllp","vendor":"cerner","listen":"127.0.0.1:)" +
      std::to_string(port) + R"("})");
}

json::Value dropAdapter(const fs::path& drop) {
  return *json::parse(
      R"({"name":"ecw-export","type":"file-drop","vendor":"eclinicalworks","path":")" +
      drop.string() +
      R"(","format":"csv","kind":"patient","stable_ms":100,"poll_interval_ms":200})");
}

std::string sendHl7(int port, const std::string& message) {
  auto c = mllpConnect(port);
  if (!c) {
    return "connect failed";
  }
  auto ack = c->exchange(message);
  return ack ? *ack : ack.error().describe();
}

void dropCsv(const fs::path& drop, const std::string& name, const std::string& text) {
  writeFile(drop / ("." + name + ".tmp"), text);
  fs::rename(drop / ("." + name + ".tmp"), drop / name);
}

/// The published record whose payload contains `needle`.
std::optional<SimMessage> published(const CloudSim& sim, const std::string& needle) {
  for (const auto& [id, m] : sim.unique()) {
    if (m.payload.find(needle) != std::string::npos) {
      return m;
    }
  }
  return std::nullopt;
}

std::string hl7Field(const std::string& msg, const std::string& path) {
  adapters::hl7::Message m;
  EXPECT_TRUE(m.parse(msg));
  return m.decode(m.get(path));
}

TEST(PolicyAgent, DefaultMasksSsnsFromMllpAndCsvEverywhere) {
  RemoteFixture f;
  const std::string m = uniqueMarker();
  const fs::path drop = f.env.tmp / "drop";
  fs::create_directories(drop);
  const int port = freePort();
  f.agent->config().find("agent")->set("log_level", json::Value::string("debug"));
  f.agent->config().find("agent")->set("log_file",
                                       json::Value::string((f.state / "agent-file.log").string()));
  f.agent->config().set("adapters", json::Value::array({mllpAdapter(port), dropAdapter(drop)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  // HL7: a good message, one without MSH-9 (AE: a dead letter that parses), and bytes that are
  // not HL7 at all but carry an SSN in PID-19 position (a dead letter only the fallback reads).
  const std::string good = adt("POL-1", m + "A");
  EXPECT_NE(sendHl7(port, good).find("MSA|AA|POL-1"), std::string::npos);
  EXPECT_NE(sendHl7(port, adt("POL-2", m + "B", false)).find("MSA|AE|POL-2"), std::string::npos);
  sendHl7(port, std::string("PID|1||||||||||||||||||") + kSsnDigits + "|" + m + "C\r");
  // CSV: a good row and a ragged one (dead letter, raw bytes) with another SSN.
  dropCsv(drop, "patients.csv",
          "Id,LastName,Patient_SSN,Zip\n1," + m + "D," + kSsn + ",62704\n2," + m + "E," + kDeadSsn +
              ",1,EXTRA\n");

  ASSERT_TRUE(
      waitFor([&] { return published(*f.sim, m + "A") && published(*f.sim, m + "D"); }, 60s))
      << f.agent->log();
  const SimMessage hl7 = *published(*f.sim, m + "A");
  EXPECT_TRUE(hl7.sha256_ok) << "sha256 is of the bytes after the policy";
  EXPECT_EQ(hl7Field(hl7.payload, "PID-19"), "*******4321");
  EXPECT_EQ(hl7Field(hl7.payload, "PID-3[2].1"), "*****4321");
  EXPECT_EQ(hl7Field(hl7.payload, "PID-3[2].5"), "SS");
  std::string expected = good;  // everything else byte-identical
  expected.replace(expected.find(kSsnDigits), 9, "*****4321");
  expected.replace(expected.find(kSsn), 11, "*******4321");
  EXPECT_EQ(hl7.payload, expected);
  const SimMessage csv = *published(*f.sim, m + "D");
  EXPECT_TRUE(csv.sha256_ok);
  EXPECT_EQ(json::parse(csv.payload)->getString("Patient_SSN"), "*******4321") << csv.payload;
  EXPECT_EQ(json::parse(csv.payload)->getString("Zip"), "62704");
  for (const auto& [id, msg] : f.sim->unique()) {
    EXPECT_EQ(msg.payload.find(kSsn), std::string::npos) << msg.payload;
    EXPECT_EQ(msg.payload.find(kSsnDigits), std::string::npos) << msg.payload;
  }

  // The stored dead letters hold the masked values (revealed, as a technician would).
  std::string outputs;
  ASSERT_TRUE(waitFor(
      [&] {
        auto s = json::parse(f.agent->cli({"queue", "stats", "--json"}).output);
        return s && s->getInt("dead") >= 3;
      },
      30s))
      << f.agent->log();
  auto dead = json::parse(f.agent->cli({"queue", "dead", "--json"}).output);
  ASSERT_TRUE(dead);
  std::string revealed;
  for (const auto& d : dead->find("records")->items()) {
    auto r = f.agent->cli({"queue", "show", d.getString("msg_id"), "--reveal"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    revealed += r.output;
  }
  EXPECT_NE(revealed.find(m + "B"), std::string::npos) << "the dead letters were revealed";
  EXPECT_NE(revealed.find(m + "C"), std::string::npos);
  EXPECT_NE(revealed.find(m + "E"), std::string::npos);
  EXPECT_EQ(revealed.find(kSsn), std::string::npos) << revealed;
  EXPECT_EQ(revealed.find(kSsnDigits), std::string::npos) << revealed;
  EXPECT_EQ(revealed.find(kDeadSsn), std::string::npos) << revealed;
  EXPECT_NE(revealed.find("*******6789"), std::string::npos) << revealed;

  // Counts, no values.
  auto status = json::parse(f.agent->cli({"status", "--json"}).output);
  ASSERT_TRUE(status);
  const json::Value* policy = status->find("policy");
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->getBool("default_ssn_mask"));
  EXPECT_GE(policy->find("changed")->getInt("masked"), 7);
  EXPECT_GE(policy->find("by_adapter")->find("cerner-adt")->getInt("masked"), 5);
  EXPECT_GE(policy->find("by_adapter")->find("ecw-export")->getInt("masked"), 2);
  auto stats = f.agent->cli({"queue", "stats"});
  EXPECT_NE(stats.output.find("field policy"), std::string::npos) << stats.output;
  auto text = f.agent->cli({"status"});
  EXPECT_NE(text.output.find("POLICY  SSN mask on"), std::string::npos) << text.output;

  const fs::path bundle = f.env.tmp / "bundle.tar.gz";
  ASSERT_EQ(f.agent->cli({"bundle", "--out", bundle.string()}).exit_code, 0);
  EXPECT_TRUE(fs::exists(f.state / "queue.db-wal"));
  for (const char* ssn : {kSsn, kSsnDigits, kDeadSsn}) {
    EXPECT_EQ(filesContaining(f.state, ssn), std::vector<fs::path>{})
        << ssn << " under the running agent's state dir";
  }
  ASSERT_EQ(f.agent->stop(), 0) << f.agent->log();
  const fs::path extracted = f.env.tmp / "bundle";
  fs::create_directories(extracted);
  ASSERT_EQ(runCommand({"/bin/tar", "-xzf", bundle.string(), "-C", extracted.string()}).exit_code,
            0);
  for (const char* ssn : {kSsn, kSsnDigits, kDeadSsn}) {
    EXPECT_EQ(f.agent->log().find(ssn), std::string::npos) << ssn << " in the log";
    EXPECT_EQ(filesContaining(f.state, ssn), std::vector<fs::path>{})
        << ssn << " under the state dir";
    EXPECT_EQ(filesContaining(extracted, ssn), std::vector<fs::path>{}) << ssn << " in the bundle";
    EXPECT_EQ(readFile(f.sim->outFile()).find(ssn), std::string::npos)
        << ssn << " at the simulator";
  }
}

TEST(PolicyAgent, RemoteConfigSetsDropHashGeneralizeAndIsAudited) {
  RemoteFixture f;
  const std::string m = uniqueMarker();
  const fs::path drop = f.env.tmp / "drop";
  fs::create_directories(drop);
  const int port = freePort();
  f.agent->config().set("adapters", json::Value::array({mllpAdapter(port), dropAdapter(drop)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  json::Value config = *json::parse(R"({"policy":{"rules":[
    {"kind":"patient","format":"hl7v2","field":"PID-11","action":"drop"},
    {"format":"hl7v2","field":"PID-5","action":"hash"},
    {"format":"hl7v2","field":"PID-7","action":"generalize"},
    {"format":"csv+json","field":"lastname","action":"hash"},
    {"format":"csv+json","field":"ZIP","action":"generalize"},
    {"format":"csv+json","field":"Phone","action":"drop"},
    {"format":"csv+json","field":"dob","action":"generalize"}]}})");
  config.set("adapters", json::Value::array({mllpAdapter(port), dropAdapter(drop)}));
  json::Value r = f.pushConfig(config, 1);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();

  EXPECT_NE(sendHl7(port, adt("POL-3", m + "A")).find("MSA|AA|POL-3"), std::string::npos);
  EXPECT_NE(sendHl7(port, adt("POL-4", m + "A")).find("MSA|AA|POL-4"), std::string::npos);
  dropCsv(drop, "p.csv",
          "Id,LastName,Zip,Phone,DOB,SSN\nQ1," + m + "D,62704,555-0100,1980-02-14," + kSsn + "\n");
  ASSERT_TRUE(waitFor(
      [&] {
        return published(*f.sim, "|POL-3|") && published(*f.sim, "|POL-4|") &&
               published(*f.sim, "\"Q1\"");
      },
      60s))
      << f.agent->log();
  const std::string a = published(*f.sim, "|POL-3|")->payload;
  const std::string b = published(*f.sim, "|POL-4|")->payload;
  EXPECT_EQ(a.find(m), std::string::npos) << "the name is hashed";
  EXPECT_EQ(hl7Field(a, "PID-5.1").substr(0, 2), "h:");
  EXPECT_EQ(hl7Field(a, "PID-5.1"), hl7Field(b, "PID-5.1")) << "same value, same token";
  EXPECT_NE(hl7Field(a, "PID-5.1"), hl7Field(a, "PID-5.2"));
  EXPECT_EQ(hl7Field(a, "PID-7"), "1980");
  adapters::hl7::Message parsed;
  ASSERT_TRUE(parsed.parse(a));
  EXPECT_TRUE(parsed.get("PID-11").empty());
  EXPECT_EQ(hl7Field(a, "PID-13"), "555-0100");
  EXPECT_EQ(hl7Field(a, "PID-19"), "*******4321") << "the default SSN mask still applies";
  auto row = json::parse(published(*f.sim, "\"Q1\"")->payload);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->getString("LastName").substr(0, 2), "h:");
  EXPECT_EQ(row->getString("Zip"), "627");
  EXPECT_EQ(row->getString("Phone"), "");
  EXPECT_EQ(row->getString("DOB"), "1980");
  EXPECT_EQ(row->getString("SSN"), "*******4321");
  EXPECT_TRUE(fs::exists(f.state / "policy.key")) << "the hash key is created when a rule hashes";

  auto status = json::parse(f.agent->cli({"status", "--json"}).output);
  ASSERT_TRUE(status);
  const json::Value* changed = status->find("policy")->find("changed");
  EXPECT_GE(changed->getInt("hashed"), 3);
  EXPECT_GE(changed->getInt("dropped"), 3);
  EXPECT_GE(changed->getInt("generalized"), 4);

  // Loosening the default is explicit, and audited like every policy change.
  json::Value off = *json::parse(R"({"policy":{"default_ssn_mask":false}})");
  r = f.pushConfig(off, 2);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r);
  EXPECT_NE(sendHl7(port, adt("POL-5", m + "F")).find("MSA|AA|POL-5"), std::string::npos);
  ASSERT_TRUE(waitFor([&] { return published(*f.sim, "|POL-5|").has_value(); }, 60s))
      << f.agent->log();
  EXPECT_EQ(hl7Field(published(*f.sim, "|POL-5|")->payload, "PID-19"), kSsn);
  ASSERT_EQ(f.agent->stop(), 0) << f.agent->log();

  std::vector<json::Value> changes;
  store::StoreOptions o;
  o.db_path = f.state / "queue.db";
  o.key_file = f.state / "queue.key";
  o.read_only = true;
  auto ro = store::SqliteStore::open(o);
  ASSERT_TRUE(ro) << ro.error().describe();
  auto entries = (*ro)->auditEntries(0, 100000);
  ASSERT_TRUE(entries);
  for (const auto& e : *entries) {
    if (e.action == "policy.changed") {
      EXPECT_EQ(e.actor, "cloud");
      changes.push_back(*json::parse(e.detail));
    }
  }
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].find("rules")->items().size(), 7u);
  EXPECT_TRUE(changes[0].getBool("default_ssn_mask"));
  EXPECT_FALSE(changes[1].getBool("default_ssn_mask"));
  EXPECT_EQ(f.agent->log().find(m), std::string::npos);
}

}  // namespace
}  // namespace psa::test
