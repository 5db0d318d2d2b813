// The real pms-agent against a real two-node ejabberd cluster (Debian's ejabberd 23.01, whose
// mod_mqtt is an MQTT 5 broker), over TLS, fed over MLLP, seen by the real pms-cloud-sim:
// records arrive exactly once by msg-id through the cluster; SIGKILL of the node the agent is
// connected to moves the agent to the other node and loses nothing; a signed config pushed while
// the agent was away is delivered by its persistent session on the surviving node; passwords
// registered once are checked by every node.
//
// What ejabberd 23.01 does for the contract, and how the setup here works around what it lacks
// (the product is unchanged):
// - Identity: with the listener's tls_verify, a client that sends no password is authenticated by
//   its certificate when its MQTT identity (the user name, or without one the client id) equals
//   the certificate's CN. The agent's client id is its agent id (= its CN): the link gets in with
//   no user name; `check`, which probes as <agent id>-check, needs
//   cloud.username_from_certificate. A client that sends a password is checked against
//   ejabberd's users (ejabberdctl register), certificate or not.
// - User properties, content type, QoS 1 PUBACKs, persistent sessions (clean start off, session
//   expiry, session present, messages queued for an offline client, resumed on another node) and
//   the will work. A session lives in the node that accepted the connection: when that node dies,
//   the session and its queue die with it (the agent resends what was not acknowledged).
// - While a dead node is still counted as running, a PUBLISH on any other node crashes the
//   publishing client's session (mod_mqtt_mnesia:mqtree_multi_match/1 expects an rpc:multicall
//   with no bad nodes), so a simulator sending receipts loses its persistent session and what
//   the broker routes before it resubscribes (PUBACK 0x10, no subscribers). A QoS 1 PUBACK
//   means only that ejabberd routed the message in memory. The failover test therefore runs
//   with cloud.confirm "receipt": records leave the agent's queue on the cloud's receipt.
// - Retained messages are stored cluster-wide, but each node indexes retained topics it saw
//   published (or found at its start): a subscriber on another node does not get a retained
//   message whose topic first appeared after that node started. The tests read P/status from the
//   simulator's live reports, not as a retained message.
// - CONNACK announces topic alias maximum 100, shared subscriptions unavailable, the granted
//   session expiry and the client's keep alive; no receive maximum, maximum packet size or
//   maximum QoS (all unlimited) and no retain available (available). An ACL-denied QoS 1 publish
//   gets PUBACK 0x90 (topic name invalid).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "agent_fixture.h"
#include "cloud_sim.h"
#include "ejabberd_fixture.h"
#include "hl7_samples.h"
#include "mllp_senders.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAgentId = "practice-0042";
constexpr const char* kTenantId = "acme-health";

std::string agentTopic(const std::string& suffix) {
  return std::string("ps/") + kTenantId + "/" + kAgentId + "/" + suffix;
}

/// PKI and a two-node cluster in one temp dir (tests first skip without ejabberd).
struct ClusterEnv {
  explicit ClusterEnv(std::string_view prefix = "psa-ejabberd", EjabberdOptions options = {})
      : tmp(prefix), tls(tmp / "pki") {
    cluster = EjabberdCluster::withMaterial(tls, tmp / "cluster", std::move(options));
  }

  /// A simulator on `node` as `identity`, authenticated by its certificate alone (client id =
  /// CN, no user name).
  std::unique_ptr<CloudSim> sim(size_t node, const std::string& identity,
                                std::vector<std::string> extra_args = {}) {
    CloudSimOptions o = cloudSimOptions(cluster->url(node), tls, tmp / ("sim-" + identity));
    const CertFiles& cert = tls.client(identity);
    o.cert_file = cert.cert;
    o.key_file = cert.key;
    o.client_id = identity;
    o.extra_args = std::move(extra_args);
    return std::make_unique<CloudSim>(o);
  }

