// The hl7-mllp adapter inside the real `pms-agent run` process, over real TCP sockets: many
// concurrent senders, pipelining, framing faults and bad HL7 next to good traffic, resend
// de-duplication, back-pressure at the disk budget, TLS with client certificates, the allow
// list, the idle timeout, no PHI in any file, and interoperability with python3-hl7's
// mllp_send.
#include <gtest/gtest.h>

#include "mllp_senders.h"
#include "tls_material.h"

namespace psa::test {
namespace {

namespace hl7 = psa::adapters::hl7;
using namespace std::chrono_literals;

StoreContents storeOf(const AgentProcess& agent) {
  return readStore(agent.stateDir() / "queue.db", agent.stateDir() / "queue.key");
}

hl7::AckSummary ackOf(const Result<std::string>& raw) {
  EXPECT_TRUE(raw.ok()) << (raw ? "" : raw.error().describe());
  if (!raw) {
    return {};
  }
  auto s = hl7::summarizeAck(raw.value());
  EXPECT_TRUE(s.ok()) << raw.value();
  return s ? s.value() : hl7::AckSummary{};
}

TEST(MllpAgent, SixtyFourSendersEveryAckedMessageStoredExactlyOnce) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));
  ASSERT_TRUE(agent.start()) << agent.log();
  AckLedger ledger;
  constexpr int kSenders = 64;
  constexpr int kPerSender = 60;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] {
      std::vector<std::string> ids;
      for (int k = 0; k < kPerSender; ++k) {
        ids.push_back("S" + std::to_string(s) + "M" + std::to_string(k));
      }
      // Every sender resends its first ten messages (a sender that timed out, say).
      for (int k = 0; k < 10; ++k) {
        ids.push_back(ids[static_cast<size_t>(k)]);
      }
      if (!sendPipelined(port, ids, s % 2 ? 1 : 8, ledger)) {
        ++failures;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(ledger.others().empty()) << ledger.others().front();
  EXPECT_EQ(ledger.count(), static_cast<size_t>(kSenders * kPerSender));
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.queued_total, static_cast<size_t>(kSenders * kPerSender));
  for (const auto& id : ledger.acked()) {
    ASSERT_EQ(stored.queued[id], 1) << id;
  }
}

TEST(MllpAgent, ThreeHundredConcurrentConnectionsAreAllAnswered) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  // 300 senders on one host: above the default per-peer limit (64).
  AgentProcess agent(tmp / "state", mllpAgentConfig(port, R"({"max_connections_per_peer":300})"));
  ASSERT_TRUE(agent.start()) << agent.log();
  constexpr int kConnections = 300;
  std::vector<hl7::MllpClientPtr> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(mllpConnect(port));
    ASSERT_NE(clients.back(), nullptr) << i;
  }
  // All of them open at once, then all send, then all read.
  for (int i = 0; i < kConnections; ++i) {
    ASSERT_TRUE(clients[i]->sendRaw(hl7::mllpFrame(adtMessage("K" + std::to_string(i)))));
  }
  for (int i = 0; i < kConnections; ++i) {
    auto ack = ackOf(clients[i]->receive());
    ASSERT_EQ(ack.code, "AA") << i;
    ASSERT_EQ(ack.control_id, "K" + std::to_string(i));
  }
  clients.clear();
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  EXPECT_EQ(storeOf(agent).queued_total, static_cast<size_t>(kConnections));
}

TEST(MllpAgent, PipelinedThousandOnOneConnectionInOrder) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));
  ASSERT_TRUE(agent.start()) << agent.log();
  auto c = mllpConnect(port);
  ASSERT_NE(c, nullptr);
  std::string burst;
  for (int i = 0; i < 1000; ++i) {
    hl7::mllpFrameTo(adtMessage("PIPE" + std::to_string(i)), burst);
  }
  ASSERT_TRUE(c->sendRaw(burst));
  for (int i = 0; i < 1000; ++i) {
    auto ack = ackOf(c->receive());
    ASSERT_EQ(ack.control_id, "PIPE" + std::to_string(i));
    ASSERT_EQ(ack.code, "AA");
  }
  c.reset();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(storeOf(agent).queued_total, 1000u);
}

