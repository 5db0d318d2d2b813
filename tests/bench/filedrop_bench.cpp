// End-to-end throughput of the file-drop adapter into the real encrypted store on disk.
// Prints figures; never passes or fails.
//
//   build/bin/filedrop_bench [csv_megabytes=200] [x12_sets=20000] [hl7_messages=50000] [--summary]
//
// --summary adds machine-readable lines `figure<TAB>value<TAB>unit` (tests/bench/run-all.sh).
//
// Each phase: a fresh SqliteStore in a temp dir, one generated file already complete in the
// drop folder, the `file-drop` source built through the registry (as the agent does) and
// started; timed until the file is archived (hash pass + validation pass + streaming ingest
// with a checkpoint per batch + fsync per commit + archive). Peak RSS per phase is read from
// /proc/self/status (VmHWM, reset between phases), so it shows the adapter's and store's
// memory at that file size.
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>

#include "psa/adapters/source.h"
#include "psa/store/log.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

long peakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return 0;
}

void resetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}

std::string appointmentRow(uint64_t i) {
  static const char* const kTypes[] = {"Follow-up", "New Patient", "Physical", "Telehealth"};
  static const char* const kStatus[] = {"Scheduled", "Confirmed", "Arrived", "Cancelled"};
  std::string r = "A-2024" + std::to_string(1000000 + i) + "," + std::to_string(100000 + i % 9973) +
                  ",P" + std::to_string(100 + i % 17) + ",Room " + std::to_string(1 + i % 6) +
                  ",2024-03-" + std::to_string(10 + i % 18) + "T" + std::to_string(10 + i % 8) +
                  ":" + (i % 2 ? "30" : "00") + ":00,2024-03-" + std::to_string(10 + i % 18) + "T" +
                  std::to_string(10 + i % 8) + ":" + (i % 2 ? "45" : "15") + ":00," +
                  std::to_string(15 * (1 + i % 4)) + ",";
  switch (i % 8) {
    case 1:
      r += "\"Lab, fasting\",Confirmed,\"North Office, Suite 200\",\"Pt says \"\"call first\"\"\"";
      break;
    case 5:
      r += std::string(kTypes[i % 4]) +
           ",Scheduled,Main Clinic,\"Interpreter: Spanish\r\nWheelchair\"";
      break;
    default:
      r += std::string(kTypes[i % 4]) + "," + kStatus[(i / 3) % 4] + ",Main Clinic,";
      break;
  }
  return r + "\r\n";
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

std::string hl7Message(uint64_t i) {
  const std::string id = std::to_string(100000 + i);
  return "MSH|^~\\&|REG|GOODHEALTH|PSAGENT|PRACTICE0042|20240201120000||ADT^A08|MSG" + id +
         "|P|2.5.1\r\nEVN|A08|20240201120000\r\nPID|1||" + id +
         "^^^MRN||DOE^JANE^Q||19800314|F|||123 MAIN ST^^SPRINGFIELD^IL^62701||(217)555-0101\r\n"
         "PV1|1|O|CLINIC^1^1||||1234^KILDARE^JAMES\r\n";
}

struct Result {
  double seconds = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t db_bytes = 0;
  long rss_kib = 0;
  bool ok = false;
};

// Generates the file with `write(out)` and ingests it.
template <class Writer>
Result runPhase(const std::string& adapter_extra, const std::string& file_name, Writer write) {
  psa::test::TempDir tmp("psa-fdbench");
  const fs::path inbox = tmp / "inbox";
  fs::create_directories(inbox);
  {
    std::ofstream out(inbox / file_name, std::ios::binary);
    write(out);
  }
  Result res;
  res.bytes = fs::file_size(inbox / file_name);
  psa::store::StoreOptions o;
  o.db_path = tmp / "queue.db";
  o.key_file = tmp / "queue.key";
  o.max_bytes = 1ull << 40;
  auto store = std::move(psa::store::SqliteStore::open(std::move(o))).value();
  psa::adapters::SourceRegistry registry;
  psa::adapters::registerBuiltinSources(registry);
  boost::asio::io_context io;
  psa::adapters::SourceContext ctx{io, *store, psa::Clock::system(), tmp.path()};
  auto cfg =
      psa::json::parse(R"({"name":"bench","type":"file-drop","vendor":"generic","stable_ms":0,)"
                       R"("poll_interval_ms":50,"path":")" +
                       inbox.string() + "\"," + adapter_extra + "}");
  if (!cfg) {
    std::fprintf(stderr, "bad config: %s\n", cfg.error().message.c_str());
    std::exit(1);
  }
  auto source = registry.find("file-drop")->create(*cfg, ctx);
  if (!source) {
    std::fprintf(stderr, "create: %s\n", source.error().message.c_str());
    std::exit(1);
  }
  resetPeakRss();
  const auto t0 = SteadyClock::now();
  if (auto st = (*source)->start(); !st) {
    std::fprintf(stderr, "start: %s\n", st.error().message.c_str());
    std::exit(1);
  }
  for (;;) {
    auto st = (*source)->status();
    if (st.counters["files_ingested"] + st.counters["files_failed"] > 0) {
      res.ok = st.counters["files_ingested"] == 1;
      res.records = st.counters["records"];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  res.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  res.rss_kib = peakRssKiB();
  std::atomic<bool> stopped{false};
  (*source)->stop([&] { stopped = true; });
  while (!stopped) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (auto stats = store->stats()) {
    res.db_bytes = stats->db_bytes;
  }
  store->close();
  return res;
}

bool g_summary = false;

void print(const char* what, const char* unit, const Result& r, const char* figure) {
  std::printf(
      "%-28s %9.1f MB  %9llu %-5s %7.2f s  %9.0f %s/s  %6.1f MB/s  db %7.1f MB  peak RSS %5ld "
      "MiB%s\n",
      what, static_cast<double>(r.bytes) / 1e6, static_cast<unsigned long long>(r.records), unit,
      r.seconds, static_cast<double>(r.records) / r.seconds, unit,
      static_cast<double>(r.bytes) / 1e6 / r.seconds, static_cast<double>(r.db_bytes) / 1e6,
      r.rss_kib / 1024, r.ok ? "" : "  (FAILED)");
  if (g_summary) {
    std::printf("%s\t%.6g\t%s/s\n", figure, static_cast<double>(r.records) / r.seconds, unit);
    std::printf("%s_rss\t%.6g\tMB\n", figure, static_cast<double>(r.rss_kib) / 1024);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[argc - 1]) == "--summary") {
    g_summary = true;
    --argc;
  }
  const uint64_t csv_mb = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200;
  const uint64_t x12_sets = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20000;
  const uint64_t hl7_msgs = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 50000;
  psa::log::setLevel(psa::log::Level::warn);

  const std::string header =
      "AppointmentId,PatientId,ProviderId,Resource,StartDateTime,StopDateTime,LengthMinutes,Type,"
      "Status,"
      "Location,Notes\r\n";
  auto csv = runPhase(R"("format":"csv","kind":"appointment")", "appointments.csv",
                      [&](std::ofstream& out) {
                        out << header;
                        uint64_t written = header.size();
                        std::string block;
                        for (uint64_t i = 0; written < csv_mb * 1000000;) {
                          block.clear();
                          for (int k = 0; k < 10000; ++k, ++i) {
                            block += appointmentRow(i);
                          }
                          out << block;
                          written += block.size();
                        }
                      });
  print("csv (utf-8) rows", "rows", csv, "filedrop.csv");

  auto csv1252 =
      runPhase(R"("format":"csv","kind":"appointment","csv":{"encoding":"windows-1252"})",
               "appointments.csv", [&](std::ofstream& out) {
                 out << header;
                 for (uint64_t i = 0; i < 200000; ++i) {
                   out << appointmentRow(i);
                 }
               });
  print("csv (windows-1252) rows", "rows", csv1252, "filedrop.csv1252");

  auto x12 = runPhase(R"("format":"x12")", "claims.837", [&](std::ofstream& out) {
    out << "ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*RECEIVER01     *240102*1200*^*"
           "00501*000000101*0*P*:~\nGS*HC*SUBMITTERID*RECEIVERID*20240102*1200*101*X*005010X222A1~"
           "\n";
    for (uint64_t i = 0; i < x12_sets; ++i) {
      out << claimSet(i);
    }
    out << "GE*" << x12_sets << "*101~\nIEA*1*000000101~\n";
  });
  print("x12 837P transaction sets", "sets", x12, "filedrop.x12");

  auto hl7 = runPhase(R"("format":"hl7")", "ADT_batch.hl7", [&](std::ofstream& out) {
    out << "FHS|^~\\&|REG|GOODHEALTH|PSAGENT|PRACTICE0042|20240201000000\r\nBHS|^~\\&|REG|"
           "GOODHEALTH\r\n";
    for (uint64_t i = 0; i < hl7_msgs; ++i) {
      out << hl7Message(i);
    }
    out << "BTS|" << hl7_msgs << "\r\nFTS|1\r\n";
  });
  print("hl7 batch messages", "msgs", hl7, "filedrop.hl7_batch");
  return 0;
}