  /// mosquitto_pub/_sub arguments for `node` with `identity`'s certificate as `client_id`, and
  /// with `user_name` when not empty. Without a user name ejabberd takes the client id as the
  /// identity (it must be the CN); with one, the client id is free (so a second connection of the
  /// simulator's identity does not take over its session).
  std::vector<std::string> clientArgs(const std::string& program, size_t node,
                                      const std::string& identity, const std::string& client_id,
                                      const std::string& user_name = {}) {
    const CertFiles& c = tls.client(identity);
    std::vector<std::string> args = {
        program, "-V", "mqttv5", "-h", "localhost", "-p", std::to_string(cluster->port(node))};
    args.insert(args.end(), {"--cafile", tls.ca().cert.string()});
    args.insert(args.end(), {"--cert", c.cert.string(), "--key", c.key.string()});
    args.insert(args.end(), {"-i", client_id});
    if (!user_name.empty()) {
      args.insert(args.end(), {"-u", user_name});
    }
    return args;
  }

  /// Publishes `payload` with QoS 1 through `node` as the cloud.
  CommandResult publish(size_t node, const std::string& topic, const std::string& payload) {
    auto args = clientArgs("mosquitto_pub", node, "cloud", "cloud-publisher", "cloud");
    args.insert(args.end(), {"-q", "1", "-s", "-t", topic});
    return runCommand(args, 20s, {}, payload);
  }

  TempDir tmp;
  TlsMaterial tls;
  std::unique_ptr<EjabberdCluster> cluster;
};

// Skipped without ejabberd on a developer's machine; tests/run.sh (and so CI) sets
// PSA_REQUIRE_EJABBERD, where a missing ejabberd is a failure.
#define PSA_SKIP_WITHOUT_EJABBERD()                                                   \
  do {                                                                                \
    const std::string why = EjabberdCluster::unavailableReason();                     \
    if (!why.empty()) {                                                               \
      if (std::getenv("PSA_REQUIRE_EJABBERD") != nullptr) {                           \
        FAIL() << why << " (PSA_REQUIRE_EJABBERD is set; packaging/install-deps.sh)"; \
      }                                                                               \
      GTEST_SKIP() << why << " (packaging/install-deps.sh installs it)";              \
    }                                                                                 \
  } while (false)

/// The agent's config: one hl7-mllp adapter on `mllp_port`, cloud.urls = every node.
json::Value agentConfig(ClusterEnv& env, int mllp_port, const std::string& confirm = "broker") {
  json::Value cfg = mllpAgentConfig(mllp_port);
  cfg.find("agent")->set("log_level", json::Value::string("info"));
  const CertFiles& cert = env.tls.client(kAgentId);
  json::Value cloud = json::Value::object();
  std::vector<json::Value> urls;
  for (const auto& u : env.cluster->urls()) {
    urls.push_back(json::Value::string(u));
  }
  cloud.set("urls", json::Value::array(std::move(urls)));
  cloud.set("ca_file", json::Value::string(env.tls.ca().cert.string()));
  cloud.set("cert_file", json::Value::string(cert.cert.string()));
  cloud.set("key_file", json::Value::string(cert.key.string()));
  cloud.set("confirm", json::Value::string(confirm));
  cloud.set("keepalive_s", json::Value::integer(5));
  cfg.set("cloud", std::move(cloud));
  return cfg;
}

/// What `pms-agent status --json` says about the link.
struct LinkView {
  bool connected = false;
  std::string url;
  std::string last_error;
  int64_t connects = 0;
  int64_t pending = -1;
  int64_t config_version = -1;
};

LinkView linkView(const AgentProcess& agent) {
  LinkView v;
  const CommandResult r = agent.cli({"status", "--json"}, 20s);
  auto doc = json::parse(r.output);
  if (!doc) {
    return v;
  }
  if (const json::Value* c = doc->find("cloud")) {
    v.connected = c->getBool("connected");
    v.url = c->getString("url");
    v.last_error = c->getString("last_error");
    v.connects = c->getInt("connects");
  }
  if (const json::Value* q = doc->find("queue")) {
    v.pending = q->getInt("pending", -1) + q->getInt("leased", 0) + q->getInt("retry", 0);
  }
  if (const json::Value* c = doc->find("config")) {
    const json::Value* ver = c->find("version");
    v.config_version = ver != nullptr && !ver->isNull() ? ver->asInt() : -1;
  }
  return v;
}

