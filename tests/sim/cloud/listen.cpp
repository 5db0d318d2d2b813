// `pms-cloud-sim listen`: receives what agents publish on ps/+/+/up/#, joins chunked records
// (psa/cloudlink/chunks.h), checks each payload against its sha256 user property,
// de-duplicates by msg-id, optionally sends receipts,
// writes one JSON line per message and prints running counts.
#include <openssl/evp.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <unordered_set>

#include "commands.h"
#include "psa/cloudlink/chunks.h"
#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "sim_client.h"

namespace psa::sim {
namespace po = boost::program_options;
using SteadyClock = std::chrono::steady_clock;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void onSignal(int) { g_stop = 1; }

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The audit chain of one agent as seen so far (design: entry hash = hex SHA-256 over the
// length-prefixed fields prev_hash, seq, at_ms, actor, action, detail; "N:value\n" each).
struct AuditChain {
  int64_t last_seq = 0;
  std::string last_hash;
  uint64_t entries = 0;
  uint64_t duplicates = 0;
  uint64_t problems = 0;
};

std::string auditEntryHash(const std::string& prev, int64_t seq, int64_t at_ms,
                           const std::string& actor, const std::string& action,
                           const std::string& detail) {
  std::string buf;
  auto field = [&buf](const std::string& v) {
    buf += std::to_string(v.size());
    buf += ':';
    buf += v;
    buf += '\n';
  };
  field(prev);
  field(std::to_string(seq));
  field(std::to_string(at_ms));
  field(actor);
  field(action);
  field(detail);
  return psa::sha256Hex(buf);
}

// Checks one P/audit batch against the chain; returns a summary object for the report line.
json::Value checkAuditBatch(AuditChain& chain, const json::Value& batch) {
  json::Value r = json::Value::object();
  uint64_t fresh = 0;
  uint64_t dup = 0;
  std::string problem;
  const json::Value* entries = batch.find("entries");
  if (entries == nullptr || !entries->isArray()) {
    problem = "batch has no entries array";
  } else {
    for (const auto& e : entries->items()) {
      const int64_t seq = e.getInt("seq");
      const std::string prev = e.getString("prev_hash");
      const std::string hash = e.getString("hash");
      const std::string computed = auditEntryHash(prev, seq, e.getInt("at_ms"), e.getString("actor"),
                                                  e.getString("action"), e.getString("detail"));
      if (computed != hash) {
        problem = "entry " + std::to_string(seq) + ": hash does not match its contents";
        break;
      }
      if (seq <= chain.last_seq) {
        ++dup;  // sent again (lost PUBACK, restart): same seq, de-duplicated here
        continue;
      }
      if (chain.last_seq == 0) {
        if (seq == 1 && prev != std::string(64, '0')) {
          problem = "entry 1 does not start from the genesis hash";
          break;
        }
      } else if (seq != chain.last_seq + 1) {
        problem = "gap: entry " + std::to_string(chain.last_seq + 1) + " missing before " +
                  std::to_string(seq);
        break;
      } else if (prev != chain.last_hash) {
        problem = "entry " + std::to_string(seq) + ": prev_hash does not link to entry " +
                  std::to_string(chain.last_seq);
        break;
      }
      chain.last_seq = seq;
      chain.last_hash = hash;
      ++fresh;
    }
  }
  chain.entries += fresh;
  chain.duplicates += dup;
  if (!problem.empty()) {
    ++chain.problems;
  }
  r.set("new", json::Value::integer(static_cast<int64_t>(fresh)));
  r.set("duplicates", json::Value::integer(static_cast<int64_t>(dup)));
  r.set("last_seq", json::Value::integer(chain.last_seq));
  r.set("total", json::Value::integer(static_cast<int64_t>(chain.entries)));
  r.set("ok", json::Value::boolean(problem.empty()));
  r.set("problem", problem.empty() ? json::Value::null() : json::Value::string(problem));
  return r;
}

struct AgentCounts {
  std::map<std::string, uint64_t> by_kind;
  uint64_t unique = 0;
  uint64_t duplicates = 0;
  uint64_t sha_mismatch = 0;
};

}  // namespace

int runListen(const std::vector<std::string>& args) {
  ClientOptions copt;
  std::string filter;
  std::string out_path;
  std::string ready_file;
  bool receipts = false;
  bool payloads = false;
  bool quiet = false;
  size_t receipt_batch = 100;
  int receipt_interval_ms = 50;
  uint64_t exit_after = 0;
  double idle_exit = 0;
  bool reports = false;
  std::string reports_out;

  po::options_description desc("pms-cloud-sim listen options");
  desc.add_options()("help,h", "show this help")("url", po::value(&copt.url)->required(),
                                                 "broker URL, mqtts://host:port")(
      "ca", po::value(&copt.ca_file)->required(), "CA file that signed the broker certificate")(
      "cert", po::value(&copt.cert_file)->required(), "client certificate (the cloud identity)")(
      "key", po::value(&copt.key_file)->required(), "client private key")(
      "client-id", po::value(&copt.client_id)->default_value("cloud-sim"), "MQTT client id")(
      "session-expiry", po::value(&copt.session_expiry_s)->default_value(3600),
      "persistent session expiry in seconds (the broker queues for us while we are away)")(
      "filter", po::value(&filter)->default_value("ps/+/+/up/#"), "subscription")(
      "receipts", po::bool_switch(&receipts),
      "send {\"msg_ids\":[...]} on ps/{tenant}/{agent}/receipt")(
      "receipt-batch", po::value(&receipt_batch)->default_value(100), "msg-ids per receipt")(
      "receipt-interval-ms", po::value(&receipt_interval_ms)->default_value(50),
      "send a partial receipt batch after this long")(
      "out", po::value(&out_path), "append one JSON line per received message to FILE")(
      "payloads", po::bool_switch(&payloads), "include payloads (base64) in --out lines")(
      "quiet", po::bool_switch(&quiet), "no running counts")(
      "exit-after", po::value(&exit_after)->default_value(0),
      "exit after N unique messages (0 = never)")(
      "idle-exit", po::value(&idle_exit)->default_value(0),
      "exit after S seconds without a message (0 = never)")("ready-file", po::value(&ready_file),
                                                            "create FILE once subscribed")(
      "reports", po::bool_switch(&reports),
      "also receive what agents report (config/state, cmd/result, status, audit, down/result), "
      "print it "
      "and verify the audit hash chain")("reports-out", po::value(&reports_out),
                                         "append one JSON line per report to FILE");
  addCredentialOptions(desc, copt);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("help") != 0) {
      std::cout << "usage: pms-cloud-sim listen --url URL --ca FILE --cert FILE --key FILE "
                   "[options]\n"
                << desc;
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pms-cloud-sim listen: " << e.what() << "\n" << desc;
    return 2;
  }

