// Audit upload on P/audit: batches acknowledged like records (the uploaded-up-to seq advances
// only on PUBACK and survives restarts), complete and verifiable by their hash chain, through
// broker outages and agent restarts.
#include <gtest/gtest.h>

#include "psa/store/sqlite_store.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

struct CloudAudit {
  std::map<int64_t, std::string> hash_by_seq;
  uint64_t duplicates = 0;
  bool chain_ok = true;
  std::string problem;
};

CloudAudit cloudAudit(RemoteFixture& f) {
  CloudAudit out;
  for (const auto& batch : f.reports("audit")) {
    if (!batch.audit_check.getBool("ok")) {
      out.chain_ok = false;
      out.problem = batch.audit_check.getString("problem");
    }
    out.duplicates += static_cast<uint64_t>(batch.audit_check.getInt("duplicates"));
    for (const auto& e : batch.payload.find("entries")->items()) {
      out.hash_by_seq[e.getInt("seq")] = e.getString("hash");
    }
  }
  return out;
}

std::vector<store::AuditEntry> storeAudit(const std::filesystem::path& state_dir) {
  store::StoreOptions o;
  o.db_path = state_dir / "queue.db";
  o.key_file = state_dir / "queue.key";
  auto opened = store::SqliteStore::open(o);
  if (!opened) {
    throw std::runtime_error(opened.error().describe());
  }
  auto verify = (*opened)->verifyAudit();
  EXPECT_TRUE(verify.ok() && verify->ok) << (verify.ok() ? verify->problem : verify.error().message);
  auto entries = (*opened)->auditEntries(0, 100000);
  (*opened)->close();
  return entries ? *entries : std::vector<store::AuditEntry>{};
}

TEST(RemoteAudit, BatchesArriveCompleteAndVerifiableThroughOutagesAndRestarts) {
  RemoteFixture f;
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(f.command("ping").getString("result"), "ok");
  }

  // Broker down: entries keep being written locally (technician actions over the control
  // socket) and go up once it is back.
  f.env.broker->stop();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(f.agent->cli({"config", "lock", "--reason", "outage " + std::to_string(i)}).exit_code, 0);
    ASSERT_EQ(f.agent->cli({"config", "unlock"}).exit_code, 0);
  }
  f.env.broker->start();

  // Agent restart in the middle: the cursor survives, nothing is skipped.
  ASSERT_TRUE(waitFor([&] { return cloudAudit(f).hash_by_seq.size() >= 30; }, 30s));
  ASSERT_EQ(f.agent->stop(), 0);
  ASSERT_TRUE(f.startAgent()) << f.agent->log();
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(f.command("ping").getString("result"), "ok");
  }
  ASSERT_TRUE(waitFor([&] {
    for (const auto& b : f.reports("audit")) {
      for (const auto& e : b.payload.find("entries")->items()) {
        if (e.getString("action") == "command.ping" && e.getString("detail").find("cmd-40-ping") != std::string::npos) {
          return true;
        }
      }
    }
    return false;
  }, 30s));
  ASSERT_EQ(f.agent->stop(), 0);

  // The store's own entries written after the last upload (e.g. the final records.* counts at
  // close) are not in the cloud yet; everything up to the last uploaded seq is, exactly.
  const auto local = storeAudit(f.state);
  const CloudAudit cloud = cloudAudit(f);
  ASSERT_FALSE(local.empty());
  EXPECT_TRUE(cloud.chain_ok) << cloud.problem;
  const int64_t last_uploaded = cloud.hash_by_seq.rbegin()->first;
  size_t compared = 0;
  for (const auto& e : local) {
    if (e.seq > last_uploaded) {
      break;
    }
    auto it = cloud.hash_by_seq.find(e.seq);
    ASSERT_NE(it, cloud.hash_by_seq.end()) << "entry " << e.seq << " (" << e.action << ") never reached the cloud";
    EXPECT_EQ(it->second, e.hash) << "entry " << e.seq;
    ++compared;
  }
  EXPECT_GE(compared, 46u);  // 40 pings, 6 lock/unlock, plus the store's own entries
  // At most the batch in flight at a restart may arrive twice (the cloud drops it by seq).
  EXPECT_LE(cloud.duplicates, 200u);
}

}  // namespace
}  // namespace psa::test
