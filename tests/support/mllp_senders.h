// Shared pieces of the MLLP integration and crash tests (header-only; link psa::agent): an agent config with one hl7-mllp
// adapter, senders on real sockets, and ACK bookkeeping.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent_fixture.h"
#include "hl7_samples.h"
#include "psa/adapters/hl7/mllp.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test {

/// A whole agent config: one hl7-mllp adapter "pms-adt" listening on 127.0.0.1:`port`, with
/// `adapter_extra` members merged into the adapter and `store` as the store section.
inline json::Value mllpAgentConfig(int port, const std::string& adapter_extra = "{}",
                                   const std::string& store = "{}") {
  auto doc = json::parse(R"({"agent":{"id":"practice-0042","tenant":"acme-health","log_level":"debug"},
    "adapters":[{"name":"pms-adt","type":"hl7-mllp","vendor":"cerner","ack_mode":"original"}]})")
                 .value();
  json::Value& adapter = doc.find("adapters")->items()[0];
  adapter.set("listen", json::Value::string("127.0.0.1:" + std::to_string(port)));
  const auto extra = json::parse(adapter_extra);
  if (!extra) {
    throw std::runtime_error("mllpAgentConfig: bad adapter_extra: " + adapter_extra);
  }
  for (const auto& [k, v] : extra.value().members()) {
    adapter.set(k, v);
  }
  auto store_section = json::parse(store);
  if (!store_section) {
    throw std::runtime_error("mllpAgentConfig: bad store: " + store);
  }
  doc.set("store", std::move(store_section).value());
  return doc;
}

inline adapters::hl7::MllpClientPtr mllpConnect(int port,
                                                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  adapters::hl7::MllpClientOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(port);
  o.timeout = timeout;
  auto c = adapters::hl7::MllpClient::connect(o);
  return c ? std::move(c).value() : nullptr;
}

/// Control ids that were acknowledged AA, shared by sender threads.
class AckLedger {
 public:
  void attempted(const std::string& id) {
    std::lock_guard lock(mu_);
    attempted_.insert(id);
  }
  std::set<std::string> attempted() {
    std::lock_guard lock(mu_);
    return attempted_;
  }
  void accepted(const std::string& id) {
    std::lock_guard lock(mu_);
    acked_.insert(id);
  }
  void other(const std::string& id, const std::string& code) {
    std::lock_guard lock(mu_);
    others_.emplace_back(id + ":" + code);
  }
  std::set<std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::vector<std::string> others() {
    std::lock_guard lock(mu_);
    return others_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }

 private:
  std::mutex mu_;
  std::set<std::string> acked_;
  std::set<std::string> attempted_;
  std::vector<std::string> others_;
};

/// One sender: sends `ids` over one connection with up to `window` messages in flight and
/// records each answer. Stops at the first connection error (returns false then).
inline bool sendPipelined(int port, const std::vector<std::string>& ids, size_t window,
                          AckLedger& ledger, std::string_view family = "DOE",
                          size_t size = 1024) {
  auto c = mllpConnect(port);
  if (!c) {
    return false;
  }
  size_t sent = 0;
  size_t answered = 0;
  while (answered < ids.size()) {
    std::string burst;
    while (sent < ids.size() && sent - answered < window) {
      ledger.attempted(ids[sent]);
      adapters::hl7::mllpFrameTo(adtMessage(ids[sent], family, size), burst);
      ++sent;
    }
    if (!burst.empty() && !c->sendRaw(burst)) {
      return false;
    }
    auto raw = c->receive();
    if (!raw) {
      return false;
    }
    auto s = adapters::hl7::summarizeAck(*raw);
    if (!s) {
      return false;
    }
    if (s->control_id != ids[answered]) {
      ledger.other(ids[answered], "out-of-order:" + s->control_id);
      return false;
    }
    if (s->code == "AA") {
      ledger.accepted(s->control_id);
    } else {
      ledger.other(s->control_id, s->code);
    }
    ++answered;
  }
  return true;
}

}  // namespace psa::test
