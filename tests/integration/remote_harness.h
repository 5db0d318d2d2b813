// Shared pieces of the remote-management tests: a real mosquitto with mutual TLS, the real
// pms-cloud-sim listening for records and reports (config/state, cmd/result, status, audit),
// an Ed25519 signing key for the "cloud", the real agent process (pms-agent, or
// agent_testsources for staged-apply tests with the line-listener "test-tcp" adapter), and
// senders that stream lines to test-tcp listeners and track which ones were acknowledged.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "agent_fixture.h"
#include "cloud_sim.h"
#include "cloudlink_harness.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"

namespace psa::test {

inline constexpr const char* kRemoteAgent = "practice-0042";

/// One report line of `pms-cloud-sim listen --reports-out`.
struct Report {
  std::string type;  ///< config/state, cmd/result, status, audit
  json::Value payload;
  json::Value audit_check;
  bool retained = false;
};

inline std::vector<Report> readReports(const std::filesystem::path& file) {
  std::vector<Report> out;
  const std::string text = readFile(file);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      break;
    }
    auto v = json::parse(std::string_view(text).substr(pos, nl - pos));
    pos = nl + 1;
    if (!v) {
      continue;
    }
    Report r;
    r.type = v->getString("type");
    if (const json::Value* p = v->find("payload")) {
      r.payload = *p;
    }
    if (const json::Value* c = v->find("audit_check")) {
      r.audit_check = *c;
    }
    r.retained = v->getBool("retained");
    out.push_back(std::move(r));
  }
  return out;
}

class RemoteFixture {
 public:
  explicit RemoteFixture(bool test_sources = false)
      : env({}, "psa-remote"), key(std::move(agent::SigningKey::generate()).value()) {
    pub_file = env.tmp / "cloud-signing.pub.pem";
    writeFile(pub_file, key.publicPem());
    reports_file = env.tmp / "reports.jsonl";
    CloudSimOptions o = env.simOptions();
    o.extra_args = {"--reports-out", reports_file.string()};
    sim = std::make_unique<CloudSim>(o);
    state = env.tmp / "state";
    agent = std::make_unique<AgentProcess>(state, baseConfig());
    if (test_sources) {
      agent->setProgram(binary("agent_testsources"));
    }
  }

  json::Value baseConfig() {
    const CertFiles& cert = env.tls.client(kRemoteAgent);
    json::Value cfg = *json::parse(
        R"({"agent":{"id":"practice-0042","tenant":"acme-health","log_level":"info"}})");
    json::Value cloud = json::Value::object();
    cloud.set("url", json::Value::string(env.broker->url()));
    cloud.set("ca_file", json::Value::string(env.tls.ca().cert.string()));
    cloud.set("cert_file", json::Value::string(cert.cert.string()));
    cloud.set("key_file", json::Value::string(cert.key.string()));
    cloud.set("config_signing_key", json::Value::string(pub_file.string()));
    cloud.set("keepalive_s", json::Value::integer(5));
    cfg.set("cloud", std::move(cloud));
    cfg.set("adapters", json::Value::array());
    return cfg;
  }

  /// Starts the agent and waits until its link is connected and subscribed: the status it
  /// publishes on connect follows its SUBSCRIBE on the same connection, so once the status
  /// arrives, documents published now reach the agent.
  bool startAgent() {
    const size_t before = reports("status").size();
    if (!agent->start()) {
      return false;
    }
    return waitFor([&] {
      auto list = reports("status");
      for (size_t i = before; i < list.size(); ++i) {
        if (!list[i].retained && list[i].payload.getString("state") == "online") {
          return true;
        }
      }
      return false;
    }, std::chrono::seconds(20));
  }

  std::string topic(const std::string& suffix) const {
    return std::string("ps/") + kTenant + "/" + kRemoteAgent + "/" + suffix;
  }

  /// A signed config document for this agent.
  std::string configDoc(const json::Value& config, int64_t version, int64_t expires_in_ms = 300000,
                        int64_t issued_offset_ms = 0, const std::string& agent_id = kRemoteAgent) const {
    const int64_t now = Clock::system()->nowMs() + issued_offset_ms;
    return key.envelope(agent::makeConfigPayload(agent_id, version, now, now + expires_in_ms, config));
  }

