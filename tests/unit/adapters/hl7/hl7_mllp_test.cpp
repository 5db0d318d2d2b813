// MLLP framing: incremental decoding, fault handling, chunking invariance, encoder.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "psa/adapters/hl7/mllp.h"

namespace hl7 = psa::adapters::hl7;
using hl7::MllpDecoder;
using hl7::MllpEvent;
using hl7::MllpFault;

namespace {

// A flattened event for comparisons.
struct Ev {
  MllpEvent::Type type;
  MllpFault fault;
  std::string data;
  size_t bytes;
  uint64_t offset;
  bool operator==(const Ev&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Ev& e) {
  return os << (e.type == MllpEvent::Type::frame ? "frame" : "fault") << "/"
            << hl7::mllpFaultName(e.fault) << " bytes=" << e.bytes << " offset=" << e.offset
            << " data=" << e.data.size() << "B";
}

Ev flat(const MllpEvent& e) { return Ev{e.type, e.fault, std::string(e.data), e.bytes, e.offset}; }

Ev frame(std::string data, uint64_t offset, MllpFault fault = MllpFault::none) {
  size_t n = data.size();
  return Ev{MllpEvent::Type::frame, fault, std::move(data), n, offset};
}

Ev fault(MllpFault f, size_t bytes, uint64_t offset, std::string data = {}) {
  return Ev{MllpEvent::Type::fault, f, std::move(data), bytes, offset};
}

// Feeds `stream` in chunks of the given sizes (cycled), then finishes.
std::vector<Ev> decode(std::string_view stream, std::vector<size_t> sizes = {1u << 30},
                       size_t max_frame = MllpDecoder::kDefaultMaxFrame) {
  MllpDecoder dec(max_frame);
  std::vector<Ev> out;
  size_t pos = 0;
  size_t k = 0;
  while (pos < stream.size()) {
    size_t n = std::min(sizes[k++ % sizes.size()], stream.size() - pos);
    // Each chunk lives in its own buffer that dies after draining: views must not outlive it.
    std::string chunk(stream.substr(pos, n));
    EXPECT_TRUE(dec.feed(chunk).ok());
    while (auto e = dec.next()) {
      out.push_back(flat(*e));
    }
    EXPECT_TRUE(dec.drained());
    EXPECT_LE(dec.buffered(), max_frame);
    pos += n;
  }
  if (auto e = dec.finish()) {
    out.push_back(flat(*e));
  }
  return out;
}

const std::string kMsg1 = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1\r";
const std::string kMsg2 = "MSH|^~\\&|A|B|C|D|2||ADT^A08|2|P|2.5\rPID|2\r";

}  // namespace

TEST(Hl7Mllp, FrameEncoder) {
  EXPECT_EQ(hl7::mllpFrame("abc"), std::string("\x0b"
                                               "abc\x1c\r"));
  std::string out = "x";
  hl7::mllpFrameTo("", out);
  EXPECT_EQ(out, std::string("x\x0b\x1c\r"));
}

TEST(Hl7Mllp, TwoFramesOneChunkAreZeroCopy) {
  std::string stream = hl7::mllpFrame(kMsg1) + hl7::mllpFrame(kMsg2);
  MllpDecoder dec;
  ASSERT_TRUE(dec.feed(stream).ok());
  auto e1 = dec.next();
  ASSERT_TRUE(e1);
  EXPECT_EQ(e1->type, MllpEvent::Type::frame);
  EXPECT_EQ(e1->data, kMsg1);
  EXPECT_EQ(e1->data.data(), stream.data() + 1);  // a view into the chunk
  EXPECT_EQ(e1->offset, 0u);
  auto e2 = dec.next();
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->data, kMsg2);
  EXPECT_EQ(e2->offset, kMsg1.size() + 3);
  EXPECT_FALSE(dec.next());
  EXPECT_FALSE(dec.finish());
  EXPECT_EQ(dec.stats().frames, 2u);
  EXPECT_EQ(dec.stats().faults, 0u);
}

TEST(Hl7Mllp, SplitAcrossChunksAndOneByteChunks) {
  std::string stream = hl7::mllpFrame(kMsg1) + "\r\n" + hl7::mllpFrame(kMsg2);
  std::vector<Ev> want = {frame(kMsg1, 0), frame(kMsg2, kMsg1.size() + 5)};
  EXPECT_EQ(decode(stream), want);
  EXPECT_EQ(decode(stream, {1}), want);
  EXPECT_EQ(decode(stream, {2, 3, 5, 7}), want);
  EXPECT_EQ(decode(stream, {kMsg1.size() + 1}), want);  // split right before 0x1C
  EXPECT_EQ(decode(stream, {kMsg1.size() + 2}), want);  // split between 0x1C and CR
}

