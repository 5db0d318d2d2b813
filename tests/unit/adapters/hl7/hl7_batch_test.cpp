// Splitting files into messages: batch envelopes, blank-line separated, concatenated.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "hl7_samples.h"
#include "psa/adapters/hl7/batch.h"
#include "psa/adapters/hl7/message.h"
#include "test_support.h"

namespace hl7 = psa::adapters::hl7;
using psa::Errc;

namespace {

const std::string& corpus(const std::string& name) { return psa::test::hl7Corpus(name); }

// Control ids of the messages of a split file (parsing each one).
std::vector<std::string> controlIds(const hl7::Hl7File& file) {
  std::vector<std::string> out;
  for (const auto& m : file.messages) {
    hl7::Message msg;
    EXPECT_TRUE(msg.parse(m.text).ok());
    out.emplace_back(msg.controlId());
  }
  return out;
}

using Ids = std::vector<std::string>;

}  // namespace

TEST(Hl7Batch, FileAndBatchEnvelope) {
  std::string text = corpus("batch_fhs_bhs.hl7");
  auto r = hl7::splitMessages(text);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const hl7::Hl7File& f = *r;
  EXPECT_EQ(controlIds(f), (Ids{"MSG00001", "MSG00010", "MSG00030"}));
  EXPECT_EQ(f.file_header.substr(0, 4), "FHS|");
  EXPECT_EQ(f.file_trailer, "FTS|1");
  EXPECT_EQ(f.declared_batch_count, 1u);
  ASSERT_EQ(f.batches.size(), 1u);
  EXPECT_EQ(f.batches[0].header.substr(0, 4), "BHS|");
  EXPECT_EQ(f.batches[0].trailer, "BTS|3");
  EXPECT_EQ(f.batches[0].declared_count, 3u);
  EXPECT_EQ(f.batches[0].first_message, 0u);
  EXPECT_EQ(f.batches[0].message_count, 3u);
  EXPECT_EQ(f.batches[0].line, 2u);
  EXPECT_TRUE(f.checkCounts().ok());
  // Messages are exact byte ranges of the file, terminator of the last segment included.
  EXPECT_EQ(f.messages[0].line, 3u);
  EXPECT_EQ(text.substr(f.messages[0].offset, f.messages[0].text.size()), f.messages[0].text);
  EXPECT_EQ(f.messages[0].text.back(), '\r');
  EXPECT_EQ(f.messages[1].text.substr(0, 4), "MSH|");
  // The header segments parse like messages (they carry the delimiters).
  hl7::Message header;
  ASSERT_TRUE(header.parse(f.file_header).ok());
  EXPECT_EQ(header.get("FHS-3").raw, "PMBATCH");
  EXPECT_EQ(header.get("FHS-9").raw, "FILE0001");
}