  std::string commandDoc(const std::string& name, const json::Value& args, const std::string& id,
                         int64_t expires_in_ms = 300000, const std::string& agent_id = kRemoteAgent,
                         int64_t issued_offset_ms = 0) const {
    const int64_t now = Clock::system()->nowMs() + issued_offset_ms;
    return key.envelope(agent::makeCommandPayload(agent_id, id, now, now + expires_in_ms, name, args));
  }

  std::vector<Report> reports(const std::string& type) const {
    std::vector<Report> out;
    for (auto& r : readReports(reports_file)) {
      if (r.type == type) {
        out.push_back(std::move(r));
      }
    }
    return out;
  }

  /// Publishes `doc` on P/config/set and returns the next P/config/state report (null on timeout).
  json::Value pushConfig(const std::string& doc, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const size_t before = reports("config/state").size();
    auto r = mosquittoPub(env, topic("config/set"), doc);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    json::Value answer;
    waitFor([&] {
      auto list = reports("config/state");
      if (list.size() > before) {
        answer = list[before].payload;
        return true;
      }
      return false;
    }, timeout);
    return answer;
  }

  json::Value pushConfig(const json::Value& config, int64_t version) {
    return pushConfig(configDoc(config, version));
  }

  /// Publishes a command document on P/cmd/{name} and returns the first result with `id` (or,
  /// with an empty id, the next result).
  json::Value sendCommandDoc(const std::string& name, const std::string& doc, const std::string& id,
                             std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    const size_t before = reports("cmd/result").size();
    auto r = mosquittoPub(env, topic("cmd/" + name), doc);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    json::Value answer;
    waitFor([&] {
      auto list = reports("cmd/result");
      for (size_t i = before; i < list.size(); ++i) {
        if (id.empty() || list[i].payload.getString("id") == id) {
          answer = list[i].payload;
          return true;
        }
      }
      return false;
    }, timeout);
    return answer;
  }

  json::Value command(const std::string& name, const json::Value& args = json::Value::object()) {
    const std::string id = "cmd-" + std::to_string(++command_seq_) + "-" + name;
    return sendCommandDoc(name, commandDoc(name, args, id), id);
  }

  /// The latest status report's "config" object (after `pred` holds on it), or null.
  json::Value waitStatusConfig(const std::function<bool(const json::Value&)>& pred,
                               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    json::Value found;
    waitFor([&] {
      auto list = reports("status");
      for (auto it = list.rbegin(); it != list.rend(); ++it) {
        const json::Value* c = it->payload.find("config");
        if (c != nullptr && pred(*c)) {
          found = *c;
          return true;
        }
        break;  // only the newest counts
      }
      return false;
    }, timeout);
    return found;
  }

  CloudEnv env;
  agent::SigningKey key;
  std::filesystem::path pub_file;
  std::filesystem::path reports_file;
  std::filesystem::path state;
  std::unique_ptr<CloudSim> sim;
  std::unique_ptr<AgentProcess> agent;

 private:
  int command_seq_ = 0;
};

/// A test-tcp adapter object.
inline json::Value tcpAdapter(const std::string& name, int port, const std::string& tag = "",
                              bool fail_start = false) {
  json::Value a = json::Value::object();
  a.set("name", json::Value::string(name));
  a.set("type", json::Value::string("test-tcp"));
  a.set("vendor", json::Value::string("generic"));
  a.set("listen", json::Value::string("127.0.0.1:" + std::to_string(port)));
  a.set("kind", json::Value::string("patient"));
  if (!tag.empty()) {
    a.set("tag", json::Value::string(tag));
  }
  if (fail_start) {
    a.set("fail_start", json::Value::boolean(true));
  }
  return a;
}

inline json::Value adaptersConfig(std::vector<json::Value> adapters) {
  json::Value c = json::Value::object();
  c.set("adapters", json::Value::array(std::move(adapters)));
  return c;
}

/// Streams "MSG <name>-<n> ..." lines to a test-tcp listener from its own thread, at most
/// `window` unacknowledged at a time, resending unacknowledged lines after a reconnect. Tracks
/// which ids the agent acknowledged (ACK = durably stored) and how often the connection dropped.
class LineSender {
 public:
  LineSender(std::string name, int port, std::chrono::milliseconds pace = std::chrono::milliseconds(20),
             size_t window = 4)
      : name_(std::move(name)), port_(port), pace_(pace), window_(window) {
    thread_ = std::thread([this] { run(); });
  }
  ~LineSender() { stop(std::chrono::seconds(1)); }

