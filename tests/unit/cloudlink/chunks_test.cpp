// Chunked records, both sides of the contract: the plan keeps every chunk's PUBLISH within the
// broker's Maximum Packet Size (packet sizes computed exactly), the chunk properties carry the
// contract's names, and the assembler joins chunks in any order, ignores identical resends and
// refuses anything inconsistent, within its limits.
#include "psa/cloudlink/chunks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "psa/cloudlink/envelope.h"

namespace psa::cloudlink {
namespace {

using Outcome = ChunkAssembler::Added::Outcome;

UserProperties recordProps(const std::string& payload) {
  return {{"msg-id", "01JABCDEFGHJKMNPQRSTVWXYZ0"},
          {"source", "mllp-main"},
          {"vendor", "epic"},
          {"kind", "clinical"},
          {"format", "hl7v2"},
          {"received-at", "2026-12-07T10:00:00.000Z"},
          {"sha256", sha256Hex(payload)}};
}

const std::string kTopic = "ps/acme/practice-0042/up/clinical";
const std::string kType = "x-application/hl7-v2+er7";

TEST(Chunks, PacketSizeFollowsTheMqtt5Layout) {
  // 1 fixed header + 1 remaining length + 2+topic + 2 packet id + 1 property length + props +
  // payload.
  EXPECT_EQ(publishPacketSize(10, 0, 0), 1u + 1 + 12 + 2 + 1);
  EXPECT_EQ(publishPacketSize(10, 20, 90), 1u + 1 + 12 + 2 + 1 + 20 + 90);
  // Remaining length 128 needs two bytes.
  const size_t remaining = 2 + 10 + 2 + 1 + 0 + 113;
  ASSERT_EQ(remaining, 128u);
  EXPECT_EQ(publishPacketSize(10, 0, 113), 1u + 2 + remaining);
  EXPECT_EQ(propertyBytes({{"ab", "xyz"}}, "t"), (1u + 2 + 2 + 2 + 3) + (1 + 2 + 1));
}

TEST(Chunks, ARecordThatFitsIsNotChunked) {
  const std::string payload(1000, 'x');
  auto plan = planChunks(0, kTopic, recordProps(payload), kType, payload.size());
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan.value());
  plan = planChunks(4096, kTopic, recordProps(payload), kType, payload.size());
  ASSERT_TRUE(plan);
  EXPECT_FALSE(plan.value());
}

TEST(Chunks, EveryChunkFitsTheLimitAndTheChunksCoverThePayload) {
  for (size_t max_packet : {600u, 1000u, 2000u, 32768u}) {
    for (size_t size : {size_t{5000}, size_t{65536}, size_t{5} << 20}) {
      if (size < max_packet) {
        continue;
      }
      const std::string payload(size, 'p');
      const UserProperties props = recordProps(payload);
      auto plan = planChunks(max_packet, kTopic, props, kType, payload.size());
      ASSERT_TRUE(plan) << plan.error().message;
      ASSERT_TRUE(plan.value()) << max_packet << " " << size;
      const ChunkPlan& p = **plan;
      EXPECT_EQ(p.chunks, (size + p.chunk_bytes - 1) / p.chunk_bytes);
      size_t covered = 0;
      size_t largest = 0;
      for (size_t k = 1; k <= p.chunks; ++k) {
        const size_t bytes = std::min(p.chunk_bytes, size - covered);
        covered += bytes;
        const size_t packet = publishPacketSize(
            kTopic.size(), propertyBytes(chunkProperties(props, k, p.chunks), kType), bytes);
        EXPECT_LE(packet, max_packet) << "chunk " << k << " of " << p.chunks;
        largest = std::max(largest, packet);
      }
      EXPECT_EQ(covered, size);
      // Not wasteful: the fullest chunk comes within a few bytes of the limit.
      EXPECT_GE(largest + 16, max_packet) << max_packet << " " << size;
    }
  }
}

TEST(Chunks, NoRoomForTheMetadataIsAnError) {
  const std::string payload(5000, 'x');
  auto plan = planChunks(200, kTopic, recordProps(payload), kType, payload.size());
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().message.find("maximum packet size (200 bytes)"), std::string::npos);
}

TEST(Chunks, ChunkPropertiesFollowTheContract) {
  const UserProperties props = recordProps("x");
  const UserProperties c = chunkProperties(props, 3, 12);
  ASSERT_EQ(c.size(), props.size() + 3);
  EXPECT_EQ(c[0], (std::pair<std::string, std::string>{"msg-id", "01JABCDEFGHJKMNPQRSTVWXYZ0.3"}));
  EXPECT_EQ(c[6], props[6]);  // sha256: the whole record's
  EXPECT_EQ(c[7], (std::pair<std::string, std::string>{"chunk", "3"}));
  EXPECT_EQ(c[8], (std::pair<std::string, std::string>{"chunks", "12"}));
  EXPECT_EQ(c[9], (std::pair<std::string, std::string>{"chunk-of", "01JABCDEFGHJKMNPQRSTVWXYZ0"}));
  auto h = readChunkHeader(c);
  ASSERT_TRUE(h);
  ASSERT_TRUE(h.value());
  EXPECT_EQ((*h)->chunk, 3u);
  EXPECT_EQ((*h)->chunks, 12u);
  EXPECT_EQ((*h)->chunk_of, "01JABCDEFGHJKMNPQRSTVWXYZ0");
}