TEST(Hl7Batch, MultipleBatchesCrlf) {
  auto r = hl7::splitMessages(corpus("batch_multi.hl7"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(controlIds(*r), (Ids{"MSG00001", "MSG00010", "MSG00030"}));
  ASSERT_EQ(r->batches.size(), 2u);
  EXPECT_EQ(r->batches[0].message_count, 2u);
  EXPECT_EQ(r->batches[0].declared_count, 2u);
  EXPECT_EQ(r->batches[1].first_message, 2u);
  EXPECT_EQ(r->batches[1].message_count, 1u);
  EXPECT_EQ(r->batches[1].declared_count, 1u);  // "BTS|1|end of batch"
  EXPECT_EQ(r->declared_batch_count, 2u);
  EXPECT_TRUE(r->checkCounts().ok());
  EXPECT_EQ(r->messages[0].text.substr(r->messages[0].text.size() - 2), "\r\n");
}

TEST(Hl7Batch, CountMismatch) {
  auto r = hl7::splitMessages(corpus("batch_bad_count.hl7"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->messages.size(), 2u);
  auto st = r->checkCounts();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::invalid_input));
  EXPECT_EQ(st.error().message, "batch 1 (line 1): BTS-1 declares 5 messages, found 2");

  auto fts = hl7::splitMessages("MSH|^~\\&|A\rMSH|^~\\&|B\rFTS|3\r");
  ASSERT_TRUE(fts.ok());
  EXPECT_TRUE(fts->batches.empty());
  ASSERT_FALSE(fts->checkCounts().ok());
  EXPECT_EQ(fts->checkCounts().error().message, "FTS-1 declares 3 batches, found 1");
}

TEST(Hl7Batch, BlankLineSeparated) {
  auto r = hl7::splitMessages(corpus("batch_blank_lines.hl7"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(controlIds(*r), (Ids{"MSG00001", "MSG00010", "MSG00006"}));
  EXPECT_TRUE(r->batches.empty());
  EXPECT_TRUE(r->checkCounts().ok());
}

TEST(Hl7Batch, Concatenated) {
  auto r = hl7::splitMessages(corpus("batch_concatenated.hl7"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(controlIds(*r), (Ids{"MSG00001", "MSG00010", "MSG00030"}));
}

TEST(Hl7Batch, SingleMessageFilesAndBom) {
  auto r = hl7::splitMessages(corpus("vxu_v04_v251_crlf.hl7"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->messages.size(), 1u);
  auto bom = hl7::splitMessages("\xEF\xBB\xBFMSH|^~\\&|A\nPID|1\n\n\n");
  ASSERT_TRUE(bom.ok());
  ASSERT_EQ(bom->messages.size(), 1u);
  EXPECT_EQ(bom->messages[0].text, "MSH|^~\\&|A\nPID|1\n");
  EXPECT_EQ(bom->messages[0].offset, 3u);
  auto empty = hl7::splitMessages("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->messages.empty());
}

TEST(Hl7Batch, Errors) {
  struct Bad {
    std::string text;
    std::string error;
  };
  for (const Bad& b : {
           Bad{corpus("batch_orphan_segment.hl7"), "line 11: segment outside a message"},
           Bad{"PID|1\r", "line 1: segment outside a message"},
           Bad{"MSH|^~\\&|A\rFHS|^~\\&\r", "line 2: FHS after the start of the file"},
           Bad{"MSH|^~\\&|A\rBTS|three\r", "line 2: BTS-1 is not a number"},
           Bad{"MSH|^~\\&|A\rFTS|-1\r", "line 2: FTS-1 is not a number"},
           Bad{"MSH|^~\\&|A\rFTS|1\rMSH|^~\\&|B\r", "line 3: data after FTS"},
           Bad{"MSH|^~\\&|A\r\rPV1|1\r", "line 3: segment outside a message"},
       }) {
    auto r = hl7::splitMessages(b.text);
    ASSERT_FALSE(r.ok()) << b.error;
    EXPECT_TRUE(r.error().is(Errc::invalid_input));
    EXPECT_EQ(r.error().message, b.error);
  }
}

TEST(Hl7Batch, ImplicitBatchesAndTolerance) {
  // BTS without BHS closes the messages so far; BHS without BTS is closed by the next BHS.
  auto r = hl7::splitMessages(
      "MSH|^~\\&|A\rBTS|1\rBHS|^~\\&|X\rMSH|^~\\&|B\rBHS|^~\\&|Y\rMSH|^~\\&|C\rBTS|\r");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->batches.size(), 3u);
  EXPECT_EQ(r->batches[0].header, "");
  EXPECT_EQ(r->batches[0].message_count, 1u);
  EXPECT_EQ(r->batches[1].header, "BHS|^~\\&|X");
  EXPECT_EQ(r->batches[1].trailer, "");
  EXPECT_EQ(r->batches[1].message_count, 1u);
  EXPECT_EQ(r->batches[2].message_count, 1u);
  EXPECT_FALSE(r->batches[2].declared_count.has_value());  // empty BTS-1
  EXPECT_TRUE(r->checkCounts().ok());
  // "MSHX" is not an MSH segment; segment ids are followed by a separator.
  EXPECT_FALSE(hl7::splitMessages("MSHX|a\r").ok());
}

TEST(Hl7Batch, Limits) {
  hl7::SplitLimits limits;
  limits.max_messages = 2;
  auto r = hl7::splitMessages(corpus("batch_concatenated.hl7"), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::limit));
  EXPECT_EQ(r.error().message, "line 20: more than 2 messages");
  limits = {};
  limits.max_file_bytes = 10;
  r = hl7::splitMessages(corpus("batch_concatenated.hl7"), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::limit));
  limits = {};
  limits.max_batches = 1;
  r = hl7::splitMessages(corpus("batch_multi.hl7"), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "line 34: more than 1 batches");
}