  std::FILE* out = nullptr;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "a");
    if (out == nullptr) {
      std::perror(("pms-cloud-sim: cannot open " + out_path).c_str());
      return 1;
    }
  }

  std::FILE* rout = nullptr;
  if (!reports_out.empty()) {
    rout = std::fopen(reports_out.c_str(), "a");
    if (rout == nullptr) {
      std::perror(("pms-cloud-sim: cannot open " + reports_out).c_str());
      return 1;
    }
    reports = true;
  }
  std::map<std::string, AuditChain> chains;  // "tenant/agent" -> audit chain

  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);

  std::unique_ptr<SimClient> client;
  try {
    client = std::make_unique<SimClient>(copt);
  } catch (const std::exception& e) {
    std::cerr << "pms-cloud-sim: " << e.what() << "\n";
    return 1;
  }

  std::unordered_set<std::string> seen;
  std::map<std::string, AgentCounts> counts;  // "tenant/agent" -> counts
  std::map<std::string, std::vector<std::string>> pending_receipts;  // receipt topic -> ids
  auto oldest_pending = SteadyClock::time_point::max();
  uint64_t total = 0;
  uint64_t unique = 0;
  uint64_t duplicates = 0;
  uint64_t sha_mismatch = 0;
  uint64_t malformed = 0;
  uint64_t chunks_received = 0;
  uint64_t chunk_duplicates = 0;
  uint64_t chunk_errors = 0;
  cloudlink::ChunkAssembler assembler;
  int sub_mid = -1;
  bool ready = false;
  auto last_message = SteadyClock::now();
  auto last_print = SteadyClock::now();

  client->on_connected = [&] {
    if (reports) {
      for (const char* f : {"ps/+/+/config/state", "ps/+/+/cmd/result", "ps/+/+/status",
                            "ps/+/+/audit", "ps/+/+/down/result"}) {
        client->subscribe(f, 1);
      }
    }
    sub_mid = client->subscribe(filter, 1);
  };
  auto onReport = [&](const Incoming& in, const std::string& tenant, const std::string& agent,
                      const std::string& type) {
    json::Value line = json::Value::object();
    line.set("type", json::Value::string(type));
    line.set("tenant", json::Value::string(tenant));
    line.set("agent", json::Value::string(agent));
    line.set("topic", json::Value::string(in.topic));
    line.set("retained", json::Value::boolean(in.retain));
    line.set("arrived_at", json::Value::string(formatRfc3339(psa::Clock::system()->nowMs())));
    auto parsed = json::parse(in.payload);
    std::string summary;
    if (parsed) {
      if (type == "audit") {
        json::Value check = checkAuditBatch(chains[tenant + "/" + agent], *parsed);
        summary = "entries " + std::to_string(parsed->getInt("first_seq")) + ".." +
                  std::to_string(parsed->getInt("last_seq")) + " chain " +
                  (check.getBool("ok") ? "OK" : "BROKEN: " + check.getString("problem")) +
                  " (new " + std::to_string(check.getInt("new")) + ", duplicates " +
                  std::to_string(check.getInt("duplicates")) + ")";
        line.set("audit_check", std::move(check));
      } else if (type == "status") {
        summary = "state=" + parsed->getString("state");
      } else {
        json::Value shown = *parsed;
        if (json::Value* data = shown.find("data"); data != nullptr && data->find("data") != nullptr) {
          data->set("data", json::Value::string("(" + std::to_string(data->getString("data").size()) +
                                                " base64 bytes)"));
        }
        summary = json::serialize(shown);
      }
      line.set("payload", std::move(parsed).value());
    } else {
      summary = "(not JSON, " + std::to_string(in.payload.size()) + " bytes)";
      line.set("payload_text", json::Value::string(in.payload));
    }
    if (summary.size() > 400) {
      summary = summary.substr(0, 400) + "...";
    }
    std::cout << "report " << tenant << "/" << agent << " " << type << ": " << summary << std::endl;
    if (rout != nullptr) {
      const std::string text = json::serialize(line) + "\n";
      std::fwrite(text.data(), 1, text.size(), rout);
      std::fflush(rout);
    }
  };
  client->on_subscribed = [&](int mid, const std::vector<int>& granted) {
    if (mid != sub_mid) {
      return;
    }
    if (!granted.empty() && granted[0] >= 0x80) {
      std::cerr << "pms-cloud-sim: subscription to " << filter << " refused (reason "
                << granted[0] << ")\n";
      return;
    }
    if (!ready) {
      ready = true;
      std::cout << "ready: subscribed to " << filter << std::endl;
      if (!ready_file.empty()) {
        std::FILE* f = std::fopen(ready_file.c_str(), "w");
        if (f != nullptr) {
          std::fclose(f);
        }
      }
    }
  };
  client->on_message = [&](const Incoming& in) {
    last_message = SteadyClock::now();
    ++total;
    std::string tenant;
    std::string agent;
    std::string rest;
    if (reports && splitAgentTopic(in.topic, tenant, agent, rest) &&
        (rest == "config/state" || rest == "cmd/result" || rest == "status" || rest == "audit" ||
         rest == "down/result")) {
      onReport(in, tenant, agent, rest);
      return;
    }
    if (!splitAgentTopic(in.topic, tenant, agent, rest) || rest.rfind("up/", 0) != 0) {
      ++malformed;
      return;
    }
    const std::string kind = rest.substr(3);
    std::string msg_id = in.property("msg-id");
    const std::string sha = in.property("sha256");
    // A chunk of a record larger than the broker's packet limit: held until the record is
    // whole, then handled as the record (msg-id = chunk-of, payload = the joined chunks).
    const std::string* payload = &in.payload;
    std::string joined;
    size_t chunks = 0;
    auto header = cloudlink::readChunkHeader(in.user_properties);
    if (!header) {
      ++chunk_errors;
      std::cerr << "pms-cloud-sim: bad chunk on " << in.topic << ": " << header.error().message
                << "\n";
      return;
    }
    if (header.value()) {
      const cloudlink::ChunkHeader& h = **header;
      ++chunks_received;
      if (seen.count(h.chunk_of) != 0) {
        ++chunk_duplicates;  // a resent chunk of a record already whole
        if (receipts) {
          pending_receipts["ps/" + tenant + "/" + agent + "/receipt"].push_back(h.chunk_of);
          oldest_pending = std::min(oldest_pending, SteadyClock::now());
        }
        return;
      }
      auto added = assembler.add(h, sha, in.payload);
      using Outcome = cloudlink::ChunkAssembler::Added::Outcome;
      if (added.outcome == Outcome::invalid) {
        ++chunk_errors;
        std::cerr << "pms-cloud-sim: record " << h.chunk_of << ": " << added.error << "\n";
        return;
      }
      if (added.outcome != Outcome::complete) {
        if (added.outcome == Outcome::duplicate) {
          ++chunk_duplicates;
        }
        return;
      }
      joined = std::move(added.record);
      payload = &joined;
      msg_id = h.chunk_of;
      chunks = h.chunks;
    }
    const bool sha_ok = !sha.empty() && psa::sha256Hex(*payload) == sha;
    const bool duplicate = msg_id.empty() || !seen.insert(msg_id).second;
    AgentCounts& c = counts[tenant + "/" + agent];
    if (!sha_ok) {
      ++sha_mismatch;
      ++c.sha_mismatch;
    }
    if (duplicate) {
      ++duplicates;
      ++c.duplicates;
    } else {
      ++unique;
      ++c.unique;
      ++c.by_kind[kind];
    }
    if (out != nullptr) {
      json::Value line = json::Value::object();
      line.set("msg_id", json::Value::string(msg_id));
      line.set("tenant", json::Value::string(tenant));
      line.set("agent", json::Value::string(agent));
      line.set("kind", json::Value::string(kind));
      line.set("topic", json::Value::string(in.topic));
      line.set("source", json::Value::string(in.property("source")));
      line.set("vendor", json::Value::string(in.property("vendor")));
      line.set("format", json::Value::string(in.property("format")));
      line.set("prop_kind", json::Value::string(in.property("kind")));
      line.set("received_at", json::Value::string(in.property("received-at")));
      line.set("content_type", json::Value::string(in.content_type));
      line.set("sha256", json::Value::string(sha));
      line.set("sha256_ok", json::Value::boolean(sha_ok));
      line.set("size", json::Value::integer(static_cast<int64_t>(payload->size())));
      line.set("chunks", json::Value::integer(static_cast<int64_t>(chunks)));
      line.set("duplicate", json::Value::boolean(duplicate));
      line.set("arrived_at", json::Value::string(formatRfc3339(psa::Clock::system()->nowMs())));
      if (payloads) {
        line.set("payload_base64", json::Value::string(base64(*payload)));
      }
      const std::string text = json::serialize(line) + "\n";
      std::fwrite(text.data(), 1, text.size(), out);
    }
    if (receipts && !msg_id.empty() && sha_ok) {
      // A resend gets a receipt again: the agent may have missed the first one.
      auto& ids = pending_receipts["ps/" + tenant + "/" + agent + "/receipt"];
      if (ids.empty() && oldest_pending == SteadyClock::time_point::max()) {
        oldest_pending = SteadyClock::now();
      }
      ids.push_back(msg_id);
    }
  };

  const std::string err = client->connect();
  if (!err.empty()) {
    std::cerr << "pms-cloud-sim: " << err << " (retrying)\n";
  }

  auto flushReceipts = [&](bool all) {
    if (pending_receipts.empty()) {
      return;
    }
    const bool due = all || SteadyClock::now() - oldest_pending >=
                                std::chrono::milliseconds(receipt_interval_ms);
    if (out != nullptr) {
      std::fflush(out);  // "persisted" before we acknowledge
    }
    for (auto it = pending_receipts.begin(); it != pending_receipts.end();) {
      auto& ids = it->second;
      while (ids.size() >= receipt_batch || (due && !ids.empty())) {
        const size_t n = std::min(ids.size(), receipt_batch);
        std::vector<std::string> batch(ids.begin(), ids.begin() + static_cast<long>(n));
        if (client->publish(it->first, cloudlink::formatReceipt(batch), 1, false) < 0) {
          return;  // not connected: keep them for later
        }
        ids.erase(ids.begin(), ids.begin() + static_cast<long>(n));
      }
      it = ids.empty() ? pending_receipts.erase(it) : std::next(it);
    }
    if (pending_receipts.empty()) {
      oldest_pending = SteadyClock::time_point::max();
    } else if (due) {
      oldest_pending = SteadyClock::now();  // what is left was just cut off a full batch
    }
  };

  auto printCounts = [&](std::ostream& os, const char* label) {
    os << label << ": messages=" << total << " unique=" << unique << " duplicates=" << duplicates
       << " sha256_mismatch=" << sha_mismatch << " malformed=" << malformed
       << " chunks=" << chunks_received << " chunk_duplicates=" << chunk_duplicates
       << " chunk_errors=" << chunk_errors << "\n";
    for (const auto& [agent, c] : counts) {
      os << "  " << agent << ":";
      for (const auto& [kind, n] : c.by_kind) {
        os << " " << kind << "=" << n;
      }
      os << " unique=" << c.unique << " dup=" << c.duplicates << " bad_sha=" << c.sha_mismatch
         << "\n";
    }
    os.flush();
  };

  while (g_stop == 0) {
    client->loop(std::chrono::milliseconds(receipts ? 20 : 100));
    if (receipts) {
      flushReceipts(false);
    }
    const auto now = SteadyClock::now();
    if (!quiet && now - last_print >= std::chrono::seconds(1)) {
      last_print = now;
      printCounts(std::cout, "counts");
    }
    if (out != nullptr) {
      std::fflush(out);
    }
    if (exit_after > 0 && unique >= exit_after) {
      break;
    }
    if (idle_exit > 0 &&
        now - last_message >= std::chrono::duration<double>(idle_exit)) {
      break;
    }
  }
  if (receipts) {
    // Let the receipts go out (and confirm whatever still arrives meanwhile).
    for (int i = 0; i < 20; ++i) {
      flushReceipts(true);
      client->loop(std::chrono::milliseconds(20));
    }
    flushReceipts(true);
  }
  client->disconnect();
  if (out != nullptr) {
    std::fclose(out);
  }
  if (rout != nullptr) {
    std::fclose(rout);
  }
  for (const auto& [agent, c] : chains) {
    std::cout << "audit " << agent << ": entries=" << c.entries << " last_seq=" << c.last_seq
              << " duplicates=" << c.duplicates << " chain_problems=" << c.problems << "\n";
  }
  printCounts(std::cout, "summary");
  return 0;
}

}  // namespace psa::sim