TEST(MllpAgent, BadInputOnOneConnectionDoesNotDisturbAnother) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port, R"({"max_message_bytes":65536})"));
  ASSERT_TRUE(agent.start()) << agent.log();
  AckLedger ledger;
  std::atomic<bool> good_ok{false};
  std::thread good([&] {
    std::vector<std::string> ids;
    for (int i = 0; i < 300; ++i) {
      ids.push_back("GOOD" + std::to_string(i));
    }
    good_ok = sendPipelined(port, ids, 4, ledger);
  });

  auto bad = mllpConnect(port);
  ASSERT_NE(bad, nullptr);
  // Junk before a frame: skipped, the frame is answered.
  ASSERT_TRUE(bad->sendRaw("\x16\x03\x01 not mllp at all\r\n" + hl7::mllpFrame(adtMessage("B1"))));
  EXPECT_EQ(ackOf(bad->receive()).control_id, "B1");
  // Oversize: AR 207 naming the limit.
  auto big = ackOf(bad->exchange(adtMessage("BIG1", "DOE", 200000)));
  EXPECT_EQ(big.code, "AR");
  EXPECT_EQ(big.control_id, "BIG1");
  EXPECT_EQ(big.text, "message larger than 65536 bytes (max_message_bytes); not accepted");
  // Not HL7 inside a frame: AR, dead-lettered.
  auto garbage = ackOf(bad->exchange("\x01\x02garbage\xff\xfe"));
  EXPECT_EQ(garbage.code, "AR");
  // HL7 with a missing required field: AE with the location.
  std::string no_type = adtMessage("NOTYPE1");
  no_type.replace(no_type.find("ADT^A01^ADT_A01"), 15, "");
  auto ae = ackOf(bad->exchange(no_type));
  EXPECT_EQ(ae.code, "AE");
  ASSERT_FALSE(ae.errors.empty());
  EXPECT_EQ(ae.errors[0], "HL7 101 (Required field missing) at MSH-9.1 severity E");
  // A frame cut by a new start block: never answered.
  ASSERT_TRUE(bad->sendRaw("\x0b" + adtMessage("CUT1").substr(0, 100) +
                           hl7::mllpFrame(adtMessage("B2"))));
  EXPECT_EQ(ackOf(bad->receive()).control_id, "B2");
  // A connection dropped mid-frame.
  ASSERT_TRUE(bad->sendRaw("\x0b" + adtMessage("CUT2").substr(0, 500)));
  bad.reset();

  good.join();
  EXPECT_TRUE(good_ok);
  EXPECT_EQ(ledger.count(), 300u);
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.queued_total, 302u);  // 300 good + B1 + B2
  EXPECT_EQ(stored.queued.count("CUT1") + stored.queued.count("CUT2"), 0u);
  EXPECT_EQ(stored.queued.count("BIG1"), 0u);
  EXPECT_EQ(stored.dead_total, 2u);  // garbage and NOTYPE1
  EXPECT_EQ(stored.dead_reason["NOTYPE1"].rfind("HL7 101 (Required field missing) at MSH-9", 0), 0u)
      << stored.dead_reason["NOTYPE1"];
  const std::string log = agent.log();
  EXPECT_NE(log.find("event=framing_fault"), std::string::npos);
  EXPECT_NE(log.find("fault=oversize"), std::string::npos);
  EXPECT_NE(log.find("fault=truncated"), std::string::npos);
  EXPECT_NE(log.find("fault=start_in_frame"), std::string::npos);
}

