// SIGKILLs a process that appends from several threads at random moments; after every kill the
// store reopens and every record whose append had completed is present, decrypts, and is
// byte-identical (by content hash), and the watermarks committed with them are not behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <cinttypes>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::store {
namespace {

using namespace std::chrono_literals;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h = (h ^ c) * 1099511628211ull;
  }
  return h;
}

struct Acked {
  std::string msg_id;
  uint64_t hash = 0;
  int thread = 0;
  uint64_t counter = 0;
};

std::vector<Acked> readReport(const std::filesystem::path& file) {
  std::vector<Acked> out;
  std::istringstream in(psa::test::readFile(file));
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) {
      break;  // a line without its newline was cut by the kill
    }
    Acked a;
    char id[64];
    char hash[32];
    if (std::sscanf(line.c_str(), "A %63s %31s %d %" SCNu64, id, hash, &a.thread, &a.counter) == 4) {
      a.msg_id = id;
      a.hash = std::strtoull(hash, nullptr, 16);
      out.push_back(a);
    }
  }
  return out;
}

TEST(StoreCrash, NoAcknowledgedRecordIsLostAcrossSigkill) {
  psa::test::TempDir dir("psa-crash");
  const auto report = dir / "acked.txt";
  std::mt19937 rng(std::random_device{}());
  constexpr int kRounds = 24;
  size_t verified = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < kRounds; ++round) {
    const size_t before = readReport(report).size();
    const size_t target = before + (round % 6 == 0 ? 0 : 1 + rng() % 250);
    psa::test::Process::Options po;
    po.argv = {psa::test::binary("store_crash_child").string(), dir.path().string(), "4",
               report.string()};
    po.stdout_file = dir / ("child-" + std::to_string(round) + ".log");
    psa::test::Process child(std::move(po));
    if (target == before) {
      // Kill early, possibly while the store is still opening or recovering.
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    } else {
      ASSERT_TRUE(psa::test::waitFor(
          [&] { return readReport(report).size() >= target || !child.running(); }, 20s))
          << "round " << round;
      ASSERT_TRUE(child.running()) << psa::test::readFile(po.stdout_file);
    }
    child.signal(SIGKILL);
    ASSERT_TRUE(child.wait(10s).has_value());

    const auto acked = readReport(report);
    StoreOptions o;
    o.db_path = dir / "queue.db";
    o.key_file = dir / "queue.key";
    o.retain_delivered = std::chrono::hours(1);
    auto opened = SqliteStore::open(o);
    ASSERT_TRUE(opened.ok()) << opened.error().describe();
    auto store = std::move(opened).value();
    ASSERT_FALSE(store->openReport().recovered_from_corruption)
        << store->openReport().corruption_reason;
    std::map<int, uint64_t> max_counter;
    std::set<std::string> ids;
    for (const Acked& a : acked) {
      auto payload = store->reveal(a.msg_id);
      ASSERT_TRUE(payload.ok()) << "round " << round << " lost " << a.msg_id << ": "
                                << payload.error().describe();
      ASSERT_EQ(fnv1a(payload->reveal()), a.hash) << a.msg_id;
      ASSERT_TRUE(ids.insert(a.msg_id).second) << "msg_id reported twice: " << a.msg_id;
      max_counter[a.thread] = std::max(max_counter[a.thread], a.counter);
    }
    for (const auto& [t, counter] : max_counter) {
      auto wm = store->watermark("crash", "t" + std::to_string(t));
      ASSERT_TRUE(wm.ok() && wm->has_value());
      EXPECT_GE(std::stoull(**wm), counter) << "watermark behind an acknowledged record";
    }
    auto v = store->verifyAudit();
    ASSERT_TRUE(v.ok());
    EXPECT_TRUE(v->ok) << v->problem;
    verified = acked.size();
  }
  const auto secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("crash rounds=%d acknowledged_records_verified=%zu seconds=%.1f\n", kRounds, verified,
              secs);
  EXPECT_GT(verified, 500u);
}

}  // namespace
}  // namespace psa::store
