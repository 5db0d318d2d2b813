// A signed remote config applied to the real pms-agent while 16 HL7 senders stream over MLLP
// to two hl7-mllp listeners: nothing acknowledged (AA) is lost, the listener whose settings did
// not change keeps every connection, the changed one hands its senders over after their pending
// ACKs; a config whose listener cannot bind is rolled back while the old listener keeps serving.
#include <gtest/gtest.h>

#include "hl7_samples.h"
#include "psa/adapters/hl7/mllp_client.h"
#include "remote_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

json::Value mllpAdapter(const std::string& name, int port, int idle_timeout_s = 600) {
  json::Value a = json::Value::object();
  a.set("name", json::Value::string(name));
  a.set("type", json::Value::string("hl7-mllp"));
  a.set("vendor", json::Value::string("cerner"));
  a.set("listen", json::Value::string("127.0.0.1:" + std::to_string(port)));
  a.set("ack_mode", json::Value::string("original"));
  a.set("idle_timeout_s", json::Value::integer(idle_timeout_s));
  return a;
}

/// One HL7 sender thread: sends ADT^A01 messages with control ids "<name>-<n>" one at a time
/// over one MLLP connection; on a connection error it reconnects and sends the unacknowledged
/// message again (the listener recognises a resend and does not queue it twice).
class MllpSender {
 public:
  MllpSender(std::string name, int port) : name_(std::move(name)), port_(port) {
    thread_ = std::thread([this] { run(); });
  }
  ~MllpSender() { stop(); }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  size_t acked() const {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  std::set<std::string> ackedIds() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  int reconnects() const { return reconnects_; }
  std::vector<std::string> problems() const {
    std::lock_guard lock(mu_);
    return problems_;
  }

 private:
  void run() {
    adapters::hl7::MllpClientPtr client;
    std::string pending;  // control id awaiting its ACK
    uint64_t seq = 0;
    while (!stopping_) {
      if (!client) {
        adapters::hl7::MllpClientOptions o;
        o.host = "127.0.0.1";
        o.port = static_cast<uint16_t>(port_);
        o.timeout = std::chrono::seconds(10);
        auto c = adapters::hl7::MllpClient::connect(o);
        if (!c) {
          std::this_thread::sleep_for(20ms);  // load generator back-off while a listener is handed over
          continue;
        }
        client = std::move(c).value();
        if (connected_once_) {
          ++reconnects_;
        }
        connected_once_ = true;
      }
      if (pending.empty()) {
        pending = name_ + "-" + std::to_string(seq++);
      }
      auto raw = client->exchange(adtMessage(pending, "DOE", 600));
      if (!raw) {
        client.reset();  // closed by a stopping listener: resend `pending` on a new connection
        continue;
      }
      auto ack = adapters::hl7::summarizeAck(*raw);
      std::lock_guard lock(mu_);
      if (!ack || ack->control_id != pending || ack->code != "AA") {
        problems_.push_back(pending + ": " + (ack ? ack->code + " " + ack->text : "unreadable ACK"));
      } else {
        acked_.insert(pending);
      }
      pending.clear();
      std::this_thread::sleep_for(10ms);  // ~50-100 messages/s per sender
    }
  }

  std::string name_;
  int port_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> reconnects_{0};
  bool connected_once_ = false;
  mutable std::mutex mu_;
  std::set<std::string> acked_;
  std::vector<std::string> problems_;
};

std::set<std::string> cloudControlIds(const CloudSim& sim) {
  std::set<std::string> ids;
  for (const auto& [msg_id, m] : sim.unique()) {
    ids.insert(controlIdOf(m.payload));
  }
  return ids;
}

std::vector<std::string> names(const json::Value& v, const char* key) {
  std::vector<std::string> out;
  if (const json::Value* list = v.find(key)) {
    for (const auto& n : list->items()) {
      out.push_back(n.asString());
    }
  }
  return out;
}

TEST(RemoteMllp, ConfigAppliedWhileSixteenMllpSendersStream) {
  RemoteFixture f;
  const int pa = freePort(), pb = freePort(), pc = freePort();
  f.agent->config().set("adapters", json::Value::array({mllpAdapter("adt-a", pa), mllpAdapter("adt-b", pb)}));
  ASSERT_TRUE(f.startAgent()) << f.agent->log();

  std::vector<std::unique_ptr<MllpSender>> senders;
  for (int i = 0; i < 16; ++i) {
    senders.push_back(std::make_unique<MllpSender>((i < 8 ? "A" : "B") + std::to_string(i), i < 8 ? pa : pb));
  }
  auto allAckedAtLeast = [&](const std::vector<size_t>& base, size_t more) {
    for (size_t i = 0; i < senders.size(); ++i) {
      if (senders[i]->acked() < base[i] + more) {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(waitFor([&] { return allAckedAtLeast(std::vector<size_t>(16, 0), 20); }, 60s)) << f.agent->log();

  // adt-a unchanged, adt-b changed (same port: handed over), adt-c new.
  json::Value r = f.pushConfig(adaptersConfig({mllpAdapter("adt-a", pa), mllpAdapter("adt-b", pb, 300),
                                               mllpAdapter("adt-c", pc)}), 1);
  ASSERT_EQ(r.getString("result"), "applied") << json::serialize(r) << f.agent->log();
  EXPECT_EQ(names(r, "unchanged"), std::vector<std::string>{"adt-a"});
  EXPECT_EQ(names(r, "replaced"), std::vector<std::string>{"adt-b"});
  EXPECT_EQ(names(r, "started"), std::vector<std::string>{"adt-c"});
  EXPECT_TRUE(canConnect("127.0.0.1", pc));

  std::vector<size_t> base;
  for (const auto& s : senders) {
    base.push_back(s->acked());
  }
  ASSERT_TRUE(waitFor([&] { return allAckedAtLeast(base, 20); }, 60s));

  // A listener moved onto a port something else holds: rolled back; adt-a keeps serving.
  const int blocked = freePort();
  int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(blocked));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(holder, 4), 0);
  r = f.pushConfig(adaptersConfig({mllpAdapter("adt-a", blocked), mllpAdapter("adt-b", pb, 300),
                                   mllpAdapter("adt-c", pc)}), 2);
  EXPECT_EQ(r.getString("reason"), "apply_failed") << json::serialize(r);
  ::close(holder);
  base.clear();
  for (const auto& s : senders) {
    base.push_back(s->acked());
  }
  ASSERT_TRUE(waitFor([&] { return allAckedAtLeast(base, 10); }, 60s));

  for (auto& s : senders) {
    s->stop();
  }
  for (size_t i = 0; i < senders.size(); ++i) {
    EXPECT_TRUE(senders[i]->problems().empty()) << "sender " << i << ": " << senders[i]->problems().front();
    if (i < 8) {
      EXPECT_EQ(senders[i]->reconnects(), 0) << "sender " << i << " of the unchanged listener lost its connection";
    } else {
      EXPECT_GE(senders[i]->reconnects(), 1) << "sender " << i << " should have been handed over";
    }
  }
  std::set<std::string> missing;
  EXPECT_TRUE(waitFor([&] {
    const auto got = cloudControlIds(*f.sim);
    missing.clear();
    for (const auto& s : senders) {
      for (const auto& id : s->ackedIds()) {
        if (got.count(id) == 0) {
          missing.insert(id);
        }
      }
    }
    return missing.empty();
  }, 60s)) << missing.size() << " acknowledged messages never reached the cloud, e.g. " << *missing.begin();
  size_t total = 0;
  for (const auto& s : senders) {
    total += s->acked();
  }
  // Resends of a message whose ACK was lost are recognised, not queued twice (only a sender
  // stopped in the middle of a resend may leave one committed but unacknowledged message).
  EXPECT_GE(f.sim->unique().size(), total);
  EXPECT_LE(f.sim->unique().size(), total + senders.size());
  EXPECT_EQ(f.agent->stop(), 0);
}

}  // namespace
}  // namespace psa::test
