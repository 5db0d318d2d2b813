// libFuzzer target for the streaming X12 reader. The first two bytes choose the limits and
// the chunking; the rest is the file. Checks, besides ASan/UBSan: the same events for the
// whole buffer and for arbitrary chunking, the remaining events when resuming from a
// checkpoint, and that every good transaction set's payload is itself an interchange that
// parses back to the same set.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/file/x12.h"

namespace {

using psa::adapters::file::X12Checkpoint;
using psa::adapters::file::X12Options;
using psa::adapters::file::X12Parser;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_x12 invariant failed: %s\n", what);
    std::abort();
  }
}

struct Event {
  std::string text;
  std::string body;
  std::string payload;
  std::string checkpoint;
  bool fatal = false;
  bool good = false;
  bool operator==(const Event& o) const {
    return text == o.text && body == o.body && payload == o.payload && checkpoint == o.checkpoint;
  }
};

struct Chunker {
  uint32_t state;
  uint32_t max;
  size_t next(size_t remaining) {
    if (max == 0) {
      return remaining;
    }
    state = state * 1103515245u + 12345u;
    return std::min<size_t>(remaining, 1 + (state >> 16) % max);
  }
};

std::vector<Event> run(std::string_view data, const X12Options& options, Chunker chunker,
                       const X12Checkpoint& from, uint64_t file_size) {
  std::vector<Event> out;
  auto created = X12Parser::create(options, from);
  check(created.ok(), "create");
  X12Parser p = std::move(created).value();
  size_t fed = 0;
  uint64_t last_end = from.offset;
  for (;;) {
    auto r = p.next();
    if (!r) {
      check(p.fatalIssue() != nullptr && p.fatalIssue()->message == r.error().message,
            "fatal issue");
      check(p.fatalIssue()->offset <= file_size, "fatal offset in file");
      Event e;
      e.text = "fatal " + r.error().message;
      e.fatal = true;
      out.push_back(std::move(e));
      return out;
    }
    if (*r == X12Parser::Step::end) {
      return out;
    }
    if (*r == X12Parser::Step::need_input) {
      if (fed == data.size()) {
        p.finish();
      } else {
        const size_t n = chunker.next(data.size() - fed);
        p.feed(data.substr(fed, n));
        fed += n;
      }
      continue;
    }
    const auto& t = p.transaction();
    check(t.begin_offset >= last_end && t.begin_offset < t.end_offset, "set order");
    check(t.end_offset <= file_size, "set inside file");
    check(t.body == data.substr(t.begin_offset - from.offset, t.body.size()), "body bytes");
    check(t.body.size() == t.end_offset - t.begin_offset, "body span");
    check(t.body.size() <= options.max_transaction_bytes, "set limit");
    check(t.line <= t.end_line, "line order");
    last_end = t.end_offset;
    Event e;
    e.text = std::to_string(t.number) + " " + std::to_string(t.line) + "-" +
             std::to_string(t.end_line) + " " + std::to_string(t.first_segment) + "+" +
             std::to_string(t.segment_count) + " " + std::string(t.transaction_set_id) + "/" +
             std::string(t.control_number) + "/" + std::string(t.implementation_convention) +
             "/" + std::string(t.functional_id) + "/" + std::string(t.group_control) + "/" +
             std::string(t.interchange_control) + (t.error ? " error " + t.error->message : "");
    e.body = std::string(t.body);
    e.payload = std::string(t.payload);
    e.good = !t.error;
    const X12Checkpoint ck = p.checkpoint();
    check(ck.offset == t.end_offset && ck.transactions == t.number, "checkpoint after set");
    auto round = X12Checkpoint::deserialize(ck.serialize());
    check(round.ok() && *round == ck, "checkpoint round trip");
    e.checkpoint = ck.serialize();
    out.push_back(std::move(e));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 2) {
    return 0;
  }
  static constexpr size_t kSegment[] = {1024, size_t{64} << 10};
  static constexpr size_t kSet[] = {1024, 4096, size_t{16} << 20, size_t{16} << 20};
  X12Options o;
  o.max_segment_bytes = kSegment[bytes[0] & 1];
  o.max_transaction_bytes = kSet[(bytes[0] >> 1) & 3];
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 2, size - 2);

  const auto whole = run(data, o, Chunker{0, 0}, {}, data.size());
  const auto chunked = run(data, o, Chunker{bytes[1], 1u + bytes[1] % 23}, {}, data.size());
  check(whole == chunked, "chunked == whole");

  for (size_t i = 0; i < whole.size(); ++i) {
    if (whole[i].fatal) {
      continue;
    }
    if (i == 0 || i == whole.size() / 2 || i + 2 >= whole.size()) {
      auto ck = X12Checkpoint::deserialize(whole[i].checkpoint);
      check(ck.ok(), "stored checkpoint parses");
      const auto resumed = run(data.substr(ck->offset), o, Chunker{bytes[0], 1u + bytes[0] % 7},
                               *ck, data.size());
      check(resumed.size() == whole.size() - i - 1, "resume count");
      for (size_t k = 0; k < resumed.size(); ++k) {
        check(resumed[k] == whole[i + 1 + k], "resume == rest");
      }
    }
    if (whole[i].good) {
      X12Options big;
      big.max_segment_bytes = o.max_segment_bytes;
      big.max_transaction_bytes = size_t{1} << 30;
      const auto again = run(whole[i].payload, big, Chunker{0, 0}, {}, whole[i].payload.size());
      check(again.size() == 1 && again[0].good && again[0].body == whole[i].body &&
                again[0].payload == whole[i].payload,
            "payload re-parses to the same set");
    }
  }
  return 0;
}
