// MLLP ingest benchmark (commit before ACK): prints figures, asserts nothing.
//
//   mllp_bench [--seconds S] [--dir DIR] [--no-agent] [--only limits|codec|store|noop|agent]...
//              [--summary]
//
// --summary adds machine-readable lines `figure<TAB>value<TAB>unit` (tests/bench/run-all.sh).
//
// 1. This machine's limits, measured in the same run: a loopback TCP round trip (1 KiB request,
//    ~200 B reply, TCP_NODELAY) and one durable SQLite commit (raw SQLite, WAL,
//    synchronous=FULL, one 1 KiB row per transaction).
// 2. Codec rate on one core: parse + validate + classify + dedupe identity + ACK, for a 1 KiB
//    ADT and a 64 KiB ORU.
// 3. The hl7-mllp listener in this process (2 I/O threads, as in the agent) with the real
//    SqliteStore on disk (DIR, default build/mllp_bench.tmp: not tmpfs): 1, 16 and 64
//    connections of 1 KiB ADT messages, each connection sending its next message when the
//    previous one is acknowledged. Prints messages/s, ACK latency p50/p99 as the sender sees it
//    (send -> ACK read) and as the listener reports it (last byte received -> ACK written), and
//    the one-connection rate as a ratio of 1/(round trip + commit).
// 4. The real `pms-agent run` process under 64 connections: messages/s and the agent's RSS.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent_fixture.h"
#include "hl7_samples.h"
#include "psa/adapters/hl7/ack.h"
#include "psa/adapters/hl7/classify.h"
#include "psa/adapters/hl7/identity.h"
#include "psa/adapters/hl7/message.h"
#include "psa/adapters/hl7/validate.h"
#include "psa/adapters/source.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace {

namespace asio = boost::asio;
namespace hl7 = psa::adapters::hl7;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

bool g_summary = false;

void summary(const std::string& figure, double value, const char* unit) {
  if (g_summary) {
    std::printf("%s\t%.6g\t%s\n", figure.c_str(), value, unit);
  }
}

double usSince(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// ---- 1. machine limits --------------------------------------------------------------------

double loopbackRoundTripUs() {
  int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(ls, 1);
  socklen_t len = sizeof addr;
  ::getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len);
  constexpr int kRounds = 5000;
  std::thread server([ls] {
    int s = ::accept(ls, nullptr, nullptr);
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::vector<char> buf(1024);
    const std::string reply(200, 'r');
    for (int i = 0; i < kRounds; ++i) {
      size_t got = 0;
      while (got < buf.size()) {
        const ssize_t n = ::read(s, buf.data() + got, buf.size() - got);
        if (n <= 0) {
          ::close(s);
          return;
        }
        got += static_cast<size_t>(n);
      }
      (void)::write(s, reply.data(), reply.size());
    }
    ::close(s);
  });
  int c = ::socket(AF_INET, SOCK_STREAM, 0);
  ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int one = 1;
  ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const std::string req(1024, 'q');
  std::vector<char> buf(200);
  std::vector<double> lat;
  for (int i = 0; i < kRounds; ++i) {
    const auto t0 = Clock::now();
    (void)::write(c, req.data(), req.size());
    size_t got = 0;
    while (got < buf.size()) {
      const ssize_t n = ::read(c, buf.data() + got, buf.size() - got);
      if (n <= 0) {
        break;
      }
      got += static_cast<size_t>(n);
    }
    lat.push_back(usSince(t0, Clock::now()));
  }
  ::close(c);
  server.join();
  ::close(ls);
  const double p50 = pct(lat, 0.5);
  std::printf("loopback TCP round trip (1 KiB -> 200 B): p50 %.1f us  p99 %.1f us\n", p50,
              pct(lat, 0.99));
  summary("limits.loopback_rtt", p50, "us");
  return p50;
}

