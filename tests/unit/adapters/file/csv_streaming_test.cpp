// CSV reader streaming guarantees: any chunking gives the same rows and errors as one
// buffer, resuming from any row's checkpoint gives exactly the remaining rows, and memory
// stays bounded by one record plus one chunk on a large input.
#include <gtest/gtest.h>

#include <random>

#include "file_parse_util.h"
#include "psa/adapters/file/csv.h"

namespace psa::adapters::file {
namespace {

using test::CsvEvent;
using test::fixture;
using test::parseCsv;

struct Case {
  const char* file;
  char delimiter;
  TextEncoding encoding;
  CsvTrim trim;
};

const Case kCases[] = {
    {"csv/patients.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/appointments.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/appointments.csv", ',', TextEncoding::windows1252, CsvTrim::all},
    {"csv/charges.csv", ';', TextEncoding::utf8, CsvTrim::none},
    {"csv/providers.csv", '\t', TextEncoding::utf8, CsvTrim::all},
    {"csv/inventory.csv", '|', TextEncoding::utf8, CsvTrim::all},
    {"csv/inventory.csv", '|', TextEncoding::utf8, CsvTrim::none},
    {"csv/patients_1252.csv", ',', TextEncoding::windows1252, CsvTrim::none},
    {"csv/patients_1252.csv", ',', TextEncoding::auto_detect, CsvTrim::none},
    {"csv/lone_cr.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/ragged.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/unterminated_quote.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/invalid_utf8.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/quote_errors.csv", ',', TextEncoding::utf8, CsvTrim::all},
    {"csv/duplicate_header.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/utf16.csv", ',', TextEncoding::utf8, CsvTrim::none},
    {"csv/blank_only.csv", ',', TextEncoding::utf8, CsvTrim::none},
};

CsvOptions optionsFor(const Case& c) {
  CsvOptions o;
  o.delimiter = c.delimiter;
  o.encoding = c.encoding;
  o.trim = c.trim;
  return o;
}

TEST(CsvStreaming, EveryChunkSizeGivesTheSameEvents) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.file);
    const std::string data = fixture(c.file);
    const auto whole = parseCsv(data, optionsFor(c));
    ASSERT_FALSE(whole.empty());
    for (size_t chunk = 1; chunk <= data.size(); ++chunk) {
      const auto chunked = parseCsv(data, optionsFor(c), chunk);
      ASSERT_EQ(chunked, whole) << "chunk size " << chunk;
    }
  }
}

TEST(CsvStreaming, ResumingFromEachCheckpointGivesTheRemainingEvents) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.file);
    const std::string data = fixture(c.file);
    const auto whole = parseCsv(data, optionsFor(c));
    for (size_t i = 0; i < whole.size(); ++i) {
      if (whole[i].kind == CsvEvent::Kind::fatal) {
        continue;
      }
      auto ck = CsvCheckpoint::deserialize(whole[i].checkpoint);
      ASSERT_TRUE(ck.ok()) << ck.error().describe();
      ASSERT_EQ(ck->offset, whole[i].end);
      ASSERT_EQ(ck->rows, whole[i].number);
      const std::vector<CsvEvent> expected(whole.begin() + static_cast<long>(i) + 1, whole.end());
      for (size_t chunk : {size_t{0}, size_t{1}, size_t{7}}) {
        const auto resumed =
            parseCsv(std::string_view(data).substr(ck->offset), optionsFor(c), chunk, *ck);
        ASSERT_EQ(resumed, expected) << "after event " << i << ", chunk " << chunk;
      }
    }
  }
}

TEST(CsvStreaming, CheckpointBeforeTheFirstRowRestartsFromTheTop) {
  auto p = CsvParser::create({});
  ASSERT_TRUE(p.ok());
  p->feed("Id,Name\n1,");
  ASSERT_EQ(*p->next(), CsvParser::Step::need_input);
  const CsvCheckpoint ck = p->checkpoint();  // header read, no row yet
  EXPECT_EQ(ck.offset, 8u);
  EXPECT_EQ(ck.header, (std::vector<std::string>{"Id", "Name"}));
  EXPECT_EQ(ck.line, 2u);

  auto fresh = CsvParser::create({});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->checkpoint(), CsvCheckpoint{});
}

