// The file-drop adapter on HL7 v2 batch files, X12 837/835 and opaque files, through the
// real `pms-agent run` and the real store: one record per message / transaction set / file,
// bad items dead-lettered next to stored neighbours, envelope errors failing the whole file.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "filedrop_harness.h"

namespace psa::test {
namespace {

std::string fixture(const std::string& name) {
  return readFile(std::string(PSA_TEST_DATA_DIR) + "/" + name);
}

// Three messages in an FHS/BHS envelope; the second has no MSH-10 (control id).
std::string batchWithOneBadMessage() {
  return "FHS|^~\\&|PMBATCH|GOODHEALTH|PSAGENT|PRACTICE0042|20240201000000||FILE0001\r\n"
         "BHS|^~\\&|PMBATCH|GOODHEALTH|PSAGENT|PRACTICE0042|20240201000000||BATCH0001\r\n"
         "MSH|^~\\&|REG|GOODHEALTH|PSAGENT|PRACTICE0042|20240201120000||ADT^A04|MSG0001|P|2.5.1\r\n"
         "EVN|A04|20240201120000\r\n"
         "PID|1||1001^^^MRN||DOE^JANE\r\n"
         "MSH|^~\\&|SCHED|GOODHEALTH|PSAGENT|PRACTICE0042|20240201120100||SIU^S12||P|2.5.1\r\n"
         "SCH|A1|A1\r\n"
         "PID|1||1002^^^MRN||ROE^RICHARD\r\n"
         "MSH|^~\\&|SCHED|GOODHEALTH|PSAGENT|PRACTICE0042|20240201120200||SIU^S14|MSG0003|P|2.5."
         "1\r\n"
         "SCH|A2|A2\r\n"
         "PID|1||1003^^^MRN||POE^EDGAR\r\n"
         "BTS|3\r\n"
         "FTS|1\r\n";
}

TEST(FileDropHl7, BatchWithOneBadMessageDeadLettersItAndStoresItsNeighbours) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(
          R"({"format":"hl7","include":["*.hl7"],"hl7":{"kind_map":{"SIU^S14":"other"}}})")}));
  const std::string batch = batchWithOneBadMessage();
  writeFile(env.inbox / "ADT_20240201_0001.hl7", batch);
  writeFile(env.inbox / "concat.hl7", fixture("hl7/batch_concatenated.hl7"));
  writeFile(env.inbox / "bad_count.hl7", fixture("hl7/batch_bad_count.hl7"));
  writeFile(env.inbox / "orphan.hl7", fixture("hl7/batch_orphan_segment.hl7"));
  writeFile(env.inbox / "notes.txt", "not included");
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "ADT_20240201_0001.hl7")) << agent.log();
  ASSERT_TRUE(waitArchived(env, "concat.hl7")) << agent.log();
  ASSERT_TRUE(waitInError(env, "bad_count.hl7")) << agent.log();
  ASSERT_TRUE(waitInError(env, "orphan.hl7")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  EXPECT_TRUE(fs::exists(env.inbox / "notes.txt"));  // not matched by include

  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 2u + 3u);
  std::vector<std::string> batch_payloads;
  for (const auto& r : s.records) {
    EXPECT_EQ(r.format, "hl7v2");
    if (r.payload.reveal().find("GOODHEALTH|PSAGENT|PRACTICE0042|202402011") != std::string::npos) {
      batch_payloads.push_back(r.payload.reveal());
    }
  }
  ASSERT_EQ(batch_payloads.size(), 2u);
  const size_t m1 = batch.find("MSH|^~\\&|REG");
  const size_t m2 = batch.find("MSH|^~\\&|SCHED");
  const size_t m3 = batch.find("MSH|^~\\&|SCHED", m2 + 1);
  // Payloads are the messages' bytes exactly as in the file.
  EXPECT_EQ(batch_payloads[0], batch.substr(m1, m2 - m1));
  EXPECT_EQ(batch_payloads[1], batch.substr(m3, batch.find("BTS|") - m3));
  auto kindOf = [&](const std::string& payload) {
    for (const auto& r : s.records) {
      if (r.payload.reveal() == payload) {
        return r.kind;
      }
    }
    return store::Kind::clinical;
  };
  EXPECT_EQ(kindOf(batch_payloads[0]), store::Kind::patient);  // ADT
  EXPECT_EQ(kindOf(batch_payloads[1]), store::Kind::other);    // kind_map override

  ASSERT_EQ(s.dead.size(), 1u);
  EXPECT_EQ(s.dead[0].payload, batch.substr(m2, m3 - m2));
  EXPECT_EQ(s.dead[0].info.format, "hl7v2");
  EXPECT_EQ(s.dead[0].info.kind, store::Kind::appointment);
  const std::string expect_prefix = "ADT_20240201_0001.hl7 message 2 (line 6, byte " +
                                    std::to_string(m2) +
                                    "): HL7 101 (Required field missing) at MSH-10";
  EXPECT_EQ(s.dead[0].info.reason.rfind(expect_prefix, 0), 0u) << s.dead[0].info.reason;

  // The error report names the bad message and its dead letter; the file itself is archived.
  const std::string report = readFile(env.error() / "ADT_20240201_0001.hl7.error.txt");
  EXPECT_NE(report.find("ingested 2 records; 1 dead-lettered"), std::string::npos) << report;
  EXPECT_NE(report.find(s.dead[0].info.reason + " -> dead letter " + s.dead[0].info.msg_id),
            std::string::npos)
      << report;

  EXPECT_NE(readFile(env.error() / "bad_count.hl7.error.txt")
                .find("error:     hl7_batch_count\n           batch 1 (line 1): BTS-1 declares 5 "
                      "messages, found 2\n"),
            std::string::npos);
  EXPECT_NE(
      readFile(env.error() / "orphan.hl7.error.txt").find("line 11: segment outside a message"),
      std::string::npos);
}