double durableCommitUs(const std::filesystem::path& dir) {
  std::filesystem::remove(dir / "ref.db");
  std::filesystem::remove(dir / "ref.db-wal");
  std::filesystem::remove(dir / "ref.db-shm");
  sqlite3* db = nullptr;
  sqlite3_open((dir / "ref.db").c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
               "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
               nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(zeroblob(1024))", -1, &ins, nullptr);
  std::vector<double> lat;
  for (int i = 0; i < 300; ++i) {
    const auto t0 = Clock::now();
    sqlite3_step(ins);
    sqlite3_reset(ins);
    lat.push_back(usSince(t0, Clock::now()));
  }
  sqlite3_finalize(ins);
  sqlite3_close(db);
  const double p50 = pct(lat, 0.5);
  std::printf("durable commit (raw SQLite, WAL, synchronous=FULL, 1 KiB row/txn): p50 %.1f us  "
              "p99 %.1f us\n",
              p50, pct(lat, 0.99));
  summary("limits.durable_commit_mllp", 1e6 / p50, "commits/s");
  return p50;
}

// ---- 2. codec -----------------------------------------------------------------------------

std::string oru64k() {
  std::string text =
      "MSH|^~\\&|LABSYS|GOODLAB|PSAGENT|PRACTICE0042|20240117080000||ORU^R01^ORU_R01|MSG00020|P|"
      "2.5.1\rPID|1||MRN10001^^^GOODHEALTH^MR||DOE^JANE||19800101|F\rPV1|1|O\r"
      "OBR|1|ORD0001|FIL0001|80053^COMPREHENSIVE METABOLIC PANEL^CPT\r";
  for (int k = 1; text.size() < 64 * 1024; ++k) {
    text += "OBX|" + std::to_string(k) + "|NM|" + std::to_string(1000 + k) +
            "-1^TEST ANALYTE^LN||" + std::to_string(k % 200) +
            ".5|mg/dL^milligram per deciliter^UCUM|1.0-10.0|N|||F|||20240117070000\r";
  }
  return text;
}

void codecRate(const char* label, const std::string& text, double seconds) {
  hl7::Message msg;
  hl7::AckBuilder acks;
  hl7::Classifier classifier;
  hl7::ValidationRules rules;
  std::vector<hl7::Issue> issues;
  std::string ack;
  size_t sink = 0;
  uint64_t n = 0;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    for (int k = 0; k < 64; ++k) {
      (void)msg.parse(text);
      issues.clear();
      hl7::validate(msg, rules, issues);
      sink += static_cast<size_t>(classifier.classify(msg));
      sink += hl7::dedupeIdentity(msg).size();
      ack.clear();
      acks.buildTo(ack, msg, hl7::Outcome::accept);
      sink += ack.size();
    }
    n += 64;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("codec %s: %.0f msg/s on one core (parse+validate+classify+identity+ACK)%s\n", label,
              static_cast<double>(n) / s, sink == 0 ? " " : "");
  summary(text.size() > 4096 ? "hl7.codec_oru64k" : "hl7.codec_adt1k", static_cast<double>(n) / s,
          "msg/s");
}

// ---- load generator -----------------------------------------------------------------------

struct Load {
  uint64_t messages = 0;
  uint64_t not_aa = 0;
  uint64_t errors = 0;
  double seconds = 0;
  std::vector<double> lat_us;
};

// One connection, closed loop: send, wait for the ACK, send the next.
class Sender : public std::enable_shared_from_this<Sender> {
 public:
  Sender(asio::io_context& io, int index, Load& load) : socket_(io), load_(load) {
    // A 1 KiB ADT whose control id (fixed width) is rewritten in place for every message.
    std::string id = "B" + std::to_string(1000 + index) + "X0000000000";
    std::string msg = psa::test::adtMessage(id, "DOE", 1024);
    frame_ = "\x0b" + msg + "\x1c\r";
    id_at_ = frame_.find(id) + id.size() - 10;
    buf_.resize(4096);
  }
  void start(uint16_t port, std::atomic<int>& connected) {
    auto self = shared_from_this();
    socket_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [self, &connected](const boost::system::error_code& ec) {
                            if (ec) {
                              ++self->load_.errors;
                              return;
                            }
                            self->socket_.set_option(tcp::no_delay(true));
                            ++connected;
                          });
  }
  void go(Clock::time_point end) {
    end_ = end;
    sendNext();
  }

 private:
  void sendNext() {
    if (Clock::now() >= end_) {
      boost::system::error_code ec;
      socket_.close(ec);
      return;
    }
    uint64_t v = ++counter_;
    for (int k = 9; k >= 0; --k) {
      frame_[id_at_ + static_cast<size_t>(k)] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    sent_at_ = Clock::now();
    have_ = 0;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(frame_),
                      [self](const boost::system::error_code& ec, size_t) {
                        if (ec) {
                          ++self->load_.errors;
                          return;
                        }
                        self->readAck();
                      });
  }
  void readAck() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_.data() + have_, buf_.size() - have_),
                            [self](const boost::system::error_code& ec, size_t n) {
                              if (ec) {
                                ++self->load_.errors;
                                return;
                              }
                              self->have_ += n;
                              std::string_view got(self->buf_.data(), self->have_);
                              if (got.size() < 2 || got.substr(got.size() - 2) != "\x1c\r") {
                                self->readAck();
                                return;
                              }
                              self->load_.lat_us.push_back(usSince(self->sent_at_, Clock::now()));
                              ++self->load_.messages;
                              if (got.find("\rMSA|AA|") == std::string_view::npos) {
                                ++self->load_.not_aa;
                              }
                              self->sendNext();
                            });
  }

  tcp::socket socket_;
  Load& load_;
  Clock::time_point end_;
  std::string frame_;
  size_t id_at_ = 0;
  uint64_t counter_ = 0;
  std::vector<char> buf_;
  size_t have_ = 0;
  Clock::time_point sent_at_;
};