TEST(Hl7Mllp, FeedRequiresDrainedChunk) {
  std::string stream = hl7::mllpFrame(kMsg1) + hl7::mllpFrame(kMsg2);
  MllpDecoder dec;
  ASSERT_TRUE(dec.feed(stream).ok());
  ASSERT_TRUE(dec.next());
  auto st = dec.feed("more");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(psa::Errc::invalid_argument));
  EXPECT_EQ(st.error().message, "MLLP decoder: previous chunk not drained");
  auto e2 = dec.next();  // nothing was lost
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->data, kMsg2);
}

TEST(Hl7Mllp, JunkBeforeStart) {
  std::string stream = "GET / HTTP/1.1\r\n" + hl7::mllpFrame(kMsg1) + "xy";
  std::vector<Ev> want = {fault(MllpFault::junk_before_start, 12, 0), frame(kMsg1, 16),
                          fault(MllpFault::junk_before_start, 2, 16 + kMsg1.size() + 3)};
  EXPECT_EQ(decode(stream), want);
  EXPECT_EQ(decode(stream, {1}), want);
  MllpDecoder dec;
  ASSERT_TRUE(dec.feed("abc").ok());
  EXPECT_FALSE(dec.next());
  EXPECT_EQ(dec.pendingJunk(), 3u);
}

TEST(Hl7Mllp, BlankBytesBetweenFramesAreNotJunk) {
  std::string stream = "\r\n \t" + hl7::mllpFrame(kMsg1) + "\n\n";
  EXPECT_EQ(decode(stream), (std::vector<Ev>{frame(kMsg1, 4)}));
}

TEST(Hl7Mllp, StartBlockInsideFrame) {
  std::string stream = "\x0bMSH|partial" + hl7::mllpFrame(kMsg1);
  std::vector<Ev> want = {fault(MllpFault::start_in_frame, 11, 12), frame(kMsg1, 12)};
  EXPECT_EQ(decode(stream), want);
  EXPECT_EQ(decode(stream, {1}), want);
  EXPECT_EQ(decode(stream, {4}), want);
}

TEST(Hl7Mllp, MissingCrAfterEndBlock) {
  // 0x1C followed by the next start block: deliver, flag, go on.
  std::string stream = "\x0b" + kMsg1 + "\x1c" + hl7::mllpFrame(kMsg2);
  std::vector<Ev> want = {frame(kMsg1, 0, MllpFault::missing_end_cr),
                          frame(kMsg2, kMsg1.size() + 2)};
  EXPECT_EQ(decode(stream), want);
  EXPECT_EQ(decode(stream, {1}), want);
  // 0x1C followed by LF: delivered, the LF is a blank byte.
  EXPECT_EQ(decode("\x0b" + kMsg1 + "\x1c\n"),
            (std::vector<Ev>{frame(kMsg1, 0, MllpFault::missing_end_cr)}));
  // 0x1C followed by other bytes: delivered, the rest is junk.
  EXPECT_EQ(decode("\x0b" + kMsg1 + "\x1cZZ"),
            (std::vector<Ev>{frame(kMsg1, 0, MllpFault::missing_end_cr),
                             fault(MllpFault::junk_before_start, 2, kMsg1.size() + 2)}));
  // 0x1C at end of stream: delivered by finish().
  for (std::vector<size_t> sizes : {std::vector<size_t>{1u << 30}, std::vector<size_t>{1}}) {
    EXPECT_EQ(decode("\x0b" + kMsg1 + "\x1c", sizes),
              (std::vector<Ev>{frame(kMsg1, 0, MllpFault::missing_end_cr)}));
  }
}

TEST(Hl7Mllp, TruncatedAtEndOfStream) {
  std::string stream = hl7::mllpFrame(kMsg1) + "\x0bMSH|half";
  std::vector<Ev> want = {frame(kMsg1, 0), fault(MllpFault::truncated, 8, kMsg1.size() + 3)};
  EXPECT_EQ(decode(stream), want);
  EXPECT_EQ(decode(stream, {3}), want);
}

TEST(Hl7Mllp, OversizeFrameIsDiscardedUntilNextFrame) {
  std::string big = "MSH|^~\\&|S|F|R|RF|1||ADT^A01|BIG1|P|2.5\r" + std::string(100, 'x');
  std::string stream = hl7::mllpFrame(big) + hl7::mllpFrame(kMsg1);
  const size_t max = 64;
  // The fault comes as soon as the frame passes the limit, with its head.
  for (std::vector<size_t> sizes :
       {std::vector<size_t>{1u << 30}, std::vector<size_t>{1}, std::vector<size_t>{10, 50}}) {
    auto got = decode(stream, sizes, max);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].type, MllpEvent::Type::fault);
    EXPECT_EQ(got[0].fault, MllpFault::oversize);
    EXPECT_EQ(got[0].offset, 0u);
    EXPECT_EQ(got[0].bytes, max);
    EXPECT_EQ(got[0].data, big.substr(0, max));  // the head: enough to read MSH-10
    EXPECT_EQ(got[1], frame(kMsg1, big.size() + 3));
  }
  // A start block ends the discarding too (sender gave up and resent).
  std::string restart = "\x0b" + big + hl7::mllpFrame(kMsg1);
  auto got = decode(restart, {1u << 30}, max);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].fault, MllpFault::oversize);
  EXPECT_EQ(got[1], frame(kMsg1, big.size() + 1));
}