/// Waits until the agent's link is connected; returns the node it is connected to (-1: never).
int waitConnectedNode(ClusterEnv& env, const AgentProcess& agent,
                      std::chrono::milliseconds timeout = 30s) {
  int node = -1;
  waitFor(
      [&] {
        const LinkView v = linkView(agent);
        node = v.connected ? env.cluster->nodeOf(v.url) : -1;
        return node >= 0;
      },
      timeout);
  return node;
}

/// The "broker auth" lines of `pms-agent check --json` (one per endpoint): level and text.
std::vector<std::pair<std::string, std::string>> brokerAuthChecks(const AgentProcess& agent) {
  std::vector<std::pair<std::string, std::string>> out;
  const CommandResult r = agent.cli({"check", "--json", "--timeout", "5"});
  auto doc = json::parse(r.output);
  if (!doc || doc->find("checks") == nullptr) {
    out.emplace_back("unparsable", r.output);
    return out;
  }
  for (const auto& c : doc->find("checks")->items()) {
    if (c.getString("name") == "broker auth") {
      out.emplace_back(c.getString("level"), c.getString("text"));
    }
  }
  return out;
}

/// Writes a password file (mode 0600, as the agent requires).
std::filesystem::path passwordFile(const std::filesystem::path& path, const std::string& pw) {
  writeFile(path, pw + "\n");
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

/// The HL7 control id inside a delivered ADT payload ("...|ADT^A01^ADT_A01|<id>|P|...").
std::string controlIdOf(const std::string& payload) {
  const std::string key = "ADT^A01^ADT_A01|";
  const size_t at = payload.find(key);
  if (at == std::string::npos) {
    return {};
  }
  const size_t from = at + key.size();
  return payload.substr(from, payload.find('|', from) - from);
}

/// Control id -> the msg-ids the simulator delivered it under, over every line (duplicates
/// included); every line's sha256 checked.
struct Delivered {
  std::map<std::string, std::set<std::string>> msg_ids;  ///< control id -> msg-ids
  size_t lines = 0;
  size_t sha_bad = 0;
  size_t without_control_id = 0;
};

Delivered delivered(const CloudSim& sim) {
  Delivered d;
  for (const auto& m : sim.messages()) {
    ++d.lines;
    if (!m.sha256_ok) {
      ++d.sha_bad;
    }
    const std::string control = controlIdOf(m.payload);
    if (control.empty()) {
      ++d.without_control_id;
      continue;
    }
    d.msg_ids[control].insert(m.msg_id);
  }
  return d;
}

/// Sends ADT messages with control ids "<prefix>-<n>" to the agent's MLLP port from its own
/// thread, one at a time (each waits for its ACK, i.e. for the agent's fsync), so records keep
/// flowing for a while; records the ids acknowledged AA.
class PacedFeed {
 public:
  PacedFeed(int port, std::string prefix, size_t count)
      : port_(port), prefix_(std::move(prefix)), count_(count) {
    thread_ = std::thread([this] { run(); });
  }
  ~PacedFeed() { join(); }
  void join() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  bool done() const { return done_; }
  bool ok() const { return ok_; }
  size_t ackedCount() { return ledger_.count(); }
  std::set<std::string> acked() { return ledger_.acked(); }
  std::vector<std::string> others() { return ledger_.others(); }

 private:
  void run() {
    std::vector<std::string> ids;
    for (size_t i = 0; i < count_; ++i) {
      ids.push_back(prefix_ + "-" + std::to_string(i));
    }
    ok_ = sendPipelined(port_, ids, 1, ledger_, "DOE", 600);
    done_ = true;
  }

  int port_;
  std::string prefix_;
  size_t count_;
  AckLedger ledger_;
  std::atomic<bool> done_{false};
  std::atomic<bool> ok_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------

TEST(EjabberdCluster, NodesJoinAndAKilledNodeRejoinsWithoutLeavingProcesses) {
  PSA_SKIP_WITHOUT_EJABBERD();
  ClusterEnv env("psa-ejabberd-nodes");
  EjabberdCluster& cluster = *env.cluster;
  const std::vector<std::string> both = {cluster.nodeName(0), cluster.nodeName(1)};
  EXPECT_EQ(cluster.clusterView(1), both) << cluster.logTails();

  const pid_t beam = cluster.pid(0);
  cluster.kill(0);
  EXPECT_FALSE(cluster.running(0));
  EXPECT_NE(::kill(beam, 0), 0);
  EXPECT_TRUE(waitFor([&] { return cluster.clusterView(1) == std::vector{both[1]}; }, 20s))
      << cluster.logTails();

  cluster.start(0);  // returns once it lists both nodes again
  EXPECT_EQ(cluster.clusterView(1), both) << cluster.logTails();
  EXPECT_TRUE(canConnect("127.0.0.1", cluster.port(0)));

  // Destruction leaves nothing behind: no process with our spool (beam.smp) or epmd port.
  const std::string dir = cluster.dir().string();
  const std::string epmd = std::string("-port") + '\0' + std::to_string(cluster.epmdPort()) + '\0';
  auto ours = [&] {
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string pid = e.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      const std::string cmd = readFile(e.path() / "cmdline");
      if (cmd.find(dir) != std::string::npos || cmd.find(epmd) != std::string::npos) {
        found.push_back(pid + ": " + cmd);
      }
    }
    return found;
  };
  EXPECT_EQ(ours().size(), 3u);  // two beam.smp and epmd: the scan sees them
  env.cluster.reset();
  const std::vector<std::string> left = ours();
  EXPECT_TRUE(left.empty()) << left.front();
}

TEST(EjabberdCluster, CarriesTheContractsPropertiesAndIdentitiesAcrossNodes) {
  PSA_SKIP_WITHOUT_EJABBERD();
  ClusterEnv env("psa-ejabberd-props");
  // A subscriber on node 2 receives what the agent's identity publishes on node 1, with the
  // MQTT 5 user properties and the content type.
  auto sub = env.clientArgs("mosquitto_sub", 1, "cloud", "cloud-observer", "cloud");
  sub.insert(sub.end(), {"-q", "1", "-C", "1", "-W", "15", "-F", "%C|%P|%p"});
  sub.insert(sub.end(), {"-t", agentTopic("up/patient")});
  Process::Options so;
  so.argv = sub;
  so.stdout_file = env.tmp / "sub.out";
  Process subscriber(std::move(so));
  ASSERT_TRUE(waitFor(
      [&] {
        return env.cluster->log(1).find("Opened MQTT session for cloud@localhost/cloud-observer") !=
               std::string::npos;
      },
      15s))
      << env.cluster->logTails();
  auto publishAsAgent = [&](const std::string& client_id, const std::string& user_name,
                            const std::string& topic) {
    auto args = env.clientArgs("mosquitto_pub", 0, kAgentId, client_id, user_name);
    args.insert(args.end(), {"-d", "-q", "1", "-t", topic, "-m", "MSH|hello"});
    args.insert(args.end(), {"-D", "publish", "user-property", "msg-id", "01TESTMSGID"});
    args.insert(args.end(), {"-D", "publish", "user-property", "sha256", "abc"});
    args.insert(args.end(), {"-D", "publish", "content-type", "x-application/hl7-v2+er7"});
    return runCommand(args, 20s);
  };
  // The subscription follows the session by a packet or two: publish until it lands.
  std::string got;
  ASSERT_TRUE(waitFor(
      [&] {
        // Certificate identity: client id = CN, no user name, no password.
        const CommandResult r = publishAsAgent(kAgentId, "", agentTopic("up/patient"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        got = readFile(env.tmp / "sub.out");
        return !got.empty() || r.exit_code != 0;
      },
      15s))
      << env.cluster->logTails();
  EXPECT_EQ(got, "x-application/hl7-v2+er7|msg-id:01TESTMSGID sha256:abc|MSH|hello\n");

  // Without a user name, a client id other than the CN is refused (CONNACK 0x87); the CN as user
  // name admits any client id (the client id becomes the JID's resource).
  const CommandResult other = publishAsAgent("someone-else", "", agentTopic("up/patient"));
  EXPECT_NE(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("CONNACK (135)"), std::string::npos) << other.output;
  const CommandResult named =
      publishAsAgent("practice-0042-check", kAgentId, agentTopic("up/patient"));
  EXPECT_EQ(named.exit_code, 0) << named.output;
  // The ACL keeps the agent out of another agent's topics: ejabberd answers the QoS 1 publish
  // with PUBACK 0x90 (topic name invalid), not 0x87.
  const CommandResult foreign =
      publishAsAgent(kAgentId, "", "ps/acme-health/practice-0099/up/patient");
  EXPECT_NE(foreign.output.find("received PUBACK (Mid: 1, RC:144)"), std::string::npos)
      << foreign.output;

  // `pms-agent check` probes each node as client id practice-0042-check: with the certificate's
  // CN as its user name (cloud.username_from_certificate), every node admits it.
  json::Value cfg = agentConfig(env, freePort());
  cfg.find("cloud")->set("username_from_certificate", json::Value::boolean(true));
  AgentProcess agent(env.tmp / "state", cfg);
  agent.writeConfig();
  const auto auth = brokerAuthChecks(agent);
  EXPECT_EQ(auth.size(), 2u);
  for (const auto& [level, text] : auth) {
    EXPECT_EQ(level, "ok") << text;
  }
}

TEST(EjabberdCluster, AgentDeliversEveryRecordOnceThroughTheCluster) {
  PSA_SKIP_WITHOUT_EJABBERD();
  ClusterEnv env("psa-ejabberd-deliver");
  const int mllp = freePort();
  AgentProcess agent(env.tmp / "state", agentConfig(env, mllp));
  ASSERT_TRUE(agent.start()) << agent.log();
  const int agent_node = waitConnectedNode(env, agent);
  ASSERT_GE(agent_node, 0) << agent.log() << env.cluster->logTails();
  // The simulator on the other node: every record crosses the cluster.
  const size_t sim_node = agent_node == 0 ? 1 : 0;
  auto sim = env.sim(sim_node, "cloud");

  constexpr size_t kRecords = 300;
  std::vector<std::string> ids;
  for (size_t i = 0; i < kRecords; ++i) {
    ids.push_back("ONCE-" + std::to_string(i));
  }
  AckLedger ledger;
  ASSERT_TRUE(sendPipelined(mllp, ids, 8, ledger, "DOE", 600));
  ASSERT_EQ(ledger.count(), kRecords) << (ledger.others().empty() ? "" : ledger.others()[0]);
  ASSERT_TRUE(sim->waitForUnique(kRecords, 60s))
      << "got " << sim->unique().size() << " of " << kRecords << "\n"
      << agent.log() << env.cluster->logTails();

  const Delivered d = delivered(*sim);
  EXPECT_EQ(d.lines, kRecords);  // no fault, no resend: each record exactly once
  EXPECT_EQ(d.sha_bad, 0u);
  EXPECT_EQ(d.without_control_id, 0u);
  EXPECT_EQ(d.msg_ids.size(), kRecords);
  for (const auto& id : ids) {
    auto it = d.msg_ids.find(id);
    ASSERT_NE(it, d.msg_ids.end()) << id;
    EXPECT_EQ(it->second.size(), 1u) << id;
  }
  // Every user property of the contract and the content type crossed the cluster.
  for (const auto& m : sim->messages()) {
    EXPECT_EQ(m.tenant, kTenantId);
    EXPECT_EQ(m.agent, kAgentId);
    EXPECT_EQ(m.kind, "patient");
    EXPECT_EQ(m.prop_kind, "patient");
    EXPECT_EQ(m.source, "pms-adt");
    EXPECT_EQ(m.vendor, "cerner");
    EXPECT_EQ(m.format, "hl7v2");
    EXPECT_FALSE(m.received_at.empty());
    EXPECT_FALSE(m.content_type.empty());
    EXPECT_EQ(m.sha256.size(), 64u);
  }
  EXPECT_TRUE(waitFor([&] { return linkView(agent).pending == 0; }, 20s)) << agent.log();
  const LinkView v = linkView(agent);
  EXPECT_EQ(v.connects, 1);
  EXPECT_EQ(env.cluster->nodeOf(v.url), agent_node);
  // What ejabberd's CONNACK announced, as the agent read it: topic aliases, the session expiry
  // capped by mod_mqtt's session_expiry, the keep alive echoed; no receive maximum, maximum
  // packet size, maximum QoS or retain available (so: 65535, none, 2, available).
  const CommandResult status = agent.cli({"status", "--json"});
  auto doc = json::parse(status.output);
  ASSERT_TRUE(doc) << status.output;
  const json::Value* broker = doc->find("cloud")->find("broker");
  ASSERT_NE(broker, nullptr) << status.output;
  EXPECT_EQ(broker->getInt("topic_alias_maximum"), 100) << status.output;
  EXPECT_EQ(broker->getInt("session_expiry_s"), 3600) << status.output;
  EXPECT_EQ(broker->getInt("server_keep_alive_s"), 5) << status.output;
  EXPECT_EQ(broker->getInt("receive_maximum"), 65535) << status.output;
  EXPECT_EQ(broker->getInt("maximum_packet_size"), 0) << status.output;
  EXPECT_EQ(broker->getInt("maximum_qos"), 2) << status.output;
  EXPECT_TRUE(broker->getBool("retain_available")) << status.output;
  EXPECT_EQ(agent.stop(), 0) << agent.log();
}

TEST(EjabberdCluster, KillingTheAgentsNodeMidStreamFailsOverAndLosesNothing) {
  PSA_SKIP_WITHOUT_EJABBERD();
  ClusterEnv env("psa-ejabberd-failover");
  const int mllp = freePort();
  // Receipt mode: a node that dies may lose what it already PUBACKed (it routes in memory); the
  // agent keeps each record until the cloud's receipt and resends after receipt_timeout_s.
  json::Value cfg = agentConfig(env, mllp, "receipt");
  cfg.find("cloud")->set("receipt_timeout_s", json::Value::integer(5));
  AgentProcess agent(env.tmp / "state", cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  const int dying = waitConnectedNode(env, agent);
  ASSERT_GE(dying, 0) << agent.log() << env.cluster->logTails();
  const size_t survivor = dying == 0 ? 1 : 0;
  auto sim = env.sim(survivor, "cloud", {"--receipts"});

  constexpr size_t kRecords = 1500;
  PacedFeed feed(mllp, "FO", kRecords);
  ASSERT_TRUE(waitFor([&] { return sim->unique().size() >= 200; }, 60s))
      << "got " << sim->unique().size() << "\n"
      << agent.log() << env.cluster->logTails();
  ASSERT_FALSE(feed.done()) << "the feed ended before the kill (not mid-stream)";
  env.cluster->kill(static_cast<size_t>(dying));
  const size_t at_kill = sim->unique().size();

  ASSERT_TRUE(waitFor(
      [&] {
        const LinkView v = linkView(agent);
        return v.connected && env.cluster->nodeOf(v.url) == static_cast<int>(survivor);
      },
      30s))
      << agent.log() << env.cluster->logTails();
  feed.join();
  ASSERT_TRUE(feed.ok()) << (feed.others().empty() ? "connection lost" : feed.others()[0]);
  ASSERT_EQ(feed.ackedCount(), kRecords);
  ASSERT_TRUE(sim->waitForUnique(kRecords, 90s))
      << "got " << sim->unique().size() << " of " << kRecords << "\n"
      << agent.log() << env.cluster->logTails();
  ASSERT_TRUE(waitFor([&] { return linkView(agent).pending == 0; }, 60s)) << agent.log();

  // Every acknowledged record arrived; a record seen twice came with the same msg-id (and
  // payload: sha256 verified on every line); nothing arrived that the agent did not acknowledge.
  const Delivered d = delivered(*sim);
  EXPECT_EQ(d.sha_bad, 0u);
  EXPECT_EQ(d.without_control_id, 0u);
  EXPECT_EQ(d.msg_ids.size(), kRecords);
  for (const auto& id : feed.acked()) {
    auto it = d.msg_ids.find(id);
    ASSERT_NE(it, d.msg_ids.end()) << id;
    EXPECT_EQ(it->second.size(), 1u) << id;
  }
  EXPECT_EQ(sim->unique().size(), kRecords);
  EXPECT_GE(linkView(agent).connects, 2);
  RecordProperty("unique_at_kill", static_cast<int>(at_kill));
  RecordProperty("duplicate_lines", static_cast<int>(d.lines - kRecords));
  EXPECT_EQ(agent.stop(), 0) << agent.log();
}

TEST(EjabberdCluster, SessionOnTheSurvivingNodeDeliversAConfigPushedWhileTheAgentWasAway) {
  PSA_SKIP_WITHOUT_EJABBERD();
  ClusterEnv env("psa-ejabberd-session");
  auto key = std::move(agent::SigningKey::generate()).value();
  const auto pub_file = env.tmp / "cloud-signing.pub.pem";
  writeFile(pub_file, key.publicPem());
  const int mllp = freePort();
  json::Value cfg = agentConfig(env, mllp);
  cfg.find("cloud")->set("config_signing_key", json::Value::string(pub_file.string()));
  AgentProcess agent(env.tmp / "state", cfg);
  ASSERT_TRUE(agent.start()) << agent.log();
  const int dying = waitConnectedNode(env, agent);
  ASSERT_GE(dying, 0) << agent.log() << env.cluster->logTails();
  const size_t survivor = dying == 0 ? 1 : 0;
  const auto reports_file = env.tmp / "reports.jsonl";
  auto sim = env.sim(survivor, "cloud", {"--reports-out", reports_file.string()});
  auto reportsOf = [&](const std::string& type) {
    std::vector<json::Value> out;
    const std::string text = readFile(reports_file);
    size_t pos = 0;
    for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      auto v = json::parse(std::string_view(text).substr(pos, nl - pos));
      if (v && v->getString("type") == type) {
        out.push_back(*v);
      }
    }
    return out;
  };

  // The agent's node dies: the agent moves to the survivor, where its new session subscribes
  // (the status it publishes on connect follows its SUBSCRIBE on the same connection).
  env.cluster->kill(static_cast<size_t>(dying));
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& r : reportsOf("status")) {
          const json::Value* p = r.find("payload");
          const json::Value* c = p != nullptr ? p->find("cloud") : nullptr;
          if (c != nullptr && c->getString("url") == env.cluster->url(survivor) &&
              p->getString("state") == "online") {
            return true;
          }
        }
        return false;
      },
      30s))
      << agent.log() << env.cluster->logTails();
  ASSERT_EQ(agent.stop(), 0) << agent.log();

  // While the agent is away, the cloud pushes a signed config (QoS 1, not retained): only the
  // agent's persistent session on the survivor can hold it.
  const int mllp2 = freePort();
  json::Value adapters = json::Value::array();
  for (const auto& [name, port] : {std::pair{"pms-adt", mllp}, std::pair{"pms-adt-2", mllp2}}) {
    json::Value a = json::Value::object();
    a.set("name", json::Value::string(name));
    a.set("type", json::Value::string("hl7-mllp"));
    a.set("vendor", json::Value::string("cerner"));
    a.set("listen", json::Value::string("127.0.0.1:" + std::to_string(port)));
    a.set("ack_mode", json::Value::string("original"));
    adapters.push(std::move(a));
  }
  json::Value config = json::Value::object();
  config.set("adapters", std::move(adapters));
  const int64_t now = Clock::system()->nowMs();
  const std::string doc =
      key.envelope(agent::makeConfigPayload(kAgentId, 2, now, now + 300000, config));
  const CommandResult pushed = env.publish(survivor, agentTopic("config/set"), doc);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.output;

  // The cluster is whole again and the agent comes back: wherever it connects, the session on
  // the survivor (resumed there, or handed over to the other node) delivers the document.
  env.cluster->start(static_cast<size_t>(dying));
  const size_t log_before = agent.log().size();
  ASSERT_TRUE(agent.start()) << agent.log();
  json::Value state;
  ASSERT_TRUE(waitFor(
      [&] {
        auto list = reportsOf("config/state");
        if (list.empty()) {
          return false;
        }
        state = *list.back().find("payload");
        return true;
      },
      30s))
      << agent.log() << env.cluster->logTails();
  EXPECT_EQ(state.getInt("version"), 2) << json::serialize(state);
  EXPECT_EQ(state.getString("result"), "applied") << json::serialize(state);
  const std::string restarted = agent.log().substr(log_before);
  EXPECT_NE(restarted.find("session_present=true"), std::string::npos) << restarted;
  EXPECT_TRUE(waitFor([&] { return linkView(agent).config_version == 2; }, 20s));

  // The config took effect: the new listener relays to the cloud.
  AckLedger ledger;
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", mllp2); }, 20s)) << agent.log();
  ASSERT_TRUE(sendPipelined(mllp2, {"AFTER-CONFIG-0"}, 1, ledger));
  ASSERT_TRUE(sim->waitForUnique(1, 30s)) << agent.log();
  EXPECT_EQ(sim->messages().front().source, "pms-adt-2");
  RecordProperty("reconnected_to", static_cast<int>(env.cluster->nodeOf(linkView(agent).url)));
  EXPECT_EQ(agent.stop(), 0) << agent.log();
}

