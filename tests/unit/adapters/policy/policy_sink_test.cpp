// PolicySink in front of the real store: what is committed is the payload after the policy
// (records and dead letters), a resend is still recognised as a duplicate, counts follow the
// commits, and a new policy applies to the next batch.
#include "psa/adapters/policy/policy_sink.h"

#include <gtest/gtest.h>

#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/message.h"
#include "test_store.h"
#include "test_support.h"

namespace psa::adapters::policy {
namespace {

const std::string kMsg =
    "MSH|^~\\&|A|B|C|D|20260101||ADT^A08|CTRL1|P|2.5\r"
    "PID|1||MRN1^^^H^MR||DOE^JANE||||||||||||||987-65-4321\r";

store::Record hl7Record() {
  store::Record r;
  r.source = "cerner-adt";
  r.vendor = "cerner";
  r.kind = store::Kind::patient;
  r.format = std::string(store::format::kHl7v2);
  r.payload = Sensitive<std::string>(kMsg);
  hl7::Message m;
  EXPECT_TRUE(m.parse(kMsg));
  r.dedupe_identity = Sensitive<std::string>(hl7::dedupeIdentity(m));
  return r;
}

TEST(PolicySink, CommitsThePayloadAfterThePolicyAndKeepsDedupe) {
  test::TempDir dir("psa-policy-sink");
  test::TestStore store(dir.path());
  PolicySink sink(store.store(), *FieldPolicy::build({}));

  store::AppendBatch batch;
  batch.records.push_back(hl7Record());
  store::DeadLetterInput dead;
  dead.record = hl7Record();
  dead.record.format = std::string(store::format::kBinary);
  dead.record.payload = Sensitive<std::string>("2,ROE,123-45-6789,EXTRA");
  dead.record.dedupe_identity.reset();
  dead.reason = "row 2: ragged";
  batch.dead.push_back(std::move(dead));
  auto r = sink.appendSync(std::move(batch));
  ASSERT_TRUE(r) << r.error().message;
  auto stored = store.store().reveal(r->records[0].msg_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->reveal().find("987-65-4321"), std::string::npos);
  EXPECT_NE(stored->reveal().find("|*******4321\r"), std::string::npos);
  auto stored_dead = store.store().reveal(r->dead_ids[0]);
  ASSERT_TRUE(stored_dead);
  EXPECT_EQ(stored_dead->reveal(), "2,ROE,*******6789,EXTRA");
  EXPECT_EQ(sink.totals().all.masked, 2u);
  EXPECT_EQ(sink.totals().by_source.at("cerner-adt").masked, 2u);

  // The sender resends the same message: the identity is of the received bytes, so it is
  // recognised although the stored copy differs.
  store::AppendBatch again;
  again.records.push_back(hl7Record());
  auto r2 = sink.appendSync(std::move(again));
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->records[0].duplicate);
  EXPECT_EQ(r2->records[0].msg_id, r->records[0].msg_id);

  // A new policy applies to the next batch.
  PolicySettings off;
  off.default_ssn_mask = false;
  sink.setPolicy(*FieldPolicy::build(off));
  store::AppendBatch plain;
  plain.records.push_back(hl7Record());
  plain.records[0].dedupe_identity.reset();
  auto r3 = sink.appendSync(std::move(plain));
  ASSERT_TRUE(r3);
  EXPECT_EQ(store.store().reveal(r3->records[0].msg_id)->reveal(), kMsg);
  EXPECT_EQ(sink.totals().all.masked, 2u);  // a duplicate stores nothing new: not counted
}

}  // namespace
}  // namespace psa::adapters::policy
