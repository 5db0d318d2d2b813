#include "test_store.h"

#include <stdexcept>

namespace psa::test {

TestStore::TestStore(std::filesystem::path dir)
    : db_(dir / "queue.db"), key_(dir / "queue.key") {
  std::filesystem::create_directories(dir);
  open();
}

TestStore::~TestStore() { close(); }

void TestStore::open() {
  store::StoreOptions o;
  o.db_path = db_;
  o.key_file = key_;
  o.retain_delivered = std::chrono::hours(1);
  auto s = store::SqliteStore::open(std::move(o));
  if (!s) {
    throw std::runtime_error("TestStore: " + s.error().describe());
  }
  store_ = std::move(s).value();
  if (listener_) {
    store_->setDeliverableListener(listener_);
  }
}

void TestStore::close() {
  if (store_) {
    store_->close();
    store_.reset();
  }
}

void TestStore::reopen() {
  close();
  open();
}

std::vector<std::string> TestStore::append(std::vector<store::Record> records) {
  std::vector<std::string> ids;
  ids.reserve(records.size());
  for (size_t i = 0; i < records.size(); i += 1000) {
    store::AppendBatch batch;
    for (size_t j = i; j < std::min(records.size(), i + 1000); ++j) {
      batch.records.push_back(std::move(records[j]));
    }
    auto r = store_->appendSync(std::move(batch));
    if (!r) {
      throw std::runtime_error("TestStore append: " + r.error().describe());
    }
    for (auto& a : r->records) {
      ids.push_back(a.msg_id);
    }
  }
  appended_ += ids.size();
  return ids;
}

TestStore::Counts TestStore::counts() {
  auto st = store_->stats();
  if (!st) {
    throw std::runtime_error("TestStore stats: " + st.error().describe());
  }
  Counts c;
  c.pending = st->pending;
  c.leased = st->leased;
  c.dead = st->dead;
  c.delivered = appended_ >= c.pending + c.dead ? appended_ - c.pending - c.dead : 0;
  c.ack_calls = ack_calls_;
  c.acked_records = acked_records_;
  c.lease_calls = lease_calls_;
  return c;
}

std::map<std::string, std::string> TestStore::deadLetters() {
  std::map<std::string, std::string> out;
  int64_t after = 0;
  while (true) {
    auto page = store_->list(store::ListFilter::dead, after, 500);
    if (!page || page->empty()) {
      break;
    }
    for (const auto& info : *page) {
      out[info.msg_id] = info.reason;
      after = info.seq;
    }
  }
  return out;
}

uint32_t TestStore::attempts(const std::string& msg_id) {
  auto info = store_->show(msg_id);
  return info ? info->attempts : 0;
}

void TestStore::lease(size_t max, store::LeaseCallback done) {
  ++lease_calls_;
  store_->lease(max, std::move(done));
}

void TestStore::ack(std::vector<int64_t> seqs, store::StatusCallback done) {
  ++ack_calls_;
  acked_records_ += seqs.size();
  store_->ack(std::move(seqs), std::move(done));
}

void TestStore::nack(int64_t seq, std::chrono::milliseconds retry_after, std::string reason,
                     store::StatusCallback done) {
  store_->nack(seq, retry_after, std::move(reason), std::move(done));
}

void TestStore::deadLetter(int64_t seq, std::string reason, store::StatusCallback done) {
  store_->deadLetter(seq, std::move(reason), std::move(done));
}

void TestStore::releaseAll(store::StatusCallback done) { store_->releaseAll(std::move(done)); }

void TestStore::setDeliverableListener(std::function<void()> notify) {
  listener_ = notify;
  store_->setDeliverableListener(std::move(notify));
}

}  // namespace psa::test