TEST(MllpAgent, DiskBudgetAnswersArAndLosesNothingAcknowledged) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state",
                     mllpAgentConfig(port, "{}", R"({"max_bytes":1048576})"));
  ASSERT_TRUE(agent.start()) << agent.log();
  auto c = mllpConnect(port);
  ASSERT_NE(c, nullptr);
  std::vector<std::string> accepted;
  hl7::AckSummary refused;
  for (int i = 0; i < 400 && refused.code.empty(); ++i) {
    const std::string id = "BUDGET" + std::to_string(i);
    auto ack = ackOf(c->exchange(adtMessage(id, "DOE", 20000)));
    if (ack.code == "AA") {
      accepted.push_back(id);
    } else {
      refused = ack;
    }
  }
  ASSERT_EQ(refused.code, "AR");
  EXPECT_EQ(refused.text, "receiver queue full; message not accepted, retry later");
  // The sender retries: still refused, nothing dropped silently.
  EXPECT_EQ(ackOf(c->exchange(adtMessage(refused.control_id, "DOE", 20000))).code, "AR");
  c.reset();
  ASSERT_EQ(agent.stop(), 0);
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.queued_total, accepted.size());
  for (const auto& id : accepted) {
    EXPECT_EQ(stored.queued[id], 1) << id;
  }
  EXPECT_NE(agent.log().find("event=store_refused"), std::string::npos);
}

TEST(MllpAgent, TlsWithAndWithoutClientCertificate) {
  TempDir tmp("psa-mllp-agent");
  TlsMaterial pki(tmp / "pki");
  // Relative file names resolve against the state dir.
  std::filesystem::create_directories(tmp / "state");
  std::filesystem::copy_file(pki.server().cert, tmp / "state" / "mllp.pem");
  std::filesystem::copy_file(pki.server().key, tmp / "state" / "mllp.key");
  const int port = freePort();
  const int mport = freePort();
  auto cfg = mllpAgentConfig(port, R"({"tls":{"cert_file":"mllp.pem","key_file":"mllp.key"}})");
  // A second adapter that requires client certificates.
  auto second = cfg.find("adapters")->items()[0];
  second.set("name", json::Value::string("pms-mtls"));
  second.set("listen", json::Value::string("127.0.0.1:" + std::to_string(mport)));
  second.set("tls", json::parse(R"({"cert_file":"mllp.pem","key_file":"mllp.key","client_ca_file":")" +
                                pki.ca().cert.string() + "\"}")
                        .value());
  cfg.find("adapters")->push(second);
  AgentProcess agent(tmp / "state", cfg);
  ASSERT_TRUE(agent.start()) << agent.log();

  hl7::MllpClientOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(port);
  o.tls = true;
  o.ca_file = pki.ca().cert;
  o.timeout = 10s;
  auto c = hl7::MllpClient::connect(o);
  ASSERT_TRUE(c) << c.error().describe();
  EXPECT_EQ(ackOf(c.value()->exchange(adtMessage("TLS1"))).code, "AA");

  o.port = static_cast<uint16_t>(mport);
  auto anon = hl7::MllpClient::connect(o);
  if (anon) {
    EXPECT_FALSE(anon.value()->exchange(adtMessage("ANON1")));
  }
  o.cert_file = pki.client("pms-server").cert;
  o.key_file = pki.client("pms-server").key;
  auto m = hl7::MllpClient::connect(o);
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(ackOf(m.value()->exchange(adtMessage("MTLS1"))).code, "AA");

  // The CLI sender speaks TLS too.
  writeFile(tmp / "one.hl7", adtMessage("CLI_TLS1"));
  auto out = agent.cli({"hl7", "send", (tmp / "one.hl7").string(), "--to",
                        "127.0.0.1:" + std::to_string(mport), "--tls", "--ca",
                        pki.ca().cert.string(), "--cert", pki.client("pms-server").cert.string(),
                        "--key", pki.client("pms-server").key.string()});
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("message 1 (line 1): AA  MSA-2=CLI_TLS1"), std::string::npos)
      << out.output;
  auto refused = agent.cli({"hl7", "send", (tmp / "one.hl7").string(), "--to",
                            "127.0.0.1:" + std::to_string(mport), "--tls", "--ca",
                            pki.otherCa().cert.string()});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("FAIL  TLS handshake with 127.0.0.1:" + std::to_string(mport) +
                                " failed: certificate verify failed"),
            std::string::npos)
      << refused.output;

  c.value()->close();
  m.value()->close();
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.queued_total, 3u);
  EXPECT_EQ(stored.info["MTLS1"].source, "pms-mtls");
  EXPECT_NE(agent.log().find("event=tls_handshake_failed"), std::string::npos);
}

