// X12 reader streaming guarantees: any chunking gives the same transaction sets and errors,
// resuming from each checkpoint gives the remaining sets, and a file of many sets streams
// in bounded memory.
#include <gtest/gtest.h>

#include "file_parse_util.h"
#include "psa/adapters/file/x12.h"

namespace psa::adapters::file {
namespace {

using test::fixture;
using test::parseX12;
using test::X12Event;

const char* const kFiles[] = {
    "x12/837p_multi.x12",          "x12/835_remit.x12",
    "x12/837p_pipe_newline.x12",   "x12/837p_caret_crlf.x12",
    "x12/two_interchanges.x12",    "x12/se_count_mismatch.x12",
    "x12/se_control_mismatch.x12", "x12/ge_control_mismatch.x12",
    "x12/ge_count_mismatch.x12",   "x12/iea_control_mismatch.x12",
    "x12/iea_count_mismatch.x12",  "x12/missing_iea.x12",
    "x12/missing_se.x12",          "x12/unexpected_segment.x12",
    "x12/truncated_isa.x12",       "x12/invalid_isa.x12",
    "x12/not_x12.x12",
};

TEST(X12Streaming, EveryChunkSizeGivesTheSameEvents) {
  for (const char* file : kFiles) {
    SCOPED_TRACE(file);
    const std::string data = fixture(file);
    const auto whole = parseX12(data);
    ASSERT_FALSE(whole.empty());
    for (size_t chunk = 1; chunk <= data.size(); ++chunk) {
      ASSERT_EQ(parseX12(data, {}, chunk), whole) << "chunk size " << chunk;
    }
  }
}

TEST(X12Streaming, ResumingFromEachCheckpointGivesTheRemainingEvents) {
  for (const char* file : kFiles) {
    SCOPED_TRACE(file);
    const std::string data = fixture(file);
    const auto whole = parseX12(data);
    for (size_t i = 0; i < whole.size(); ++i) {
      if (whole[i].kind == X12Event::Kind::fatal) {
        continue;
      }
      auto ck = X12Checkpoint::deserialize(whole[i].checkpoint);
      ASSERT_TRUE(ck.ok());
      ASSERT_EQ(ck->offset, whole[i].end);
      ASSERT_EQ(ck->transactions, whole[i].number);
      const std::vector<X12Event> expected(whole.begin() + static_cast<long>(i) + 1,
                                           whole.end());
      for (size_t chunk : {size_t{0}, size_t{1}, size_t{13}}) {
        const auto resumed =
            parseX12(std::string_view(data).substr(ck->offset), {}, chunk, *ck);
        ASSERT_EQ(resumed, expected) << "after event " << i << ", chunk " << chunk;
      }
    }
  }
}

TEST(X12Streaming, ManyTransactionSetsStreamInBoundedMemory) {
  // One interchange, one group of 5000 small 837 sets, fed in 16 KiB chunks.
  const std::string isa =
      "ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*RECEIVER01     *240102*1200*^*"
      "00501*000000777*0*P*:~\n";
  std::string pending = isa + "GS*HC*S*R*20240102*1200*77*X*005010X222A1~\n";
  constexpr int kSets = 5000;
  constexpr size_t kChunk = 16 << 10;
  X12Options o;
  o.max_transaction_bytes = 64 << 10;
  auto created = X12Parser::create(o);
  ASSERT_TRUE(created.ok());
  X12Parser p = std::move(created).value();
  int produced = 0;
  bool trailer = false;
  int sets = 0;
  size_t max_buffered = 0;
  for (;;) {
    auto r = p.next();
    ASSERT_TRUE(r.ok()) << r.error().describe();
    if (*r == X12Parser::Step::end) {
      break;
    }
    if (*r == X12Parser::Step::transaction) {
      ASSERT_FALSE(p.transaction().error);
      ++sets;
      continue;
    }
    while (pending.size() < kChunk && produced < kSets) {
      const std::string ctl = std::to_string(10000 + produced++);
      pending += "ST*837*" + ctl + "*005010X222A1~\nBHT*0019*00*" + ctl +
                 "*20240102*1200*CH~\nCLM*PCN" + ctl +
                 "*125***11:B:1*Y*A*Y*Y~\nLX*1~\nSV1*HC:99213*125*UN*1***1~\nSE*6*" + ctl +
                 "~\n";
    }
    if (produced == kSets && !trailer) {
      pending += "GE*" + std::to_string(kSets) + "*77~\nIEA*1*000000777~\n";
      trailer = true;
    }
    if (pending.empty()) {
      p.finish();
      continue;
    }
    const size_t n = std::min(kChunk, pending.size());
    p.feed(std::string_view(pending).substr(0, n));
    pending.erase(0, n);
    max_buffered = std::max(max_buffered, p.bufferedBytes());
  }
  EXPECT_EQ(sets, kSets);
  EXPECT_EQ(p.interchangesClosed(), 1u);
  EXPECT_LE(max_buffered, 2 * kChunk + 1024);
}

}  // namespace
}  // namespace psa::adapters::file
