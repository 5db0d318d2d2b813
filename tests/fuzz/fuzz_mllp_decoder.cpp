// libFuzzer target: the MLLP decoder on arbitrary bytes with arbitrary chunking.
// Invariants: the events never depend on how the stream is chunked; buffered data never
// exceeds the frame limit; frames never contain framing bytes; counters add up.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/hl7/mllp.h"

namespace hl7 = psa::adapters::hl7;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

struct Ev {
  hl7::MllpEvent::Type type;
  hl7::MllpFault fault;
  std::string data;
  size_t bytes;
  uint64_t offset;
  bool operator==(const Ev&) const = default;
};

std::vector<Ev> decode(std::string_view stream, const std::vector<size_t>& sizes, size_t max_frame,
                       hl7::MllpStats* stats) {
  hl7::MllpDecoder dec(max_frame);
  std::vector<Ev> out;
  size_t pos = 0;
  size_t k = 0;
  while (pos < stream.size()) {
    size_t n = std::min(sizes[k++ % sizes.size()], stream.size() - pos);
    std::string chunk(stream.substr(pos, n));  // dies after draining: views must not outlive it
    check(dec.feed(chunk).ok());
    while (auto e = dec.next()) {
      if (e->type == hl7::MllpEvent::Type::frame) {
        check(e->data.find(hl7::kMllpStart) == std::string_view::npos);
        check(e->data.find(hl7::kMllpEnd) == std::string_view::npos);
        check(e->data.size() <= max_frame);
      }
      out.push_back(Ev{e->type, e->fault, std::string(e->data), e->bytes, e->offset});
    }
    check(dec.drained());
    check(dec.buffered() <= max_frame);
    check(dec.feed(std::string_view()).ok());  // drained: an empty feed is fine
    pos += n;
  }
  if (auto e = dec.finish()) {
    out.push_back(Ev{e->type, e->fault, std::string(e->data), e->bytes, e->offset});
  }
  if (stats != nullptr) {
    *stats = dec.stats();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) {
    return 0;
  }
  // data[0]: frame limit; data[1..2]: chunking seed; the rest is the stream.
  const size_t max_frame = 1 + static_cast<size_t>(data[0]) * 4;
  uint32_t seed = static_cast<uint32_t>(data[1]) << 8 | data[2];
  const std::string_view stream(reinterpret_cast<const char*>(data + 3), size - 3);

  hl7::MllpStats whole_stats;
  const std::vector<Ev> whole = decode(stream, {stream.size() + 1}, max_frame, &whole_stats);
  std::vector<size_t> sizes;
  for (int k = 0; k < 16; ++k) {
    seed = seed * 1103515245u + 12345u;
    sizes.push_back(1 + (seed >> 16) % 97);
  }
  hl7::MllpStats chunked_stats;
  check(decode(stream, sizes, max_frame, &chunked_stats) == whole);
  check(decode(stream, {1}, max_frame, nullptr) == whole);
  check(chunked_stats.frames == whole_stats.frames);
  check(chunked_stats.faults == whole_stats.faults);
  check(chunked_stats.junk_bytes == whole_stats.junk_bytes);
  check(chunked_stats.discarded_bytes == whole_stats.discarded_bytes);
  // Frames and faults are counted as they are reported.
  uint64_t frames = 0;
  uint64_t faults = 0;
  for (const Ev& e : whole) {
    frames += e.type == hl7::MllpEvent::Type::frame ? 1 : 0;
    faults += e.fault != hl7::MllpFault::none ? 1 : 0;
  }
  check(frames == whole_stats.frames);
  check(faults == whole_stats.faults);
  // Re-framing every frame and decoding again gives the same frames without faults.
  std::string reframed;
  for (const Ev& e : whole) {
    if (e.type == hl7::MllpEvent::Type::frame) {
      hl7::mllpFrameTo(e.data, reframed);
    }
  }
  hl7::MllpStats again_stats;
  std::vector<Ev> again = decode(reframed, sizes, max_frame, &again_stats);
  check(again_stats.faults == 0);
  check(again.size() == frames);
  return 0;
}
