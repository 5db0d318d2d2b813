// The local HTTP endpoint of the real `pms-agent run` (the config's `http` section) with real
// traffic: HL7 over a real MLLP socket and a dropped CSV file, relayed over mutual TLS to a real
// mosquitto and seen by the real pms-cloud-sim. Scraped over real TCP: /metrics counts what the
// adapters accepted and the cloud acknowledged and passes `promtool check metrics`; a broker
// outage shows as pending records and a disconnected link on /metrics and on the page (rendered
// by headless chromium); the page's data hooks name the adapters, the link state and the queue;
// a PHI marker in patient fields never reaches /metrics, the JSON documents or the page; and the
// process refuses foreign Host headers (421) and writes (405).
//
// promtool comes from Debian's prometheus package, chromium from Debian's chromium package; the
// parts that need them are skipped when they are missing. PSA_KEEP_TMP=1 keeps the temp dir
// (with the page's screenshot, status-page.png, and chromium's output) for a look.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "mllp_senders.h"
#include "ops_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace hl7 = adapters::hl7;

constexpr auto kDeadline = 60s;        // every wait for a condition
constexpr auto kHttpTimeout = 15s;     // one request, connect to last byte
constexpr auto kBrowserTimeout = 90s;  // one chromium run; killed after it
constexpr const char* kPromtool = "/usr/bin/promtool";
constexpr const char* kHl7Adapter = "front-desk-adt";
constexpr const char* kFileAdapter = "ecw-export";

// ---- a small HTTP/1.1 client on a real TCP socket

struct HttpReply {
  int status = 0;  ///< 0: no answer (see error)
  std::string error;
  std::map<std::string, std::string> headers;  ///< lower-case names
  std::string body;

  std::string header(const std::string& lower_case_name) const {
    auto it = headers.find(lower_case_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// Sends `request` (a whole HTTP/1.1 request, bytes as given) to 127.0.0.1:`port` and reads one
/// response, all within kHttpTimeout.
HttpReply httpExchange(int port, const std::string& request) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(64 << 20);
  HttpReply reply;
  stream.expires_after(kHttpTimeout);
  const asio::ip::tcp::endpoint to(asio::ip::address_v4::loopback(), static_cast<uint16_t>(port));
  stream.async_connect(to, [&](const boost::system::error_code& ec) {
    if (ec) {
      reply.error = "connect: " + ec.message();
      return;
    }
    asio::async_write(
        stream, asio::buffer(request), [&](const boost::system::error_code& wec, size_t) {
          if (wec) {
            reply.error = "write: " + wec.message();
            return;
          }
          beast::http::async_read(
              stream, buffer, parser, [&](const boost::system::error_code& rec, size_t) {
                if (rec) {
                  reply.error = "read: " + rec.message();
                  return;
                }
                const auto& res = parser.get();
                reply.status = static_cast<int>(res.result_int());
                for (const auto& field : res) {
                  std::string name(field.name_string());
                  std::transform(name.begin(), name.end(), name.begin(),
                                 [](unsigned char c) { return std::tolower(c); });
                  reply.headers[name] = std::string(field.value());
                }
                reply.body = res.body();
              });
        });
  });
  io.run();
  return reply;
}

std::string loopbackHost(int port) { return "127.0.0.1:" + std::to_string(port); }

/// GET `target` with `Host: host` (default: the address the agent listens on).
HttpReply get(int port, const std::string& target, const std::string& host = {}) {
  return httpExchange(port, "GET " + target +
                                " HTTP/1.1\r\nHost: " + (host.empty() ? loopbackHost(port) : host) +
                                "\r\nAccept: */*\r\nConnection: close\r\n\r\n");
}

// ---- Prometheus text format 0.0.4

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// The samples of a scrape (comments skipped; a malformed line is left out and fails the
/// promtool check instead).
std::vector<Sample> parseSamples(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    Sample s;
    size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) {
      continue;
    }
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find("=\"", i);
        if (eq == std::string::npos) {
          break;
        }
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        s.labels[line.substr(i, eq - i)] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') {
          ++i;
        }
      }
      i = line.find(' ', i);
      if (i == std::string::npos) {
        continue;
      }
    }
    s.value = std::strtod(line.c_str() + i + 1, nullptr);
    out.push_back(std::move(s));
  }
  return out;
}