TEST(Chunks, HeaderReadingIsStrict) {
  auto header = [](UserProperties p) { return readChunkHeader(p); };
  auto none = header({{"msg-id", "a"}});
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value());
  for (const UserProperties& bad :
       std::vector<UserProperties>{{{"chunk", "1"}, {"chunks", "2"}},
                                   {{"chunk", "0"}, {"chunks", "2"}, {"chunk-of", "a"}},
                                   {{"chunk", "3"}, {"chunks", "2"}, {"chunk-of", "a"}},
                                   {{"chunk", "1"}, {"chunks", "1"}, {"chunk-of", "a"}},
                                   {{"chunk", "01"}, {"chunks", "2"}, {"chunk-of", "a"}},
                                   {{"chunk", "+1"}, {"chunks", "2"}, {"chunk-of", "a"}},
                                   {{"chunk", "1"}, {"chunks", "999999999"}, {"chunk-of", "a"}},
                                   {{"chunk", "1"}, {"chunks", "2"}, {"chunk-of", ""}}}) {
    EXPECT_FALSE(header(bad)) << bad[0].second;
  }
}

struct Pieces {
  std::string payload;
  std::string sha;
  std::vector<std::string> parts;
  ChunkHeader header(size_t k) const { return ChunkHeader{"rec-1", k, parts.size()}; }
};

Pieces split(size_t size, size_t piece) {
  Pieces p;
  std::mt19937 rng(7);
  for (size_t i = 0; i < size; ++i) {
    p.payload.push_back(static_cast<char>(rng()));
  }
  p.sha = sha256Hex(p.payload);
  for (size_t at = 0; at < size; at += piece) {
    p.parts.push_back(p.payload.substr(at, piece));
  }
  return p;
}

TEST(ChunkAssembler, JoinsChunksInAnyOrderAndIgnoresIdenticalResends) {
  const Pieces p = split(10000, 999);
  std::vector<size_t> order(p.parts.size());
  for (size_t i = 0; i < order.size(); ++i) {
    order[i] = i + 1;
  }
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  ChunkAssembler a;
  for (size_t i = 0; i + 1 < order.size(); ++i) {
    EXPECT_EQ(a.add(p.header(order[i]), p.sha, p.parts[order[i] - 1]).outcome, Outcome::incomplete);
    EXPECT_EQ(a.add(p.header(order[i]), p.sha, p.parts[order[i] - 1]).outcome, Outcome::duplicate);
  }
  EXPECT_EQ(a.openRecords(), 1u);
  auto done = a.add(p.header(order.back()), p.sha, p.parts[order.back() - 1]);
  ASSERT_EQ(done.outcome, Outcome::complete) << done.error;
  EXPECT_EQ(done.record, p.payload);
  EXPECT_EQ(a.openRecords(), 0u);
  EXPECT_EQ(a.bytesHeld(), 0u);
}

TEST(ChunkAssembler, RefusesWhatDoesNotAddUp) {
  const Pieces p = split(3000, 1000);
  {
    ChunkAssembler a;  // a corrupted piece: the whole record fails its sha256
    a.add(p.header(1), p.sha, p.parts[0]);
    a.add(p.header(2), p.sha, "tampered");
    auto r = a.add(p.header(3), p.sha, p.parts[2]);
    EXPECT_EQ(r.outcome, Outcome::invalid);
    EXPECT_NE(r.error.find("sha256"), std::string::npos);
    EXPECT_EQ(a.openRecords(), 0u);
  }
  {
    ChunkAssembler a;  // the same chunk twice with different bytes
    a.add(p.header(1), p.sha, p.parts[0]);
    EXPECT_EQ(a.add(p.header(1), p.sha, "other").outcome, Outcome::invalid);
    EXPECT_EQ(a.bytesHeld(), 0u);
  }
  {
    ChunkAssembler a;  // chunks disagreeing on the total
    a.add(p.header(1), p.sha, p.parts[0]);
    EXPECT_EQ(a.add(ChunkHeader{"rec-1", 2, 4}, p.sha, p.parts[1]).outcome, Outcome::invalid);
  }
  {
    ChunkLimits limits;
    limits.max_record_bytes = 1500;
    ChunkAssembler a(limits);
    a.add(p.header(1), p.sha, p.parts[0]);
    auto r = a.add(p.header(2), p.sha, p.parts[1]);
    EXPECT_EQ(r.outcome, Outcome::invalid);
    EXPECT_EQ(a.bytesHeld(), 0u);
  }
  {
    ChunkLimits limits;
    limits.max_open_records = 1;
    ChunkAssembler a(limits);
    a.add(p.header(1), p.sha, p.parts[0]);
    EXPECT_EQ(a.add(ChunkHeader{"rec-2", 1, 3}, p.sha, p.parts[0]).outcome, Outcome::invalid);
    EXPECT_EQ(a.openRecords(), 1u);
  }
}

}  // namespace
}  // namespace psa::cloudlink