  /// Stops sending new lines, waits up to `drain` for outstanding ACKs, joins.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(20)) {
    if (!thread_.joinable()) {
      return;
    }
    drain_deadline_ = std::chrono::steady_clock::now() + drain;
    stopping_ = true;
    thread_.join();
  }

  std::set<std::string> acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  size_t ackedCount() const {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  size_t unacked() const {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  int disconnects() const { return disconnects_; }
  int connects() const { return connects_; }
  bool connected() const { return fd_ >= 0; }

 private:
  int connectTo() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  bool sendLine(int fd, const std::string& line) {
    size_t off = 0;
    while (off < line.size()) {
      ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  void dropConnection(int& fd) {
    ::close(fd);
    fd = -1;
    fd_ = -1;
    ++disconnects_;
    buf_.clear();
    std::lock_guard lock(mu_);
    for (auto& [id, line] : pending_) {
      resend_.push_back(id);
    }
  }

  void run() {
    int fd = -1;
    auto next_send = std::chrono::steady_clock::now();
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard lock(mu_);
        if (stopping_ && (pending_.empty() || now > drain_deadline_)) {
          break;
        }
      }
      if (fd < 0) {
        fd = connectTo();
        if (fd < 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // load generator back-off
          continue;
        }
        fd_ = fd;
        ++connects_;
        std::vector<std::string> again;
        {
          std::lock_guard lock(mu_);
          again.swap(resend_);
        }
        bool ok = true;
        for (const auto& id : again) {
          std::string line;
          {
            std::lock_guard lock(mu_);
            auto it = pending_.find(id);
            if (it == pending_.end()) {
              continue;
            }
            line = it->second;
          }
          ok = ok && sendLine(fd, line);
        }
        if (!ok) {
          dropConnection(fd);
          continue;
        }
      }
      bool may_send = false;
      {
        std::lock_guard lock(mu_);
        may_send = !stopping_ && pending_.size() < window_ && now >= next_send;
      }
      if (may_send) {
        const std::string id = name_ + "-" + std::to_string(seq_++);
        const std::string line = "MSG " + id + " payload-of-" + id + "\n";
        {
          std::lock_guard lock(mu_);
          pending_[id] = line;
        }
        next_send = now + pace_;
        if (!sendLine(fd, line)) {
          dropConnection(fd);
          continue;
        }
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5) > 0) {
        char chunk[4096];
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) {
          dropConnection(fd);
          continue;
        }
        buf_.append(chunk, static_cast<size_t>(n));
        size_t nl;
        while ((nl = buf_.find('\n')) != std::string::npos) {
          const std::string line = buf_.substr(0, nl);
          buf_.erase(0, nl + 1);
          if (line.rfind("ACK ", 0) == 0) {
            std::lock_guard lock(mu_);
            const std::string id = line.substr(4);
            pending_.erase(id);
            acked_.insert(id);
          }
        }
      }
    }
    if (fd >= 0) {
      ::close(fd);
      fd_ = -1;
    }
  }

  std::string name_;
  int port_;
  std::chrono::milliseconds pace_;
  size_t window_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::chrono::steady_clock::time_point drain_deadline_{};
  mutable std::mutex mu_;
  std::map<std::string, std::string> pending_;
  std::vector<std::string> resend_;
  std::set<std::string> acked_;
  std::string buf_;
  uint64_t seq_ = 0;
  std::atomic<int> fd_{-1};
  std::atomic<int> disconnects_{0};
  std::atomic<int> connects_{0};
};

/// The ids ("name-n") of every record the cloud received from test-tcp adapters.
inline std::set<std::string> cloudIds(const CloudSim& sim) {
  std::set<std::string> ids;
  for (const auto& [msg_id, m] : sim.unique()) {
    if (m.payload.rfind("MSG ", 0) == 0) {
      const auto sp = m.payload.find(' ', 4);
      ids.insert(m.payload.substr(4, sp - 4));
    }
  }
  return ids;
}

}  // namespace psa::test