TEST(Hl7Mllp, OversizeHeadIsBounded) {
  std::string big(100000, 'y');
  auto got = decode(hl7::mllpFrame(big), {1u << 30}, 50000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].fault, MllpFault::oversize);
  EXPECT_EQ(got[0].data.size(), MllpDecoder::kOversizeHead);
  // Frames up to exactly the limit pass.
  auto ok = decode(hl7::mllpFrame(std::string(50000, 'z')), {7000}, 50000);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].type, MllpEvent::Type::frame);
  EXPECT_EQ(ok[0].bytes, 50000u);
}

TEST(Hl7Mllp, EmptyFrame) {
  EXPECT_EQ(decode(std::string("\x0b\x1c\r")), (std::vector<Ev>{frame("", 0)}));
}

TEST(Hl7Mllp, FinishResetsForANewStream) {
  MllpDecoder dec;
  std::string a = "\x0bpartial";
  ASSERT_TRUE(dec.feed(a).ok());
  EXPECT_FALSE(dec.next());
  auto t = dec.finish();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->fault, MllpFault::truncated);
  std::string b = hl7::mllpFrame(kMsg1);
  ASSERT_TRUE(dec.feed(b).ok());
  auto f = dec.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->data, kMsg1);
  EXPECT_EQ(f->offset, 0u);  // offsets restart
  EXPECT_EQ(dec.stats().frames, 1u);
  EXPECT_EQ(dec.stats().faults, 1u);
  EXPECT_EQ(dec.stats().discarded_bytes, 7u);
}

TEST(Hl7Mllp, FinishOnAnUndrainedChunkDiscardsTheRest) {
  std::string stream = hl7::mllpFrame(kMsg1) + "\x0bpart";
  MllpDecoder dec;
  ASSERT_TRUE(dec.feed(stream).ok());
  auto f = dec.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->data, kMsg1);
  EXPECT_FALSE(dec.finish());  // "\x0bpart" was never read: discarded, no event
  EXPECT_EQ(dec.stats().discarded_bytes, 5u);
  // Mid-frame: the bytes read so far make the truncated frame, the unread rest is discarded.
  MllpDecoder mid;
  std::string two =
      "\x0b"
      "abc" +
      hl7::mllpFrame("x");
  ASSERT_TRUE(mid.feed(two).ok());
  auto e = mid.next();  // the start block inside the frame
  ASSERT_TRUE(e);
  EXPECT_EQ(e->fault, MllpFault::start_in_frame);
  auto t = mid.finish();  // "x\x1c\r" unread
  ASSERT_TRUE(t);
  EXPECT_EQ(t->fault, MllpFault::truncated);
  EXPECT_EQ(t->bytes, 0u);
  EXPECT_EQ(mid.stats().discarded_bytes, 3u + 3u);
}

TEST(Hl7Mllp, ChunkingNeverChangesTheResult) {
  // A mixed stream with every fault kind; random chunkings must all decode the same.
  std::string big = std::string(300, 'b');
  std::string stream = "junk" + hl7::mllpFrame(kMsg1) + "\x0bpartial" + hl7::mllpFrame(kMsg2) +
                       "\x0b" + kMsg1 + "\x1c" + hl7::mllpFrame(big) + "\r\n" + hl7::mllpFrame("") +
                       "zz\x1c\r" + hl7::mllpFrame(kMsg2) + "\x0btail";
  auto want = decode(stream, {1u << 30}, 200);
  ASSERT_EQ(want.size(), 10u);
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> sizes;
    for (int k = 0; k < 8; ++k) {
      sizes.push_back(1 + rng() % 40);
    }
    ASSERT_EQ(decode(stream, sizes, 200), want) << "round " << round;
  }
}

TEST(Hl7Mllp, ManyStartBlocksAreLinear) {
  // 200k start blocks before one end block: each is a fault, the decoder does not rescan.
  std::string stream(200000, '\x0b');
  stream += "x\x1c\r";
  MllpDecoder dec;
  ASSERT_TRUE(dec.feed(stream).ok());
  size_t faults = 0;
  size_t frames = 0;
  while (auto e = dec.next()) {
    (e->type == MllpEvent::Type::fault ? faults : frames) += 1;
  }
  EXPECT_EQ(faults, 199999u);
  EXPECT_EQ(frames, 1u);
}
