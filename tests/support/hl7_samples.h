// HL7 v2 test messages for MLLP tests and benchmarks, the checked-in corpus
// (tests/data/hl7/), and a look into a store from outside (which control ids does it hold?).
// Header-only: needs psa::store only.
#pragma once

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::test {

/// A file of the HL7 corpus (tests/data/hl7/NAME). Files stay loaded for the whole run, so
/// parsed messages may keep views into them. Not thread-safe (call from the test's thread).
inline const std::string& hl7Corpus(const std::string& name) {
  static std::map<std::string, std::string> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    it = cache.emplace(name, readFile(std::string(PSA_TEST_DATA_DIR) + "/hl7/" + name)).first;
  }
  return it->second;
}

/// An ADT^A01 v2.5.1 message with control id `control_id`, CR segment terminators, padded
/// with a Z segment to exactly `size` bytes (when above ~600). `family_name` goes into PID-5.1
/// (use a PHI marker there). `extra_msh` is appended to MSH-12 (e.g. "|||AL" sets MSH-15).
inline std::string adtMessage(std::string_view control_id, std::string_view family_name = "DOE",
                              size_t size = 1024, std::string_view extra_msh = {}) {
  std::string m;
  m.reserve(size + 64);
  m += "MSH|^~\\&|REGADT|GOODHEALTH|PSAGENT|PRACTICE0042|20240105083000||ADT^A01^ADT_A01|";
  m += control_id;
  m += "|P|2.5.1";
  m += extra_msh;
  m += "\rEVN|A01|20240105083000|||OP1234^OPERATOR^TEST\r";
  m += "PID|1||MRN10001^^^GOODHEALTH^MR||";
  m += family_name;
  m += "^JANE^Q^^MS||19800101|F|||123 FAKE ST^^SPRINGFIELD^IL^62701^USA^H||(555)555-0100^PRN^PH|"
       "|S||ACCT0001\r";
  m += "PV1|1|I|WARD1^101^A^GOODHEALTH||||1234^KILDARE^JAMES^^^DR|||MED||||7|||1234^KILDARE^JAMES"
       "^^^DR|IN|VIS0001\r";
  m += "AL1|1|DA|PCN^PENICILLIN^L|SV|HIVES~RASH\r";
  m += "DG1|1|I10|J18.9^PNEUMONIA, UNSPECIFIED ORGANISM^I10||20240105|A\r";
  if (m.size() + 8 < size) {
    std::string z = "ZPD|1|";
    while (m.size() + z.size() + 7 < size) {
      z += "PAD^X~";
    }
    z.append(size - m.size() - z.size() - 1, 'X');  // exactly `size` bytes
    m += z;
    m += "\r";
  }
  return m;
}

/// MSH-10 of a message (field separator from MSH-1); "" if none.
inline std::string controlIdOf(std::string_view msg) {
  if (msg.size() < 4 || msg.substr(0, 3) != "MSH") {
    return {};
  }
  const char fs = msg[3];
  std::string_view line = msg.substr(0, msg.find_first_of("\r\n"));
  size_t field = 1;  // MSH-1 is the separator right after "MSH"
  size_t start = 4;
  while (start <= line.size()) {
    size_t end = line.find(fs, start);
    if (end == std::string_view::npos) {
      end = line.size();
    }
    ++field;
    if (field == 10) {
      return std::string(line.substr(start, end - start));
    }
    start = end + 1;
  }
  return {};
}

/// What a store holds, read from its files (the agent must be stopped or killed).
struct StoreContents {
  std::map<std::string, int> queued;  ///< control id -> number of queued records with it
  std::map<std::string, int> dead;    ///< control id -> number of dead letters with it
  std::map<std::string, std::string> dead_reason;  ///< control id -> reason
  size_t queued_total = 0;
  size_t dead_total = 0;
  std::map<std::string, std::string> payload;     ///< control id -> payload of a queued record
  std::map<std::string, store::RecordInfo> info;  ///< control id -> metadata (queued)
};

/// Opens db/key (e.g. state_dir/queue.db and queue.key), reads every queued and dead record
/// and closes the store again. Throws std::runtime_error on failure.
inline StoreContents readStore(const std::filesystem::path& db, const std::filesystem::path& key) {
  store::StoreOptions o;
  o.db_path = db;
  o.key_file = key;
  auto opened = store::SqliteStore::open(std::move(o));
  if (!opened) {
    throw std::runtime_error("readStore: " + opened.error().describe());
  }
  auto& s = *opened.value();
  StoreContents out;
  for (auto filter : {store::ListFilter::queued, store::ListFilter::dead}) {
    int64_t after = 0;
    for (;;) {
      auto page = s.list(filter, after, 1000);
      if (!page) {
        throw std::runtime_error("readStore list: " + page.error().describe());
      }
      if (page.value().empty()) {
        break;
      }
      for (const auto& info : page.value()) {
        after = info.seq;
        auto payload = s.reveal(info.msg_id);
        if (!payload) {
          throw std::runtime_error("readStore reveal: " + payload.error().describe());
        }
        const std::string id = controlIdOf(payload.value().reveal());
        if (filter == store::ListFilter::queued) {
          ++out.queued[id];
          ++out.queued_total;
          out.payload[id] = payload.value().reveal();
          out.info[id] = info;
        } else {
          ++out.dead[id];
          ++out.dead_total;
          out.dead_reason[id] = info.reason;
        }
      }
    }
  }
  s.close();
  return out;
}

}  // namespace psa::test