Load drive(uint16_t port, int connections, double seconds) {
  static int generation = 0;  // unique control ids across runs (no dedupe hits)
  ++generation;
  Load load;
  load.lat_us.reserve(1 << 20);
  asio::io_context io(1);
  std::atomic<int> connected{0};
  std::vector<std::shared_ptr<Sender>> senders;
  for (int i = 0; i < connections; ++i) {
    senders.push_back(std::make_shared<Sender>(io, generation * 1000 + i, load));
    senders.back()->start(port, connected);
  }
  while (connected.load() + static_cast<int>(load.errors) < connections) {
    io.run_one();
  }
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(seconds));
  for (auto& s : senders) {
    s->go(end);
  }
  senders.clear();
  io.restart();
  io.run();
  load.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return load;
}

void printLoad(const char* label, int connections, const Load& l) {
  std::printf("%s %2d conn: %7.0f msg/s  ACK latency p50 %6.0f us  p99 %6.0f us  (%llu msgs, "
              "%llu not AA, %llu errors)\n",
              label, connections, static_cast<double>(l.messages) / l.seconds, pct(l.lat_us, 0.5),
              pct(l.lat_us, 0.99), static_cast<unsigned long long>(l.messages),
              static_cast<unsigned long long>(l.not_aa), static_cast<unsigned long long>(l.errors));
}

// ---- 3. in-process listener ---------------------------------------------------------------

// Completes every append at once: what the MLLP path costs without the commit.
class NullSink final : public psa::store::RecordSink {
 public:
  void append(psa::store::AppendBatch batch, psa::store::AppendCallback done) override {
    psa::store::AppendResult r;
    r.records.resize(batch.records.size());
    r.dead_ids.resize(batch.dead.size());
    done(std::move(r));
  }
  psa::Result<std::optional<std::string>> watermark(const std::string&, const std::string&) override {
    return std::optional<std::string>();
  }
};

void inProcess(const std::filesystem::path& dir, double seconds, double rtt_us, double commit_us,
               bool null_sink) {
  std::filesystem::remove_all(dir / "inproc");
  std::filesystem::create_directories(dir / "inproc");
  psa::store::StoreOptions o;
  o.db_path = dir / "inproc" / "queue.db";
  o.key_file = dir / "inproc" / "queue.key";
  o.integrity_check = psa::store::IntegrityCheck::off;
  auto opened = psa::store::SqliteStore::open(std::move(o));
  if (!opened) {
    std::printf("store: %s\n", opened.error().describe().c_str());
    return;
  }
  auto store = std::move(opened).value();
  asio::io_context io(2);
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&io] { io.run(); });
  }
  psa::adapters::SourceRegistry registry;
  psa::adapters::registerBuiltinSources(registry);
  const auto* factory = registry.find("hl7-mllp");
  auto cfg = psa::json::parse(
                 R"({"name":"bench","type":"hl7-mllp","vendor":"cerner","listen":"127.0.0.1:0",
                     "ack_mode":"original"})")
                 .value();
  NullSink null;
  psa::store::RecordSink& sink = null_sink ? static_cast<psa::store::RecordSink&>(null) : *store;
  psa::adapters::SourceContext ctx{io, sink, psa::Clock::system(), dir};
  auto source = factory->create(cfg, ctx).value();
  if (auto st = source->start(); !st) {
    std::printf("start: %s\n", st.error().message.c_str());
    return;
  }
  const std::string ep = source->status().detail.find("endpoints")->items()[0].asString();
  const auto port = static_cast<uint16_t>(std::stoi(ep.substr(ep.rfind(':') + 1)));
  const double limit = 1e6 / (rtt_us + commit_us);
  uint64_t commits_before = store->stats()->commits_total;
  for (int conns : {1, 16, 64}) {
    Load l = drive(port, conns, seconds);
    printLoad(null_sink ? "listener, no-op sink " : "listener, real store ", conns, l);
    if (!null_sink) {
      const std::string key = "mllp.conn" + std::to_string(conns);
      summary(key, static_cast<double>(l.messages) / l.seconds, "msg/s");
      summary(key + "_p99", pct(l.lat_us, 0.99), "us");
    }
    auto after = source->status();
    const auto* lat = after.detail.find("ack_latency");
    const uint64_t commits = store->stats()->commits_total;
    std::printf("    listener side (last byte -> ACK written, cumulative): p50 %lld us  p99 %lld us",
                static_cast<long long>(lat->getInt("p50_us")),
                static_cast<long long>(lat->getInt("p99_us")));
    if (!null_sink) {
      std::printf("; %.1f messages per store commit", static_cast<double>(l.messages) /
                                                           static_cast<double>(std::max<uint64_t>(
                                                               1, commits - commits_before)));
    }
    std::printf("\n");
    commits_before = commits;
    if (conns == 1 && !null_sink) {
      const double rate = static_cast<double>(l.messages) / l.seconds;
      std::printf("    1 connection: %.0f msg/s = %.0f %% of 1/(round trip + commit) = %.0f msg/s\n",
                  rate, 100.0 * rate / limit, limit);
      summary("limits.one_conn", limit, "msg/s");
    }
  }
  auto done = std::make_shared<std::promise<void>>();
  source->stop([done] { done->set_value(); });
  done->get_future().wait();
  work.reset();
  io.stop();
  for (auto& t : threads) {
    t.join();
  }
  store->close();
}

