// libFuzzer target: chunked records (psa/cloudlink/chunks.h), both sides.
//  1. Hostile chunks: the input is a series of messages separated by "\0\0", each
//     "chunk\nchunks\nchunk-of\nsha256\npayload"; the header is read from those property values
//     as pms-cloud-sim reads them off the network, and fed to an assembler with small limits.
//     Invariants: never crash; a completed record matches its sha256; the assembler stays
//     within its limits (records open, bytes held).
//  2. Round trip: the input as a record's payload, split by planChunks/chunkProperties for a
//     packet limit taken from the input, fed back in an order (with resends) taken from the
//     input. Invariant: exactly one completion, byte-identical; no chunk's PUBLISH over the
//     limit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "psa/cloudlink/chunks.h"
#include "psa/cloudlink/envelope.h"

namespace cl = psa::cloudlink;
using Outcome = cl::ChunkAssembler::Added::Outcome;

namespace {

std::vector<std::string_view> split(std::string_view s, std::string_view sep, size_t max_parts) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_parts) {
    const size_t at = s.find(sep);
    if (at == std::string_view::npos) {
      break;
    }
    out.push_back(s.substr(0, at));
    s.remove_prefix(at + sep.size());
  }
  out.push_back(s);
  return out;
}

void hostile(std::string_view input) {
  cl::ChunkLimits limits;
  limits.max_record_bytes = 4096;
  limits.max_chunks = 64;
  limits.max_open_records = 8;
  limits.max_bytes_held = 16384;
  cl::ChunkAssembler assembler(limits);
  for (std::string_view message : split(input, std::string_view("\0\0", 2), 256)) {
    const auto f = split(message, "\n", 5);
    if (f.size() < 5) {
      continue;
    }
    const cl::UserProperties props = {{"chunk", std::string(f[0])},
                                      {"chunks", std::string(f[1])},
                                      {"chunk-of", std::string(f[2])}};
    auto header = cl::readChunkHeader(props, limits);
    if (!header || !header.value()) {
      continue;
    }
    const cl::ChunkHeader& h = **header;
    if (h.chunk < 1 || h.chunk > h.chunks || h.chunks > limits.max_chunks) {
      __builtin_trap();
    }
    auto added = assembler.add(h, f[3], f[4]);
    if (added.outcome == Outcome::complete && psa::sha256Hex(added.record) != f[3]) {
      __builtin_trap();
    }
    if (assembler.openRecords() > limits.max_open_records ||
        assembler.bytesHeld() > limits.max_bytes_held) {
      __builtin_trap();
    }
  }
}

void roundTrip(std::string_view input) {
  if (input.size() < 3) {
    return;
  }
  const size_t max_packet = 300 + static_cast<uint8_t>(input[0]) * 4;
  const uint8_t order_seed = static_cast<uint8_t>(input[1]);
  const std::string payload(input.substr(2));
  const std::string topic = "ps/t/a/up/clinical";
  const cl::UserProperties props = {{"msg-id", "01JFUZZ"}, {"sha256", psa::sha256Hex(payload)}};
  auto plan = cl::planChunks(max_packet, topic, props, "application/json", payload.size());
  if (!plan || !plan.value()) {
    return;
  }
  const cl::ChunkPlan& p = **plan;
  std::vector<size_t> order;
  for (size_t k = 1; k <= p.chunks; ++k) {
    order.push_back(k);
    if ((k + order_seed) % 3 == 0) {
      order.push_back(k);  // a resend
    }
  }
  std::rotate(order.begin(), order.begin() + static_cast<long>(order_seed % order.size()),
              order.end());
  cl::ChunkAssembler assembler;
  int completions = 0;
  for (size_t k : order) {
    const std::string piece = payload.substr((k - 1) * p.chunk_bytes, p.chunk_bytes);
    const cl::UserProperties chunk_props = cl::chunkProperties(props, k, p.chunks);
    if (cl::publishPacketSize(topic.size(), cl::propertyBytes(chunk_props, "application/json"),
                              piece.size()) > max_packet) {
      __builtin_trap();
    }
    auto header = cl::readChunkHeader(chunk_props);
    if (!header || !header.value()) {
      __builtin_trap();
    }
    auto added = assembler.add(**header, psa::sha256Hex(payload), piece);
    if (added.outcome == Outcome::invalid) {
      __builtin_trap();
    }
    if (added.outcome == Outcome::complete) {
      ++completions;
      if (added.record != payload) {
        __builtin_trap();
      }
    }
  }
  // Resends after completion start a new partial record (the receiver dedupes by chunk-of).
  if (completions < 1) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  hostile(input);
  roundTrip(input);
  return 0;
}