/// One /metrics scrape.
class Scrape {
 public:
  Scrape() = default;
  explicit Scrape(HttpReply reply)
      : reply_(std::move(reply)), samples_(parseSamples(reply_.body)) {}

  const HttpReply& reply() const { return reply_; }
  const std::string& text() const { return reply_.body; }
  bool ok() const { return reply_.status == 200; }

  /// The value of the first sample of `name` whose labels include `labels`.
  std::optional<double> value(std::string_view name,
                              const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples_) {
      if (s.name == name && std::all_of(labels.begin(), labels.end(), [&s](const auto& l) {
            auto it = s.labels.find(l.first);
            return it != s.labels.end() && it->second == l.second;
          })) {
        return s.value;
      }
    }
    return std::nullopt;
  }
  bool is(std::string_view name, double expected,
          const std::map<std::string, std::string>& labels = {}) const {
    return value(name, labels) == expected;
  }

  /// The lines of the families the tests wait on, for failure messages.
  std::string summary() const {
    if (!ok()) {
      return "no scrape: status " + std::to_string(reply_.status) + " " + reply_.error;
    }
    std::string out;
    for (const char* family :
         {"pms_agent_adapter_accepted", "pms_agent_adapter_received", "pms_agent_adapter_rejected",
          "pms_agent_queue_pending_records ", "pms_agent_cloud_connected ", "pms_agent_cloud_acked",
          "pms_agent_cloud_state{"}) {
      for (const auto& l : linesWith(text(), family)) {
        if (l.rfind("#", 0) != 0) {
          out += l + "\n";
        }
      }
    }
    return out;
  }

 private:
  HttpReply reply_;
  std::vector<Sample> samples_;
};

// ---- headless chromium

std::optional<fs::path> findChromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(p)) {
      return fs::path(p);
    }
  }
  return std::nullopt;
}

struct BrowserRun {
  int exit_code = -1;  ///< -1: timed out (and killed)
  std::string out;     ///< stdout (the DOM for --dump-dom)
  fs::path log;        ///< stderr
};

/// Runs headless chromium on `url` with `action` (--dump-dom, --screenshot=...), its profile
/// and output under `dir` with names starting `name`. Killed (its process group, which it leads)
/// if it has not finished after kBrowserTimeout.
BrowserRun runChromium(const fs::path& program, const fs::path& dir, const std::string& name,
                       const std::vector<std::string>& action, const std::string& url) {
  Process::Options o;
  o.argv = {program.string(),
            "--headless",
            "--no-sandbox",  // the tests run as root
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--user-data-dir=" + (dir / (name + "-profile")).string(),
            "--virtual-time-budget=5000"};
  o.argv.insert(o.argv.end(), action.begin(), action.end());
  o.argv.push_back(url);
  o.stdout_file = dir / (name + ".out");
  o.stderr_file = dir / (name + ".log");
  Process p(std::move(o));
  BrowserRun run;
  run.log = dir / (name + ".log");
  if (auto status = p.wait(kBrowserTimeout)) {
    run.exit_code = *status;
  } else {
    ::kill(-p.pid(), SIGKILL);  // the renderer and helpers too: the child leads its own group
    p.kill();
  }
  run.out = readFile(dir / (name + ".out"));
  return run;
}

/// The value of the first `attribute="..."` in `html` (nullopt if none).
std::optional<std::string> attributeValue(const std::string& html, const std::string& attribute) {
  std::smatch m;
  if (std::regex_search(html, m, std::regex(attribute + "=\"([^\"]*)\""))) {
    return m[1].str();
  }
  return std::nullopt;
}

std::string lowerCase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// Fails if `marker` appears in `text` in any letter case.
void expectNoMarker(const std::string& what, const std::string& text, const std::string& marker) {
  EXPECT_EQ(lowerCase(text).find(lowerCase(marker)), std::string::npos)
      << "PHI marker " << marker << " in " << what;
}

uint32_t bigEndian32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  return v;
}

// ---- the agent with both adapters, the cloud link and the http endpoint

class HttpStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::make_unique<CloudEnv>(MosquittoOptions{}, "psa-http-status");
    sim_ = std::make_unique<CloudSim>(env_->simOptions());
    fs::create_directories(dropDir());
    mllp_port_ = freePort();
    do {
      http_port_ = freePort();
    } while (http_port_ == mllp_port_);

    json::Value cfg = baseConfig();
    cfg.set("cloud", cloudSection(*env_));
    json::Value http = json::Value::object();
    http.set("listen", json::Value::string(loopbackHost(http_port_)));
    cfg.set("http", std::move(http));
    json::Value mllp = *json::parse(R"({"type":"hl7-mllp","vendor":"cerner"})");
    mllp.set("name", json::Value::string(kHl7Adapter));
    mllp.set("listen", json::Value::string(loopbackHost(mllp_port_)));
    json::Value drop = *json::parse(
        R"({"type":"file-drop","vendor":"eclinicalworks","format":"csv","kind":"patient",)"
        R"("stable_ms":150,"poll_interval_ms":50})");
    drop.set("name", json::Value::string(kFileAdapter));
    drop.set("path", json::Value::string(dropDir().string()));
    json::Value adapters = json::Value::array();
    adapters.push(std::move(mllp));
    adapters.push(std::move(drop));
    cfg.set("adapters", std::move(adapters));

    agent_ = std::make_unique<AgentProcess>(env_->tmp / "state", std::move(cfg));
    ASSERT_TRUE(agent_->start()) << agent_->log();
    ASSERT_TRUE(waitForScrape([](const Scrape& s) { return s.is("pms_agent_cloud_connected", 1); }))
        << last_.summary() << agent_->log();
  }

  void TearDown() override {
    if (agent_ != nullptr && agent_->running()) {
      EXPECT_EQ(agent_->stop(), 0) << agent_->log();
    }
  }

  fs::path dropDir() const { return env_->tmp / "drop"; }
  fs::path tmp() const { return env_->tmp.path(); }
  std::string url(const std::string& target) const {
    return "http://" + loopbackHost(http_port_) + target;
  }

  Scrape scrape() { return Scrape(get(http_port_, "/metrics")); }

  /// Scrapes /metrics until `condition` holds (true) or kDeadline passes (false); last_ keeps
  /// the last scrape.
  bool waitForScrape(const std::function<bool(const Scrape&)>& condition) {
    return waitFor(
        [&] {
          last_ = scrape();
          return last_.ok() && condition(last_);
        },
        kDeadline);
  }

  /// Sends `good` ADT messages (each must be answered AA) and `bad` ones without MSH-9 (AE)
  /// over one MLLP connection. The marker sits in PID-5 (the family name) and PID-11 (the
  /// street) of every message.
  void sendHl7(const std::string& tag, int good, int bad) {
    auto c = mllpConnect(mllp_port_);
    ASSERT_NE(c, nullptr) << "no MLLP connection to " << mllp_port_;
    for (int i = 0; i < good + bad; ++i) {
      const std::string id = tag + "-" + std::to_string(i);
      std::string msg = adtMessage(id, marker_ + "SMITH" + std::to_string(i));
      msg.replace(msg.find("123 FAKE ST"), 11, "123 " + marker_ + " ST");
      const bool is_bad = i >= good;
      if (is_bad) {
        msg.replace(msg.find("ADT^A01^ADT_A01"), 15, "");
      }
      auto raw = c->exchange(msg);
      ASSERT_TRUE(raw.ok()) << raw.error().describe();
      auto ack = hl7::summarizeAck(raw.value());
      ASSERT_TRUE(ack.ok()) << raw.value();
      EXPECT_EQ(ack->code, is_bad ? "AE" : "AA") << id << ": " << ack->text;
      EXPECT_EQ(ack->control_id, id);
    }
  }

  /// Drops `name` (written beside it, then renamed in): a header and `rows` good rows with the
  /// marker in the name and street columns, then one ragged row (a dead letter) with it too.
  void dropCsv(const std::string& name, int rows) {
    std::string csv = "Id,LastName,FirstName,Street\n";
    for (int i = 1; i <= rows; ++i) {
      csv += std::to_string(i) + "," + marker_ + "DOE" + std::to_string(i) + ",ALEX,1 " + marker_ +
             " MAIN ST\n";
    }
    csv += "99,ROE," + marker_ + ",2 ELM ST,EXTRA\n";
    writeFile(dropDir() / ("." + name + ".tmp"), csv);
    fs::rename(dropDir() / ("." + name + ".tmp"), dropDir() / name);
  }

  /// The traffic of the page and metrics tests: 4 + 1 bad HL7 messages, 3 + 1 ragged CSV rows.
  /// Waits until /metrics counts them all as accepted (or rejected) and acknowledged.
  void sendTrafficAndWait() {
    ASSERT_NO_FATAL_FAILURE(sendHl7("HTTP", kHl7Good, 1));
    dropCsv("patients.csv", kCsvGood);
    const std::map<std::string, std::string> hl7 = {{"adapter", kHl7Adapter}};
    const std::map<std::string, std::string> file = {{"adapter", kFileAdapter}};
    ASSERT_TRUE(waitForScrape([&](const Scrape& s) {
      return s.is("pms_agent_adapter_accepted_records_total", kHl7Good, hl7) &&
             s.is("pms_agent_adapter_rejected_records_total", 1, hl7) &&
             s.is("pms_agent_adapter_accepted_records_total", kCsvGood, file) &&
             s.is("pms_agent_adapter_rejected_records_total", 1, file) &&
             s.is("pms_agent_cloud_acked_records_total", kHl7Good + kCsvGood) &&
             s.is("pms_agent_queue_pending_records", 0);
    })) << last_.summary()
        << agent_->log();
  }

  static constexpr int kHl7Good = 4;
  static constexpr int kCsvGood = 3;

  std::unique_ptr<CloudEnv> env_;
  std::unique_ptr<CloudSim> sim_;
  std::unique_ptr<AgentProcess> agent_;
  int mllp_port_ = 0;
  int http_port_ = 0;
  const std::string marker_ = uniqueMarker();
  Scrape last_;
};

