// Throughput of the streaming file codecs. Prints figures; never passes or fails.
//
//   build/bin/file_parse_bench [csv_megabytes=100] [x12_sets=20000]
//
// CSV: a ~100 MB appointments export (realistic rows, a quarter with quoted commas, doubled
// quotes or quoted CRLF) fed in 64 KiB chunks, as the file-drop adapter will read it; the
// rows are generated once into an 8 MB block that is fed repeatedly, so the process's
// memory shows the parser's own footprint. Also the same in windows-1252 mode.
// X12: one interchange of N 837P transaction sets (~1 KB each) in 64 KiB chunks.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "psa/adapters/file/csv.h"
#include "psa/adapters/file/x12.h"

namespace {

using namespace psa::adapters::file;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 << 10;

long maxRssKiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

std::string appointmentRow(uint64_t i) {
  static const char* const kTypes[] = {"Follow-up", "New Patient", "Physical", "Telehealth"};
  static const char* const kStatus[] = {"Scheduled", "Confirmed", "Arrived", "Cancelled"};
  std::string r = "A-2024" + std::to_string(1000000 + i) + "," + std::to_string(100000 + i % 9973) +
                  ",P" + std::to_string(100 + i % 17) + ",Room " + std::to_string(1 + i % 6) +
                  ",2024-03-" + std::to_string(10 + i % 18) + "T" +
                  std::to_string(10 + i % 8) + ":" + (i % 2 ? "30" : "00") + ":00,2024-03-" +
                  std::to_string(10 + i % 18) + "T" + std::to_string(10 + i % 8) + ":" +
                  (i % 2 ? "45" : "15") + ":00," + std::to_string(15 * (1 + i % 4)) + ",";
  switch (i % 8) {
    case 1:
      r += "\"Lab, fasting\",Confirmed,\"North Office, Suite 200\",\"Pt says \"\"call first\"\"\"";
      break;
    case 5:
      r += std::string(kTypes[i % 4]) + ",Scheduled,Main Clinic,\"Interpreter: Spanish\r\nWheelchair\"";
      break;
    default:
      r += std::string(kTypes[i % 4]) + "," + kStatus[(i / 3) % 4] + ",Main Clinic,";
      break;
  }
  return r + "\r\n";
}

void benchCsv(size_t megabytes, TextEncoding encoding) {
  const std::string header =
      "AppointmentId,PatientId,ProviderId,Resource,StartDateTime,StopDateTime,LengthMinutes,"
      "Type,Status,Location,Notes\r\n";
  std::string block;
  uint64_t block_rows = 0;
  while (block.size() < (size_t{8} << 20)) {
    block += appointmentRow(block_rows++);
  }
  const size_t repeats = std::max<size_t>(1, (megabytes << 20) / block.size());
  CsvOptions o;
  o.encoding = encoding;
  auto created = CsvParser::create(o);
  if (!created) {
    std::fprintf(stderr, "create: %s\n", created.error().describe().c_str());
    std::exit(1);
  }
  CsvParser p = std::move(created).value();
  uint64_t rows = 0;
  uint64_t bad = 0;
  uint64_t json_bytes = 0;
  size_t max_buffer = 0;
  size_t rep = 0;
  size_t at = 0;
  bool header_fed = false;
  const auto t0 = Clock::now();
  for (;;) {
    auto r = p.next();
    if (!r) {
      std::fprintf(stderr, "csv: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    if (*r == CsvParser::Step::end) {
      break;
    }
    if (*r == CsvParser::Step::row) {
      ++rows;
      bad += p.row().error ? 1 : 0;
      json_bytes += p.row().json.size();
      continue;
    }
    if (!header_fed) {
      p.feed(header);
      header_fed = true;
    } else if (rep == repeats) {
      p.finish();
    } else {
      const size_t n = std::min(kChunk, block.size() - at);
      p.feed(std::string_view(block).substr(at, n));
      at += n;
      if (at == block.size()) {
        at = 0;
        ++rep;
      }
    }
    max_buffer = std::max(max_buffer, p.bufferedBytes());
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mb = static_cast<double>(header.size() + repeats * block.size()) / (1 << 20);
  std::printf(
      "csv  %-12s %8.1f MB  %9llu rows (%llu bad)  %6.3f s  %10.0f rows/s  %7.1f MB/s  "
      "json out %.1f MB  parser buffer peak %zu KiB\n",
      std::string(encodingName(encoding)).c_str(), mb, static_cast<unsigned long long>(rows),
      static_cast<unsigned long long>(bad), s, static_cast<double>(rows) / s, mb / s,
      static_cast<double>(json_bytes) / (1 << 20), max_buffer >> 10);
}

std::string claimSet(uint64_t n) {
  const std::string c = std::to_string(100000 + n);
  std::string s = "ST*837*" + c + "*005010X222A1~\n";
  const char* const segs[] = {
      "BHT*0019*00*BATCH1*20240102*1200*CH~\n",
      "NM1*41*2*ACME FAMILY PRACTICE*****46*SUB12345~\n",
      "PER*IC*BILLING OFFICE*TE*2175550100~\n",
      "NM1*40*2*EXAMPLE PAYER*****46*PAYERID~\n",
      "HL*1**20*1~\n",
      "PRV*BI*PXC*207Q00000X~\n",
      "NM1*85*2*ACME FAMILY PRACTICE*****XX*1234567893~\n",
      "N3*100 MEDICAL PLAZA~\n",
      "N4*SPRINGFIELD*IL*627010000~\n",
      "REF*EI*371234567~\n",
      "HL*2*1*22*0~\n",
      "SBR*P*18*GRP1001******CI~\n",
      "NM1*IL*1*DOE*JANE****MI*XYZ123456789~\n",
      "N3*123 MAIN ST~\n",
      "N4*SPRINGFIELD*IL*62701~\n",
      "DMG*D8*19800314*F~\n",
      "NM1*PR*2*EXAMPLE PAYER*****PI*PAYERID~\n",
  };
  int count = 1;
  for (const char* seg : segs) {
    s += seg;
    ++count;
  }
  s += "CLM*PCN" + c + "*250***11:B:1*Y*A*Y*Y~\nHI*ABK:E119*ABF:I10~\n";
  count += 2;
  for (int line = 1; line <= 2; ++line) {
    s += "LX*" + std::to_string(line) + "~\nSV1*HC:99213*125*UN*1***1:2~\nDTP*472*D8*20240102~\n";
    count += 3;
  }
  s += "SE*" + std::to_string(count + 1) + "*" + c + "~\n";
  return s;
}

void benchX12(uint64_t sets) {
  std::string data =
      "ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*RECEIVER01     *240102*1200*^*"
      "00501*000000101*0*P*:~\nGS*HC*SUBMITTERID*RECEIVERID*20240102*1200*101*X*005010X222A1~\n";
  for (uint64_t i = 0; i < sets; ++i) {
    data += claimSet(i);
  }
  data += "GE*" + std::to_string(sets) + "*101~\nIEA*1*000000101~\n";
  auto created = X12Parser::create({});
  if (!created) {
    std::exit(1);
  }
  X12Parser p = std::move(created).value();
  uint64_t got = 0;
  uint64_t payload_bytes = 0;
  size_t at = 0;
  size_t max_buffer = 0;
  const auto t0 = Clock::now();
  for (;;) {
    auto r = p.next();
    if (!r) {
      std::fprintf(stderr, "x12: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    if (*r == X12Parser::Step::end) {
      break;
    }
    if (*r == X12Parser::Step::transaction) {
      ++got;
      payload_bytes += p.transaction().payload.size();
      continue;
    }
    if (at == data.size()) {
      p.finish();
      continue;
    }
    const size_t n = std::min(kChunk, data.size() - at);
    p.feed(std::string_view(data).substr(at, n));
    at += n;
    max_buffer = std::max(max_buffer, p.bufferedBytes());
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mb = static_cast<double>(data.size()) / (1 << 20);
  std::printf(
      "x12  837P         %8.1f MB  %9llu sets          %6.3f s  %10.0f sets/s  %7.1f MB/s  "
      "payload out %.1f MB  parser buffer peak %zu KiB\n",
      mb, static_cast<unsigned long long>(got), s, static_cast<double>(got) / s, mb / s,
      static_cast<double>(payload_bytes) / (1 << 20), max_buffer >> 10);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t csv_mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 100;
  const uint64_t x12_sets = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20000;
  benchCsv(csv_mb, TextEncoding::utf8);
  benchCsv(csv_mb, TextEncoding::windows1252);
  benchX12(x12_sets);
  std::printf("max RSS %ld MiB (includes the 8 MB CSV block and the in-memory X12 file)\n",
              maxRssKiB() >> 10);
  return 0;
}