// ---- 4. the agent process -----------------------------------------------------------------

long statusKb(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
    }
  }
  return -1;
}

void agentProcess(const std::filesystem::path& dir, double seconds) {
  std::filesystem::remove_all(dir / "agent");
  const int port = psa::test::freePort();
  auto cfg = psa::json::parse(
                 R"({"agent":{"id":"practice-0042","tenant":"bench","log_level":"info"},
                     "store":{"integrity_check":"off"},
                     "adapters":[{"name":"bench","type":"hl7-mllp","vendor":"cerner",
                                  "ack_mode":"original","listen":"127.0.0.1:)" +
                 std::to_string(port) + "\"}]}")
                 .value();
  psa::test::AgentProcess agent(dir / "agent", cfg);
  if (!agent.start()) {
    std::printf("agent did not start:\n%s\n", agent.log().c_str());
    return;
  }
  const pid_t pid = agent.process()->pid();
  std::printf("agent process at start: VmRSS %ld kB (anon %ld, file %ld)\n", statusKb(pid, "VmRSS:"),
              statusKb(pid, "RssAnon:"), statusKb(pid, "RssFile:"));
  for (int conns : {1, 16, 64}) {
    Load l = drive(static_cast<uint16_t>(port), conns, seconds);
    printLoad("pms-agent process   ", conns, l);
    summary("mllp.agent_conn" + std::to_string(conns), static_cast<double>(l.messages) / l.seconds,
            "msg/s");
    std::printf("    agent VmRSS %ld kB (anon %ld, file %ld)  VmHWM (peak so far) %ld kB\n",
                statusKb(pid, "VmRSS:"), statusKb(pid, "RssAnon:"), statusKb(pid, "RssFile:"),
                statusKb(pid, "VmHWM:"));
  }
  summary("mllp.agent_rss_peak", static_cast<double>(statusKb(pid, "VmHWM:")) / 1024, "MB");
  agent.stop();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  std::filesystem::path dir = std::filesystem::path(PSA_BIN_DIR).parent_path() / "mllp_bench.tmp";
  bool with_agent = true;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--no-agent") {
      with_agent = false;
    } else if (a == "--only" && i + 1 < argc) {
      only.emplace_back(argv[++i]);
    } else if (a == "--summary") {
      g_summary = true;
    } else {
      std::fprintf(stderr,
                   "usage: mllp_bench [--seconds S] [--dir DIR] [--no-agent] "
                   "[--only limits|codec|store|noop|agent]... [--summary]\n");
      return 2;
    }
  }
  auto want = [&](const char* section) {
    return only.empty() || std::find(only.begin(), only.end(), section) != only.end();
  };
  std::filesystem::create_directories(dir);
  psa::log::setLevel(psa::log::Level::warn);
  double rtt = 12;
  double commit = 1000;
  if (want("limits") || want("store")) {
    std::printf("== machine limits\n");
    rtt = loopbackRoundTripUs();
    commit = durableCommitUs(dir);
    std::printf("    => one connection, commit before ACK, cannot beat 1/(rtt + commit) = %.0f msg/s\n",
                1e6 / (rtt + commit));
  }
  if (want("codec")) {
    std::printf("== codec\n");
    codecRate("1 KiB ADT ", psa::test::adtMessage("MSG00001", "DOE", 1024), 1.0);
    codecRate("64 KiB ORU", oru64k(), 1.0);
  }
  if (want("store")) {
    std::printf("== hl7-mllp listener in this process, real store in %s\n", dir.c_str());
    inProcess(dir, seconds, rtt, commit, false);
  }
  if (want("noop")) {
    std::printf("== the same with a sink that completes at once (no commit): the MLLP path's own cost\n");
    inProcess(dir, seconds, rtt, commit, true);
  }
  if (with_agent && want("agent")) {
    std::printf("== pms-agent run (separate process), load from this process\n");
    agentProcess(dir, seconds);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