TEST(MllpAgent, AllowListAndIdleTimeout) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  const int open_port = freePort();
  auto cfg = mllpAgentConfig(port, R"({"allow":["192.0.2.0/24"]})");
  auto second = cfg.find("adapters")->items()[0];
  second.set("name", json::Value::string("pms-idle"));
  second.set("listen", json::Value::string("127.0.0.1:" + std::to_string(open_port)));
  second.set("allow", json::parse(R"(["127.0.0.1"])").value());
  second.set("idle_timeout_s", json::Value::integer(1));
  cfg.find("adapters")->push(second);
  AgentProcess agent(tmp / "state", cfg);
  ASSERT_TRUE(agent.start()) << agent.log();

  auto denied = mllpConnect(port, 5s);
  ASSERT_NE(denied, nullptr);  // TCP accepts, then the listener closes it
  auto r = denied->exchange(adtMessage("DENIED1"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::closed) || r.error().is(Errc::io)) << r.error().describe();

  auto idle = mllpConnect(open_port, 10s);
  ASSERT_NE(idle, nullptr);
  EXPECT_EQ(ackOf(idle->exchange(adtMessage("ALLOWED1"))).code, "AA");
  auto end = idle->receive();
  ASSERT_FALSE(end);
  EXPECT_TRUE(end.error().is(Errc::closed)) << end.error().describe();

  ASSERT_EQ(agent.stop(), 0);
  const std::string log = agent.log();
  EXPECT_NE(log.find("event=connection_refused peer=127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("reason=\"address not in allow list\""), std::string::npos) << log;
  EXPECT_NE(log.find("event=idle_timeout"), std::string::npos) << log;
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.queued_total, 1u);
  EXPECT_EQ(stored.queued.count("DENIED1"), 0u);
}

TEST(MllpAgent, PhiMarkerReachesNoFileUnderTheStateDir) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port, R"({"max_message_bytes":8192,"required_segments":["IN1"]})"));
  ASSERT_TRUE(agent.start()) << agent.log();
  const std::string marker = uniqueMarker();
  auto c = mllpConnect(port);
  ASSERT_NE(c, nullptr);
  std::string valid = adtMessage("PHI1", marker);
  valid.replace(valid.find("DG1|"), 0, "IN1|1|PLAN001\r");
  EXPECT_EQ(ackOf(c->exchange(valid)).code, "AA");
  // Invalid (dead letter), control id carrying the marker too.
  EXPECT_EQ(ackOf(c->exchange(adtMessage(marker, marker))).code, "AE");
  // Oversize, unparseable, and a discarded partial frame, all carrying the marker.
  EXPECT_EQ(ackOf(c->exchange(adtMessage("PHI3", marker, 20000))).code, "AR");
  EXPECT_EQ(ackOf(c->exchange("NOT HL7 " + marker)).code, "AR");
  ASSERT_TRUE(c->sendRaw("\x0b" + adtMessage("PHI5", marker).substr(0, 400) +
                         hl7::mllpFrame(adtMessage("PHI6"))));
  EXPECT_EQ(ackOf(c->receive()).control_id, "PHI6");
  c.reset();
  ASSERT_EQ(agent.stop(), 0);
  // The log was written (at debug level) and the data is in the store, encrypted.
  EXPECT_NE(agent.log().find("event=message_rejected"), std::string::npos);
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.payload["PHI1"], valid);
  EXPECT_EQ(stored.dead_total, 3u);  // the AE, the unparseable one, PHI6 (no IN1)
  EXPECT_EQ(filesContaining(tmp.path(), marker), std::vector<std::filesystem::path>{});
}

