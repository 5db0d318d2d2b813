// SIGKILLs the real agent while several MLLP senders push messages through it, restarts it,
// and proves the guarantee the ACK gives: every message that was answered AA is in the store,
// exactly once; the senders' resends (of unanswered and of answered messages) after the
// restart are answered AA and create no second record.
#include <gtest/gtest.h>

#include "mllp_senders.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

TEST(MllpCrash, SigkillUnderLoadLosesNoAcknowledgedMessage) {
  TempDir tmp("psa-mllp-crash");
  const int port = freePort();
  AgentProcess agent(tmp / "state", mllpAgentConfig(port));
  AckLedger ledger;
  constexpr int kRounds = 3;
  constexpr int kSenders = 8;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(agent.start()) << agent.log();
    const size_t before = ledger.count();
    std::vector<std::thread> senders;
    for (int s = 0; s < kSenders; ++s) {
      senders.emplace_back([&, s] {
        std::vector<std::string> ids;
        for (int k = 0; k < 20000; ++k) {
          ids.push_back("R" + std::to_string(round) + "S" + std::to_string(s) + "M" +
                        std::to_string(k));
        }
        // Cut by the kill: a connection error ends the sender.
        sendPipelined(port, ids, s % 2 ? 1 : 6, ledger);
      });
    }
    // Kill at a different moment each round, while all senders are busy.
    const size_t progress = 200 + 350 * static_cast<size_t>(round);
    ASSERT_TRUE(waitFor([&] { return ledger.count() >= before + progress; }, 120s));
    agent.kill();
    for (auto& t : senders) {
      t.join();
    }
    EXPECT_TRUE(ledger.others().empty()) << ledger.others().front();
    // Every AA so far is on disk, once.
    auto stored = readStore(agent.stateDir() / "queue.db", agent.stateDir() / "queue.key");
    size_t missing = 0;
    for (const auto& id : ledger.acked()) {
      if (stored.queued[id] != 1) {
        ++missing;
        ADD_FAILURE() << "acknowledged " << id << " stored " << stored.queued[id] << " times";
      }
    }
    EXPECT_EQ(missing, 0u);
    // Committed-but-unanswered messages may be there too, nothing that was never sent.
    EXPECT_GE(stored.queued_total, ledger.count());
    const auto attempted = ledger.attempted();
    for (const auto& [id, n] : stored.queued) {
      EXPECT_TRUE(attempted.count(id)) << id;
      EXPECT_EQ(n, 1) << id;
    }
  }

  // Restart; the senders resend what was never answered, and some answered ones again.
  ASSERT_TRUE(agent.start()) << agent.log();
  const auto acked = ledger.acked();
  std::vector<std::string> resend;
  for (const auto& id : ledger.attempted()) {
    if (!acked.count(id)) {
      resend.push_back(id);
    }
  }
  const size_t unanswered = resend.size();
  size_t extra = 0;
  for (const auto& id : acked) {
    if (extra++ >= 200) {
      break;
    }
    resend.push_back(id);
  }
  AckLedger second;
  ASSERT_TRUE(sendPipelined(port, resend, 8, second));
  EXPECT_TRUE(second.others().empty());
  EXPECT_EQ(second.count(), resend.size());
  ASSERT_EQ(agent.stop(), 0) << agent.log();
  auto stored = readStore(agent.stateDir() / "queue.db", agent.stateDir() / "queue.key");
  const auto attempted = ledger.attempted();
  EXPECT_EQ(stored.queued_total, attempted.size());
  for (const auto& id : attempted) {
    ASSERT_EQ(stored.queued[id], 1) << id;
  }
  std::cout << "acknowledged before kills: " << acked.size() << ", unanswered resent: " << unanswered
            << ", stored: " << stored.queued_total << "\n";
}

}  // namespace
}  // namespace psa::test
