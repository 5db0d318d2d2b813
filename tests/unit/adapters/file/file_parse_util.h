// Test helpers for the streaming file codecs: run a parser over bytes fed in chunks of a
// given size (optionally from a checkpoint) and collect every event as plain values, so
// runs can be compared for equality.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "psa/adapters/file/csv.h"
#include "psa/adapters/file/x12.h"
#include "test_support.h"

namespace psa::test {

inline std::string fixture(std::string_view rel) {
  return readFile(std::filesystem::path(PSA_TEST_DATA_DIR) / rel);
}

struct CsvEvent {
  enum class Kind { row, bad_row, fatal } kind = Kind::row;
  uint64_t number = 0, line = 0, end_line = 0, begin = 0, end = 0;
  std::string raw, json;
  std::vector<std::string> fields;
  std::string code;  // csvErrcName of a bad row or fatal error
  uint64_t err_line = 0, err_offset = 0;
  std::string message;
  std::string checkpoint;  // serialized checkpoint after the event

  friend bool operator==(const CsvEvent&, const CsvEvent&) = default;
  friend std::ostream& operator<<(std::ostream& os, const CsvEvent& e) {
    return os << "{kind=" << static_cast<int>(e.kind) << " #" << e.number << " lines " << e.line
              << "-" << e.end_line << " bytes " << e.begin << "-" << e.end << " json=" << e.json
              << " code=" << e.code << " msg=" << e.message << "}";
  }
};

/// Parses `data` (the file's bytes from `from.offset` on) fed in chunks of `chunk` bytes
/// (0 = all at once). Stops at the end or at a fatal error (recorded as the last event).
/// Also checks that the parser's buffer stays bounded by one record plus one chunk.
inline std::vector<CsvEvent> parseCsv(std::string_view data,
                                      const adapters::file::CsvOptions& options,
                                      size_t chunk = 0,
                                      const adapters::file::CsvCheckpoint& from = {}) {
  using adapters::file::CsvParser;
  std::vector<CsvEvent> out;
  auto created = CsvParser::create(options, from);
  EXPECT_TRUE(created.ok()) << created.error().describe();
  if (!created) {
    return out;
  }
  CsvParser p = std::move(created).value();
  const size_t step = chunk == 0 ? std::max<size_t>(data.size(), 1) : chunk;
  size_t fed = 0;
  for (;;) {
    auto r = p.next();
    if (!r) {
      const auto* f = p.fatalIssue();
      EXPECT_NE(f, nullptr);
      CsvEvent e;
      e.kind = CsvEvent::Kind::fatal;
      e.code = std::string(adapters::file::csvErrcName(f->code));
      e.err_line = f->line;
      e.err_offset = f->offset;
      e.message = r.error().message;
      EXPECT_EQ(f->message, r.error().message);
      out.push_back(std::move(e));
      return out;
    }
    if (*r == CsvParser::Step::end) {
      return out;
    }
    if (*r == CsvParser::Step::need_input) {
      if (fed >= data.size()) {
        p.finish();
      } else {
        const size_t n = std::min(step, data.size() - fed);
        p.feed(data.substr(fed, n));
        fed += n;
        EXPECT_LE(p.bufferedBytes(), 2 * (options.max_record_bytes + step) + 8);
      }
      continue;
    }
    const auto& row = p.row();
    CsvEvent e;
    e.kind = row.error ? CsvEvent::Kind::bad_row : CsvEvent::Kind::row;
    e.number = row.number;
    e.line = row.line;
    e.end_line = row.end_line;
    e.begin = row.begin_offset;
    e.end = row.end_offset;
    e.raw = std::string(row.raw);
    e.json = std::string(row.json);
    for (auto f : row.fields) {
      e.fields.emplace_back(f);
    }
    if (row.error) {
      e.code = std::string(adapters::file::csvErrcName(row.error->code));
      e.err_line = row.error->line;
      e.err_offset = row.error->offset;
      e.message = row.error->message;
    }
    e.checkpoint = p.checkpoint().serialize();
    out.push_back(std::move(e));
  }
}

struct X12Event {
  enum class Kind { set, bad_set, fatal } kind = Kind::set;
  uint64_t number = 0, line = 0, end_line = 0, begin = 0, end = 0, first_segment = 0,
           segment_count = 0;
  std::string payload, body, tsid, control, convention, functional_id, group_control,
      interchange_control, sender, receiver;
  std::string code;
  uint64_t err_segment = 0, err_line = 0, err_offset = 0;
  std::string message;
  std::string checkpoint;

  friend bool operator==(const X12Event&, const X12Event&) = default;
  friend std::ostream& operator<<(std::ostream& os, const X12Event& e) {
    return os << "{kind=" << static_cast<int>(e.kind) << " #" << e.number << " " << e.tsid << "/"
              << e.control << " bytes " << e.begin << "-" << e.end << " code=" << e.code
              << " msg=" << e.message << "}";
  }
};

inline std::vector<X12Event> parseX12(std::string_view data,
                                      const adapters::file::X12Options& options = {},
                                      size_t chunk = 0,
                                      const adapters::file::X12Checkpoint& from = {}) {
  using adapters::file::X12Parser;
  std::vector<X12Event> out;
  auto created = X12Parser::create(options, from);
  EXPECT_TRUE(created.ok()) << created.error().describe();
  if (!created) {
    return out;
  }
  X12Parser p = std::move(created).value();
  const size_t step = chunk == 0 ? std::max<size_t>(data.size(), 1) : chunk;
  size_t fed = 0;
  for (;;) {
    auto r = p.next();
    if (!r) {
      const auto* f = p.fatalIssue();
      EXPECT_NE(f, nullptr);
      X12Event e;
      e.kind = X12Event::Kind::fatal;
      e.code = std::string(adapters::file::x12ErrcName(f->code));
      e.err_segment = f->segment;
      e.err_line = f->line;
      e.err_offset = f->offset;
      e.message = r.error().message;
      out.push_back(std::move(e));
      return out;
    }
    if (*r == X12Parser::Step::end) {
      return out;
    }
    if (*r == X12Parser::Step::need_input) {
      if (fed >= data.size()) {
        p.finish();
      } else {
        const size_t n = std::min(step, data.size() - fed);
        p.feed(data.substr(fed, n));
        fed += n;
        EXPECT_LE(p.bufferedBytes(), 2 * (options.max_transaction_bytes + step) + 8);
      }
      continue;
    }
    const auto& t = p.transaction();
    X12Event e;
    e.kind = t.error ? X12Event::Kind::bad_set : X12Event::Kind::set;
    e.number = t.number;
    e.line = t.line;
    e.end_line = t.end_line;
    e.begin = t.begin_offset;
    e.end = t.end_offset;
    e.first_segment = t.first_segment;
    e.segment_count = t.segment_count;
    e.payload = std::string(t.payload);
    e.body = std::string(t.body);
    e.tsid = std::string(t.transaction_set_id);
    e.control = std::string(t.control_number);
    e.convention = std::string(t.implementation_convention);
    e.functional_id = std::string(t.functional_id);
    e.group_control = std::string(t.group_control);
    e.interchange_control = std::string(t.interchange_control);
    e.sender = std::string(t.sender_id);
    e.receiver = std::string(t.receiver_id);
    if (t.error) {
      e.code = std::string(adapters::file::x12ErrcName(t.error->code));
      e.err_segment = t.error->segment;
      e.err_line = t.error->line;
      e.err_offset = t.error->offset;
      e.message = t.error->message;
    }
    e.checkpoint = p.checkpoint().serialize();
    out.push_back(std::move(e));
  }
}

}  // namespace psa::test
