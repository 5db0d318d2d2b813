// libFuzzer target for the streaming CSV reader. The first three bytes choose the options
// and the chunking; the rest is the file. Checks, besides ASan/UBSan: the same events for
// the whole buffer and for arbitrary chunking, the remaining events when resuming from a
// checkpoint, and per-row invariants (spans inside the file, valid UTF-8 JSON, field count).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/file/csv.h"
#include "psa/adapters/file/text_encoding.h"

namespace {

using psa::adapters::file::CsvCheckpoint;
using psa::adapters::file::CsvOptions;
using psa::adapters::file::CsvParser;
using psa::adapters::file::CsvTrim;
using psa::adapters::file::TextEncoding;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_csv invariant failed: %s\n", what);
    std::abort();
  }
}

struct Event {
  std::string text;  // everything observable, flattened
  std::string checkpoint;
  bool fatal = false;
  bool operator==(const Event& o) const { return text == o.text && checkpoint == o.checkpoint; }
};

/// Chunk sizes from a seed: 0 = whole buffer, else a small LCG-driven sequence.
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

std::vector<Event> run(std::string_view data, const CsvOptions& options, Chunker chunker,
                       const CsvCheckpoint& from, uint64_t file_size) {
  std::vector<Event> out;
  auto created = CsvParser::create(options, from);
  check(created.ok(), "create");
  CsvParser p = std::move(created).value();
  size_t fed = 0;
  uint64_t last_end = from.offset;
  for (;;) {
    auto r = p.next();
    if (!r) {
      check(p.fatalIssue() != nullptr, "fatal issue present");
      check(p.fatalIssue()->message == r.error().message, "fatal message");
      check(p.fatalIssue()->offset <= file_size, "fatal offset in file");
      out.push_back({"fatal " + r.error().message, "", true});
      auto again = p.next();
      check(!again && again.error().message == r.error().message, "fatal is sticky");
      return out;
    }
    if (*r == CsvParser::Step::end) {
      return out;
    }
    if (*r == CsvParser::Step::need_input) {
      if (fed == data.size()) {
        p.finish();
      } else {
        const size_t n = chunker.next(data.size() - fed);
        p.feed(data.substr(fed, n));
        fed += n;
        check(p.bufferedBytes() <= 2 * (options.max_record_bytes + data.size()) + 8,
              "bounded buffer");
      }
      continue;
    }
    const auto& row = p.row();
    check(row.begin_offset >= last_end && row.begin_offset <= row.end_offset, "row order");
    check(row.end_offset <= file_size, "row inside file");
    check(row.line <= row.end_line, "line order");
    check(row.raw.size() <= row.end_offset - row.begin_offset, "raw span");
    check(row.raw == data.substr(row.begin_offset - from.offset, row.raw.size()), "raw bytes");
    last_end = row.end_offset;
    std::string text = std::to_string(row.number) + " " + std::to_string(row.line) + "-" +
                       std::to_string(row.end_line) + " " + std::to_string(row.begin_offset) +
                       "-" + std::to_string(row.end_offset) + " ";
    if (row.error) {
      check(row.json.empty() && row.fields.empty(), "bad row has no json");
      check(row.error->offset >= row.begin_offset && row.error->offset <= row.end_offset,
            "row error inside row");
      check(row.error->line >= row.line && row.error->line <= row.end_line,
            "row error line inside row");
      text += "error " + row.error->message;
    } else {
      check(row.fields.size() == p.header().size(), "field count");
      check(psa::adapters::file::findInvalidUtf8(row.json) == std::string_view::npos,
            "json is UTF-8");
      check(row.json.size() >= 2 && row.json.front() == '{' && row.json.back() == '}',
            "json object");
      for (auto f : row.fields) {
        check(psa::adapters::file::findInvalidUtf8(f) == std::string_view::npos,
              "field is UTF-8");
      }
      text += std::string(row.json);
    }
    const CsvCheckpoint ck = p.checkpoint();
    check(ck.offset == row.end_offset && ck.rows == row.number, "checkpoint after row");
    auto round = CsvCheckpoint::deserialize(ck.serialize());
    check(round.ok() && *round == ck, "checkpoint round trip");
    out.push_back({std::move(text), ck.serialize(), false});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size < 3) {
    return 0;
  }
  static constexpr char kDelims[] = {',', ';', '\t', '|'};
  static constexpr size_t kMaxRecord[] = {16, 64, 1024, size_t{1} << 20};
  CsvOptions o;
  o.delimiter = kDelims[bytes[0] & 3];
  o.encoding = static_cast<TextEncoding>(((bytes[0] >> 2) & 3) % 3);
  o.trim = static_cast<CsvTrim>(((bytes[0] >> 4) & 3) % 3);
  o.max_record_bytes = kMaxRecord[(bytes[0] >> 6) & 3];
  o.max_columns = 1 + bytes[2] % 64;
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 3, size - 3);

  const auto whole = run(data, o, Chunker{0, 0}, {}, data.size());
  const auto chunked = run(data, o, Chunker{bytes[1], 1u + bytes[1] % 17}, {}, data.size());
  check(whole == chunked, "chunked == whole");

  // Resume from up to three checkpoints (first, middle, last row).
  std::vector<size_t> picks;
  for (size_t i = 0; i < whole.size(); ++i) {
    if (!whole[i].fatal && (i == 0 || i == whole.size() / 2 || i + 2 >= whole.size())) {
      picks.push_back(i);
    }
  }
  for (size_t i : picks) {
    auto ck = CsvCheckpoint::deserialize(whole[i].checkpoint);
    check(ck.ok(), "stored checkpoint parses");
    const auto resumed =
        run(data.substr(ck->offset), o, Chunker{bytes[2], 1u + bytes[2] % 5}, *ck, data.size());
    check(resumed.size() == whole.size() - i - 1, "resume count");
    for (size_t k = 0; k < resumed.size(); ++k) {
      check(resumed[k] == whole[i + 1 + k], "resume == rest");
    }
  }
  return 0;
}