/// Appointment rows like an eCW export, some with quoted commas, quotes and newlines.
std::string appointmentRow(uint64_t i) {
  std::string r = "A-" + std::to_string(100000 + i) + "," + std::to_string(5000 + i % 997) +
                  ",P" + std::to_string(100 + i % 7) + ",Room " + std::to_string(i % 5) +
                  ",2024-01-02T09:00:00,2024-01-02T09:30:00,30,";
  switch (i % 4) {
    case 0:
      r += "Follow-up,Scheduled,Main Clinic,";
      break;
    case 1:
      r += "\"Lab, fasting\",Confirmed,\"North Office, Suite 200\",\"Said \"\"call\"\"\"";
      break;
    case 2:
      r += "New Patient,Arrived,Main Clinic,\"line one\r\nline two\"";
      break;
    default:
      r += "Physical,Cancelled,South,";
      break;
  }
  return r + "\r\n";
}

TEST(CsvStreaming, LargeInputStaysInBoundedMemory) {
  // ~8 MB generated on the fly in 64 KiB chunks; the parser must never hold more than
  // about one chunk plus one record.
  CsvOptions o;
  o.max_record_bytes = 4096;
  auto created = CsvParser::create(o);
  ASSERT_TRUE(created.ok());
  CsvParser p = std::move(created).value();
  std::string pending =
      "AppointmentId,PatientId,ProviderId,Resource,StartDateTime,StopDateTime,LengthMinutes,"
      "Type,Status,Location,Notes\r\n";
  constexpr size_t kChunk = 64 << 10;
  constexpr uint64_t kRows = 60000;
  uint64_t produced = 0;
  uint64_t rows = 0;
  size_t max_buffered = 0;
  for (;;) {
    auto r = p.next();
    ASSERT_TRUE(r.ok()) << r.error().describe();
    if (*r == CsvParser::Step::end) {
      break;
    }
    if (*r == CsvParser::Step::row) {
      ASSERT_FALSE(p.row().error) << p.row().error->message;
      ++rows;
      ASSERT_EQ(p.row().number, rows);
      continue;
    }
    while (pending.size() < kChunk && produced < kRows) {
      pending += appointmentRow(produced++);
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
  EXPECT_EQ(rows, kRows);
  EXPECT_LE(max_buffered, 2 * (kChunk + o.max_record_bytes));
}

TEST(CsvStreaming, RandomChunkingOfGeneratedFile) {
  std::string data = "Id,Name,Note\n";
  for (uint64_t i = 0; i < 500; ++i) {
    data += std::to_string(i) + ",\"N, " + std::to_string(i) + "\",\"a\"\"b\nc\"\r\n";
    if (i % 50 == 0) {
      data += "\r\n";
    }
  }
  const auto whole = parseCsv(data, {});
  ASSERT_EQ(whole.size(), 500u);
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    auto created = CsvParser::create({});
    ASSERT_TRUE(created.ok());
    CsvParser p = std::move(created).value();
    size_t fed = 0;
    std::vector<std::string> json;
    for (;;) {
      auto r = p.next();
      ASSERT_TRUE(r.ok());
      if (*r == CsvParser::Step::end) {
        break;
      }
      if (*r == CsvParser::Step::row) {
        json.emplace_back(p.row().json);
        continue;
      }
      if (fed == data.size()) {
        p.finish();
        continue;
      }
      const size_t n = std::min<size_t>(data.size() - fed, 1 + rng() % 300);
      p.feed(std::string_view(data).substr(fed, n));
      fed += n;
    }
    ASSERT_EQ(json.size(), whole.size());
    for (size_t i = 0; i < json.size(); ++i) {
      ASSERT_EQ(json[i], whole[i].json);
    }
  }
}

}  // namespace
}  // namespace psa::adapters::file
