// Writes the store fixture of this release into DIR (tests/support/store_fixtures.h says what it
// holds): queue.db only; the key is the fixed test key. Run it once per schema change from the
// release being captured, and commit DIR/queue.db as tests/data/store/v<N>/queue.db:
//
//   build/bin/make_store_fixture /tmp/fx && cp /tmp/fx/queue.db tests/data/store/v1/
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>

#include "../support/store_fixtures.h"
#include "psa/store/sqlite_store.h"

namespace fx = psa::test::store_fixture;
namespace fs = std::filesystem;
using namespace psa::store;

namespace {

int fail(const char* what, const psa::Error& e) {
  std::fprintf(stderr, "make_store_fixture: %s: %s\n", what, e.describe().c_str());
  return 1;
}

Record fixtureRecord(size_t n) {
  Record r;
  r.source = n % 2 == 0 ? "fixture-adt" : "fixture-files";
  r.vendor = n % 2 == 0 ? "cerner" : "eclinicalworks";
  r.kind = kAllKinds[n % kAllKinds.size()];
  r.format = std::string(format::kHl7v2);
  r.received_at_ms = 1'796'601'600'000 + static_cast<int64_t>(n) * 1000;  // 2026-12-07
  r.payload = psa::Sensitive<std::string>(fx::payload(n));
  r.dedupe_identity = psa::Sensitive<std::string>(fx::identity(n));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_store_fixture DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (auto st = SqliteStore::importKeys(dir / "queue.key", fx::kKeyFileText, "fixture key"); !st) {
    return fail("key file", st.error());
  }

  StoreOptions o;
  o.db_path = dir / "queue.db";
  o.key_file = dir / "queue.key";
  auto opened = SqliteStore::open(o);
  if (!opened) {
    return fail("open", opened.error());
  }
  auto store = std::move(opened).value();

  // The delivered ones first, so a lease of kDelivered takes exactly them.
  AppendBatch batch;
  for (size_t n = 0; n < fx::kDelivered + fx::kPending; ++n) {
    batch.records.push_back(fixtureRecord(n));
  }
  for (size_t d = 0; d < fx::kDead; ++d) {
    Record r = fixtureRecord(1000 + d);
    r.dedupe_identity.reset();
    batch.dead.push_back(DeadLetterInput{std::move(r), "fixture: bad segment"});
  }
  batch.watermarks.push_back({fx::kWatermarkScope, fx::kWatermarkKey, fx::kWatermarkValue});
  auto appended = store->appendSync(std::move(batch));
  if (!appended) {
    return fail("append", appended.error());
  }

  auto lease = [&](size_t n) {
    std::promise<std::vector<Leased>> p;
    store->lease(n, [&p](psa::Result<std::vector<Leased>> r) {
      p.set_value(r ? std::move(r).value() : std::vector<Leased>{});
    });
    return p.get_future().get();
  };
  auto wait = [](auto call) {
    std::promise<psa::Status> p;
    call([&p](psa::Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  };
  std::vector<Leased> first = lease(fx::kDelivered + fx::kRetrying);
  if (first.size() != fx::kDelivered + fx::kRetrying) {
    std::fprintf(stderr, "make_store_fixture: leased %zu\n", first.size());
    return 1;
  }
  std::vector<int64_t> acks;
  for (size_t k = 0; k < fx::kDelivered; ++k) {
    acks.push_back(first[k].seq);
  }
  if (auto st = wait([&](auto done) { store->ack(acks, done); }); !st) {
    return fail("ack", st.error());
  }
  for (size_t k = fx::kDelivered; k < first.size(); ++k) {
    auto st = wait([&](auto done) {
      store->nack(first[k].seq, std::chrono::hours(1), "fixture: broker away", done);
    });
    if (!st) {
      return fail("nack", st.error());
    }
  }
  AuditEntry e;
  e.actor = "fixture";
  e.action = "fixture.written";
  e.detail = "{}";
  if (auto st = wait([&](auto done) { store->audit(e, done); }); !st) {
    return fail("audit", st.error());
  }
  store->close();
  if (fs::exists(dir / "queue.db-wal")) {  // close() checkpoints: one self-contained file
    std::fprintf(stderr, "make_store_fixture: the WAL was not checkpointed\n");
    return 1;
  }
  std::printf("wrote %s\n", (dir / "queue.db").c_str());
  return 0;
}