TEST(EjabberdCluster, PasswordsRegisteredOnceAreCheckedByEveryNode) {
  PSA_SKIP_WITHOUT_EJABBERD();
  constexpr const char* kAgentPassword = "agent-pw-5e0c2a91";
  constexpr const char* kWrongPassword = "not-it-77b1d0";
  constexpr const char* kCloudPassword = "cloud-pw-d41f86";
  EjabberdOptions o;
  o.certificate_auth = false;  // the password alone decides
  ClusterEnv env("psa-ejabberd-password", o);
  env.cluster->registerUser(kAgentId, kAgentPassword);  // through node 1 only (mnesia)
  env.cluster->registerUser("cloud", kCloudPassword);
  const int mllp = freePort();
  json::Value cfg = agentConfig(env, mllp);
  const auto pw = passwordFile(env.tmp / "agent.pw", kWrongPassword);
  cfg.find("cloud")->set("username", json::Value::string(kAgentId));
  cfg.find("cloud")->set("password_file", json::Value::string(pw.string()));
  AgentProcess agent(env.tmp / "state", cfg);
  agent.writeConfig();

  // Every node refuses the wrong password: `check` (probing each endpoint) and the link.
  auto auth = brokerAuthChecks(agent);
  ASSERT_EQ(auth.size(), 2u);
  for (const auto& [level, text] : auth) {
    EXPECT_EQ(level, "fail") << text;
    EXPECT_NE(text.find("check cloud.username and the password"), std::string::npos) << text;
  }
  ASSERT_TRUE(agent.start()) << agent.log();
  ASSERT_TRUE(waitFor(
      [&] {
        const LinkView v = linkView(agent);
        return !v.connected &&
               (v.last_error.find("not authorized") != std::string::npos ||
                v.last_error.find("bad user name or password") != std::string::npos);
      },
      30s))
      << linkView(agent).last_error << "\n"
      << agent.log() << env.cluster->logTails();

  // The technician fixes the file: the next attempt reads it, whichever node it goes to.
  passwordFile(pw, kAgentPassword);
  const int agent_node = waitConnectedNode(env, agent, 60s);
  ASSERT_GE(agent_node, 0) << agent.log() << env.cluster->logTails();
  // The simulator authenticates with its password on the other node.
  CloudSimOptions so =
      cloudSimOptions(env.cluster->url(agent_node == 0 ? 1 : 0), env.tls, env.tmp / "sim-password");
  so.username = "cloud";
  so.password_file = passwordFile(env.tmp / "cloud.pw", kCloudPassword);
  CloudSim sim(so);
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back("PW-" + std::to_string(i));
  }
  AckLedger ledger;
  ASSERT_TRUE(sendPipelined(mllp, ids, 8, ledger, "DOE", 600));
  ASSERT_TRUE(sim.waitForUnique(ids.size(), 60s)) << agent.log() << env.cluster->logTails();
  ASSERT_EQ(agent.stop(), 0) << agent.log();

  auth = brokerAuthChecks(agent);
  ASSERT_EQ(auth.size(), 2u);
  for (const auto& [level, text] : auth) {
    EXPECT_EQ(level, "ok") << text;
    EXPECT_NE(text.find("certificate identity and user name practice-0042"), std::string::npos)
        << text;
  }
  EXPECT_EQ(agent.log().find(kAgentPassword), std::string::npos);
  EXPECT_EQ(agent.log().find(kWrongPassword), std::string::npos);
}

}  // namespace
}  // namespace psa::test