TEST(FileDropX12, ClaimsAndRemittancesOneRecordPerTransactionSetWithEnvelopeChecks) {
  DropEnv env;
  AgentProcess agent(env.state, env.config({env.adapter(R"({"format":"x12"})")}));
  writeFile(env.inbox / "claims.837", fixture("x12/837p_multi.x12"));
  writeFile(env.inbox / "remit.835", fixture("x12/835_remit.x12"));
  writeFile(env.inbox / "se_count.837", fixture("x12/se_count_mismatch.x12"));
  writeFile(env.inbox / "ge_count.837", fixture("x12/ge_count_mismatch.x12"));
  writeFile(env.inbox / "not_x12.837", fixture("x12/not_x12.x12"));
  ASSERT_TRUE(agent.start()) << agent.log();
  for (const char* f : {"claims.837", "remit.835", "se_count.837"}) {
    ASSERT_TRUE(waitArchived(env, f)) << f << "\n" << agent.log();
  }
  ASSERT_TRUE(waitInError(env, "ge_count.837")) << agent.log();
  ASSERT_TRUE(waitInError(env, "not_x12.837")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);

  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 3u + 2u + 2u);
  size_t n837 = 0, n835 = 0;
  for (const auto& r : s.records) {
    EXPECT_EQ(r.kind, store::Kind::billing);
    EXPECT_EQ(r.format, "x12");
    const std::string& p = r.payload.reveal();
    EXPECT_EQ(p.rfind("ISA*", 0), 0u);
    n837 += p.find("ST*837*") != std::string::npos ? 1 : 0;
    n835 += p.find("ST*835*") != std::string::npos ? 1 : 0;
    EXPECT_NE(p.find("GE*1*"), std::string::npos);  // re-enveloped with counts of 1
  }
  EXPECT_EQ(n837, 5u);
  EXPECT_EQ(n835, 2u);
  ASSERT_EQ(s.dead.size(), 1u);
  EXPECT_EQ(s.dead[0].info.reason,
            "se_count.837 transaction set 2: segment 53 (line 53, byte 1498): SE-01 is 28 but "
            "transaction set "
            "0002 (ST at segment 27) has 27 segments (ST..SE) (se_count_mismatch)");
  EXPECT_EQ(s.dead[0].info.format, "x12");
  EXPECT_NE(readFile(env.error() / "se_count.837.error.txt").find(s.dead[0].info.reason),
            std::string::npos);

  // Envelope errors fail the whole file before anything of it is stored.
  const std::string ge = readFile(env.error() / "ge_count.837.error.txt");
  EXPECT_NE(ge.find("nothing of it was ingested"), std::string::npos) << ge;
  EXPECT_NE(
      ge.find(
          "error:     ge_count_mismatch at line 54, byte 1510\n"
          "           segment 54 (line 54, byte 1510): GE-01 is 3 but functional group 101 (GS at "
          "segment 2) has 2 transaction sets\n"),
      std::string::npos)
      << ge;
  EXPECT_NE(readFile(env.error() / "not_x12.837.error.txt")
                .find("segment 1 (line 1, byte 0): the file does not start with an ISA segment"),
            std::string::npos);
}

TEST(FileDropOpaque, WholeFileIsOneBinaryRecordWithinTheSizeLimit) {
  DropEnv env;
  AgentProcess agent(
      env.state,
      env.config({env.adapter(
          R"({"format":"opaque","kind":"clinical","opaque":{"max_file_bytes":1024}})")}));
  std::string pdf = "%PDF-1.4\n";
  pdf += std::string("\0\x01\xff\r\n", 5);
  pdf += "binary tail";
  writeFile(env.inbox / "summary.pdf", pdf);
  writeFile(env.inbox / "big.pdf", std::string(2000, 'x'));
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitArchived(env, "summary.pdf")) << agent.log();
  ASSERT_TRUE(waitInError(env, "big.pdf")) << agent.log();
  ASSERT_EQ(agent.stop(), 0);
  Stored s = readStore(env.state);
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0].payload.reveal(), pdf);
  EXPECT_EQ(s.records[0].format, "binary");
  EXPECT_EQ(s.records[0].kind, store::Kind::clinical);
  EXPECT_NE(readFile(env.error() / "big.pdf.error.txt")
                .find("error:     file_too_large\n           file is 2000 bytes; "
                      "opaque.max_file_bytes is 1024\n"),
            std::string::npos);
}

}  // namespace
}  // namespace psa::test