TEST_F(HttpStatus, MetricsCountMllpAndFileTrafficAndPassPromtool) {
  ASSERT_NO_FATAL_FAILURE(sendTrafficAndWait());
  const Scrape& s = last_;
  EXPECT_EQ(s.reply().header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::map<std::string, std::string> hl7 = {{"adapter", kHl7Adapter}, {"type", "hl7-mllp"}};
  const std::map<std::string, std::string> file = {{"adapter", kFileAdapter},
                                                   {"type", "file-drop"}};
  EXPECT_EQ(s.value("pms_agent_adapter_accepted_records_total", hl7), kHl7Good) << s.summary();
  EXPECT_EQ(s.value("pms_agent_adapter_received_records_total", hl7), kHl7Good + 1) << s.summary();
  EXPECT_EQ(s.value("pms_agent_adapter_rejected_records_total", hl7), 1) << s.summary();
  EXPECT_EQ(s.value("pms_agent_adapter_accepted_records_total", file), kCsvGood) << s.summary();
  EXPECT_EQ(s.value("pms_agent_adapter_received_records_total", file), kCsvGood + 1) << s.summary();
  EXPECT_EQ(s.value("pms_agent_adapter_rejected_records_total", file), 1) << s.summary();
  EXPECT_EQ(s.value("pms_agent_adapter_acks_total", {{"adapter", kHl7Adapter}, {"code", "AA"}}),
            kHl7Good);
  EXPECT_EQ(s.value("pms_agent_adapter_acks_total", {{"adapter", kHl7Adapter}, {"code", "AE"}}), 1);
  EXPECT_EQ(s.value("pms_agent_cloud_acked_records_total"), kHl7Good + kCsvGood) << s.summary();
  EXPECT_EQ(s.value("pms_agent_cloud_connected"), 1);
  EXPECT_EQ(s.value("pms_agent_cloud_state", {{"state", "connected"}}), 1);
  EXPECT_EQ(s.value("pms_agent_queue_dead_records"), 2);
  EXPECT_GE(s.value("pms_agent_store_commit_duration_seconds_count").value_or(0), 1)
      << "no group commit in the store's histogram";
  EXPECT_EQ(s.value("pms_agent_store_commit_duration_seconds_bucket", {{"le", "+Inf"}}),
            s.value("pms_agent_store_commit_duration_seconds_count"));
  // The records really went through: the cloud got every one of them once.
  ASSERT_TRUE(sim_->waitForUnique(kHl7Good + kCsvGood, kDeadline)) << sim_->unique().size();
  EXPECT_EQ(sim_->unique().size(), static_cast<size_t>(kHl7Good + kCsvGood));

  if (!fs::exists(kPromtool)) {
    GTEST_SKIP() << kPromtool << " is missing: install Debian's prometheus package "
                 << "(apt-get install prometheus) to check /metrics with promtool";
  }
  const auto check = runCommand({kPromtool, "check", "metrics"}, kDeadline, {}, s.text());
  EXPECT_EQ(check.exit_code, 0) << check.output << "\n--- scrape:\n" << s.text();
  EXPECT_EQ(check.output, "") << "promtool found problems\n--- scrape:\n" << s.text();
}

TEST_F(HttpStatus, PageAndDocumentsShowTheTrafficButNoPhi) {
  ASSERT_NO_FATAL_FAILURE(sendTrafficAndWait());
  // The marker did go through the agent: the cloud received it.
  ASSERT_TRUE(sim_->waitForUnique(kHl7Good + kCsvGood, kDeadline)) << sim_->unique().size();
  size_t with_marker = 0;
  for (const auto& [id, msg] : sim_->unique()) {
    with_marker += msg.payload.find(marker_) != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(with_marker, static_cast<size_t>(kHl7Good + kCsvGood));
  // A finished check report, so /checks.json and the page show real results.
  ASSERT_TRUE(waitFor(
      [&] {
        auto doc = json::parse(get(http_port_, "/checks.json").body);
        return doc.ok() && doc->find("checks") != nullptr;
      },
      kDeadline))
      << get(http_port_, "/checks.json").body;

  for (const std::string target : {"/metrics", "/status.json", "/checks.json", "/history.json"}) {
    const HttpReply r = get(http_port_, target);
    ASSERT_EQ(r.status, 200) << target << " " << r.error;
    expectNoMarker(target, r.body, marker_);
  }
  const auto status = json::parse(get(http_port_, "/status.json").body);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->find("cloud")->getBool("connected"));

  const HttpReply page = get(http_port_, "/");
  ASSERT_EQ(page.status, 200) << page.error;
  EXPECT_EQ(page.headers.count("content-security-policy"), 1u);
  EXPECT_NE(page.header("content-type").find("text/html"), std::string::npos);
  expectNoMarker("the page's HTML", page.body, marker_);
  EXPECT_NE(page.body.find(std::string("data-adapter=\"") + kHl7Adapter + "\""), std::string::npos);
  EXPECT_NE(page.body.find(std::string("data-adapter=\"") + kFileAdapter + "\""),
            std::string::npos);
  // The bad HL7 message and the ragged row: dead letters listed by their (PHI-free) reason.
  EXPECT_NE(page.body.find("data-dead-reasons"), std::string::npos) << page.body;

  const auto chromium = findChromium();
  if (!chromium) {
    GTEST_SKIP() << "chromium is missing: install Debian's chromium package to check the page "
                    "in a headless browser";
  }
  const BrowserRun dom = runChromium(*chromium, tmp(), "dom", {"--dump-dom"}, url("/"));
  ASSERT_EQ(dom.exit_code, 0) << readFile(dom.log);
  ASSERT_NE(dom.out.find("</html>"), std::string::npos) << dom.out << readFile(dom.log);
  EXPECT_NE(dom.out.find(std::string("data-adapter=\"") + kHl7Adapter + "\""), std::string::npos)
      << dom.out;
  EXPECT_NE(dom.out.find(std::string("data-adapter=\"") + kFileAdapter + "\""), std::string::npos)
      << dom.out;
  EXPECT_EQ(attributeValue(dom.out, "data-link-state"), "connected") << dom.out;
  EXPECT_EQ(attributeValue(dom.out, "data-queue-pending"), "0") << dom.out;
  // The script ran under the page's CSP and its first poll of /status.json succeeded.
  EXPECT_NE(dom.out.find("Live: checks every 5 s (last "), std::string::npos) << dom.out;
  expectNoMarker("the page's DOM in chromium", dom.out, marker_);

  const fs::path png = tmp() / "status-page.png";
  const BrowserRun shot = runChromium(
      *chromium, tmp(), "screenshot",
      {"--screenshot=" + png.string(), "--window-size=1280,900", "--hide-scrollbars"}, url("/"));
  ASSERT_EQ(shot.exit_code, 0) << readFile(shot.log);
  ASSERT_TRUE(fs::exists(png)) << readFile(shot.log);
  const std::string bytes = readFile(png);
  ASSERT_GE(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(bigEndian32(bytes, 16), 1280u);  // IHDR width and height
  EXPECT_EQ(bigEndian32(bytes, 20), 900u);
  EXPECT_GT(bytes.size(), 20000u) << "a blank page? " << png;
}

TEST_F(HttpStatus, BrokerOutageShowsAsPendingRecordsAndADisconnectedLink) {
  constexpr int kDuringOutage = 5;
  env_->broker->stop();
  ASSERT_TRUE(waitForScrape([](const Scrape& s) { return s.is("pms_agent_cloud_connected", 0); }))
      << last_.summary();
  ASSERT_NO_FATAL_FAILURE(sendHl7("DOWN", kDuringOutage, 0));
  ASSERT_TRUE(waitForScrape([&](const Scrape& s) {
    return s.is("pms_agent_queue_pending_records", kDuringOutage) &&
           s.is("pms_agent_cloud_connected", 0) &&
           s.is("pms_agent_adapter_accepted_records_total", kDuringOutage,
                {{"adapter", kHl7Adapter}});
  })) << last_.summary()
      << agent_->log();
  EXPECT_EQ(last_.value("pms_agent_cloud_state", {{"state", "connected"}}), 0) << last_.summary();
  EXPECT_EQ(last_.value("pms_agent_cloud_acked_records_total"), 0) << last_.summary();
  expectNoMarker("/metrics during the outage", last_.text(), marker_);

  const auto chromium = findChromium();
  if (chromium) {
    const BrowserRun dom = runChromium(*chromium, tmp(), "outage", {"--dump-dom"}, url("/"));
    ASSERT_EQ(dom.exit_code, 0) << readFile(dom.log);
    const auto link = attributeValue(dom.out, "data-link-state");
    ASSERT_TRUE(link.has_value()) << dom.out;
    EXPECT_NE(*link, "connected") << dom.out;
    EXPECT_TRUE(*link == "connecting" || *link == "backoff") << *link;
    EXPECT_EQ(attributeValue(dom.out, "data-queue-pending"), std::to_string(kDuringOutage))
        << dom.out;
    expectNoMarker("the page's DOM during the outage", dom.out, marker_);
  }

  env_->broker->start();
  ASSERT_TRUE(waitForScrape([&](const Scrape& s) {
    return s.is("pms_agent_queue_pending_records", 0) && s.is("pms_agent_cloud_connected", 1);
  })) << last_.summary()
      << agent_->log();
  EXPECT_EQ(last_.value("pms_agent_cloud_acked_records_total"), kDuringOutage) << last_.summary();
  EXPECT_GE(last_.value("pms_agent_cloud_connects_total").value_or(0), 2) << last_.summary();
  ASSERT_TRUE(sim_->waitForUnique(kDuringOutage, kDeadline)) << sim_->unique().size();

  if (!chromium) {
    GTEST_SKIP() << "chromium is missing: install Debian's chromium package to check the page "
                    "during the outage in a headless browser";
  }
}

TEST_F(HttpStatus, RealProcessRefusesForeignHostsAndWrites) {
  const std::vector<std::string> foreign = {
      "evil.example", "evil.example:" + std::to_string(http_port_), "127.0.0.1.evil.example"};
  for (const std::string& host : foreign) {
    const HttpReply r = get(http_port_, "/metrics", host);
    EXPECT_EQ(r.status, 421) << host << " " << r.error;
    EXPECT_EQ(r.body.find("pms_agent_"), std::string::npos) << host << ": " << r.body;
  }
  EXPECT_EQ(get(http_port_, "/", "evil.example").status, 421);
  EXPECT_EQ(get(http_port_, "/metrics", "localhost:" + std::to_string(http_port_)).status, 200);

  const std::string body = "{\"state\":\"stopped\"}";
  const HttpReply post = httpExchange(
      http_port_, "POST /status.json HTTP/1.1\r\nHost: " + loopbackHost(http_port_) +
                      "\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  EXPECT_EQ(post.status, 405) << post.error;
  EXPECT_EQ(post.header("allow"), "GET, HEAD");
  const HttpReply del =
      httpExchange(http_port_, "DELETE /metrics HTTP/1.1\r\nHost: " + loopbackHost(http_port_) +
                                   "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(del.status, 405) << del.error;
  // Still serving after the refusals.
  EXPECT_TRUE(scrape().ok());
}

}  // namespace
}  // namespace psa::test