TEST(MllpAgent, PythonHl7MllpSendInterop) {
  if (!std::filesystem::exists("/usr/bin/mllp_send")) {
    GTEST_SKIP() << "python3-hl7 (mllp_send) is not installed";
  }
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));
  ASSERT_TRUE(agent.start()) << agent.log();
  // --loose: LF-separated text file, messages start with MSH|^~\&|.
  std::string file;
  for (int i = 0; i < 25; ++i) {
    std::string m = adtMessage("PY" + std::to_string(i));
    std::replace(m.begin(), m.end(), '\r', '\n');
    file += m + "\n";
  }
  writeFile(tmp / "batch.txt", file);
  auto out = runCommand({"/usr/bin/python3", "/usr/bin/mllp_send", "--loose", "-p",
                         std::to_string(port), "-f", (tmp / "batch.txt").string(), "127.0.0.1"},
                        60s);
  ASSERT_EQ(out.exit_code, 0) << out.output;
  for (int i = 0; i < 25; ++i) {
    EXPECT_NE(out.output.find("MSA|AA|PY" + std::to_string(i) + "\r"), std::string::npos)
        << i << "\n" << out.output;
  }
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_EQ(storeOf(agent).queued_total, 25u);
}

TEST(MllpAgent, CliHl7SendAgainstTheRunningAgent) {
  TempDir tmp("psa-mllp-agent");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));
  ASSERT_TRUE(agent.start()) << agent.log();
  const std::string to = "127.0.0.1:" + std::to_string(port);
  // Blank-line separated, LF line ends: what a technician saves from a PMS log.
  std::string good;
  for (int i = 1; i <= 3; ++i) {
    std::string m = adtMessage("CLI" + std::to_string(i), "DOE", 700);
    std::replace(m.begin(), m.end(), '\r', '\n');
    good += m + "\n";
  }
  writeFile(tmp / "good.hl7", good);
  auto ok = agent.cli({"hl7", "send", (tmp / "good.hl7").string(), "--to", to});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("message 1 (line 1): AA  MSA-2=CLI1\n"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("message 3 (line 17): AA  MSA-2=CLI3\n"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("OK    3 messages to " + to + ": 3 accepted, 0 not accepted"),
            std::string::npos)
      << ok.output;

  std::string bad = adtMessage("MIX1", "DOE", 700) + "\r";  // a blank line between
  std::string v9 = adtMessage("MIX2", "DOE", 700);
  v9.replace(v9.find("|P|2.5.1"), 8, "|P|9.9");
  bad += v9;
  writeFile(tmp / "mixed.hl7", bad);
  auto mixed = agent.cli({"hl7", "send", (tmp / "mixed.hl7").string(), "--to", to});
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_NE(mixed.output.find("message 2 (line 9): AR  MSA-2=MIX2  \"version id not supported\"\n"),
            std::string::npos)
      << mixed.output;
  EXPECT_NE(mixed.output.find("    ERR HL7 203 (Unsupported version id) at MSH-12.1 severity E\n"),
            std::string::npos)
      << mixed.output;
  EXPECT_NE(mixed.output.find("FAIL  2 messages to " + to + ": 1 accepted, 1 not accepted"),
            std::string::npos)
      << mixed.output;

  auto js = agent.cli({"hl7", "send", (tmp / "mixed.hl7").string(), "--to", to, "--json"});
  EXPECT_EQ(js.exit_code, 1);
  auto doc = json::parse(js.output);
  ASSERT_TRUE(doc) << js.output;
  EXPECT_EQ(doc->getInt("accepted"), 1);
  EXPECT_FALSE(doc->getBool("ok", true));
  EXPECT_EQ(doc->find("acks")->items()[1].getString("msa1"), "AR");

  // An MLLP capture file works as input too.
  writeFile(tmp / "capture.mllp", hl7::mllpFrame(adtMessage("CAP1")) + hl7::mllpFrame(adtMessage("CAP2")));
  auto cap = agent.cli({"hl7", "send", (tmp / "capture.mllp").string(), "--to", to});
  EXPECT_EQ(cap.exit_code, 0) << cap.output;
  EXPECT_NE(cap.output.find("message 2 (frame 2): AA  MSA-2=CAP2"), std::string::npos) << cap.output;

  ASSERT_EQ(agent.stop(), 0);
  auto stored = storeOf(agent);
  EXPECT_EQ(stored.queued_total, 6u);  // CLI1-3, MIX1, CAP1-2 (the JSON run's MIX1 is a resend)

  // Nothing listening: a clear failure.
  auto down = agent.cli({"hl7", "send", (tmp / "good.hl7").string(), "--to", to, "--timeout", "2"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_NE(down.output.find("FAIL  connecting to " + to + ": Connection refused"), std::string::npos)
      << down.output;
}

TEST(MllpAgent, CliHl7SendUsageErrors) {
  TempDir tmp("psa-mllp-agent");
  writeFile(tmp / "m.hl7", adtMessage("U1"));
  const std::string pms = binary("pms-agent").string();
  auto no_to = runCommand({pms, "hl7", "send", (tmp / "m.hl7").string()});
  EXPECT_EQ(no_to.exit_code, 2);
  EXPECT_NE(no_to.output.find("--to HOST:PORT is required"), std::string::npos) << no_to.output;
  auto bad_to = runCommand({pms, "hl7", "send", (tmp / "m.hl7").string(), "--to", "localhost"});
  EXPECT_EQ(bad_to.exit_code, 2);
  EXPECT_NE(bad_to.output.find("--to: expected HOST:PORT or [IPV6]:PORT, got \"localhost\""),
            std::string::npos)
      << bad_to.output;
  auto ca_no_tls = runCommand(
      {pms, "hl7", "send", (tmp / "m.hl7").string(), "--to", "127.0.0.1:1", "--ca", "x.pem"});
  EXPECT_EQ(ca_no_tls.exit_code, 2);
  EXPECT_NE(ca_no_tls.output.find("--ca, --cert and --key need --tls"), std::string::npos);
  auto missing = runCommand({pms, "hl7", "send", (tmp / "nope.hl7").string(), "--to", "127.0.0.1:1"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("FAIL  cannot read " + (tmp / "nope.hl7").string() +
                                ": No such file or directory"),
            std::string::npos)
      << missing.output;
}

TEST(MllpAgent, CliHl7Inspect) {
  TempDir tmp("psa-mllp-agent");
  const std::string pms = binary("pms-agent").string();
  const std::string adt = std::string(PSA_TEST_DATA_DIR) + "/hl7/adt_a01_v231.hl7";
  auto text = runCommand({pms, "hl7", "inspect", adt});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_EQ(text.output.rfind("# message 1 of 1 (line 1, ADT^A01, version 2.3.1, 9 segments, "
                              "charset ASCII)\nMSH-1 = |\nMSH-2 = ^~\\&\nMSH-3 = REGADT\n",
                              0),
            0u)
      << text.output;
  EXPECT_NE(text.output.find("\nPID-5[1].1 = DOE\n"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("\n# valid\n"), std::string::npos);

  auto js = runCommand({pms, "hl7", "inspect", adt, "--json"});
  EXPECT_EQ(js.exit_code, 0);
  auto doc = json::parse(js.output);
  ASSERT_TRUE(doc) << js.output;
  EXPECT_TRUE(doc->getBool("valid"));
  const auto& m = doc->find("messages")->items().at(0);
  EXPECT_EQ(m.getString("type"), "ADT");
  EXPECT_EQ(m.getString("control_id"), "MSG00001");
  EXPECT_EQ(m.getInt("line"), 1);

  const std::string broken = std::string(PSA_TEST_DATA_DIR) + "/hl7/broken_missing_control_id.hl7";
  auto b = runCommand({pms, "hl7", "inspect", broken});
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.output.find("# INVALID HL7 101 (Required field missing) at MSH-10: message control "
                          "id missing"),
            std::string::npos)
      << b.output;

  writeFile(tmp / "empty.hl7", "\n\n");
  auto e = runCommand({pms, "hl7", "inspect", (tmp / "empty.hl7").string()});
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.output.find("FAIL  " + (tmp / "empty.hl7").string() +
                          ": no HL7 message found (expected MSH segments)"),
            std::string::npos)
      << e.output;
  writeFile(tmp / "orphan.hl7", "PID|1||X\r");
  auto o = runCommand({pms, "hl7", "inspect", (tmp / "orphan.hl7").string()});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.output.find("FAIL  " + (tmp / "orphan.hl7").string() + ": line 1:"),
            std::string::npos)
      << o.output;
}

}  // namespace
}  // namespace psa::test
