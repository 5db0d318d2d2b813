// `pms-cloud-sim listen`: receives what agents publish on ps/+/+/up/#, checks each payload
// against its sha256 user property, de-duplicates by msg-id, optionally sends receipts,
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

  po::options_description desc("pms-cloud-sim listen options");
  desc.add_options()
      ("help,h", "show this help")
      ("url", po::value(&copt.url)->required(), "broker URL, mqtts://host:port")
      ("ca", po::value(&copt.ca_file)->required(), "CA file that signed the broker certificate")
      ("cert", po::value(&copt.cert_file)->required(), "client certificate (the cloud identity)")
      ("key", po::value(&copt.key_file)->required(), "client private key")
      ("client-id", po::value(&copt.client_id)->default_value("cloud-sim"), "MQTT client id")
      ("session-expiry", po::value(&copt.session_expiry_s)->default_value(3600),
       "persistent session expiry in seconds (the broker queues for us while we are away)")
      ("filter", po::value(&filter)->default_value("ps/+/+/up/#"), "subscription")
      ("receipts", po::bool_switch(&receipts), "send {\"msg_ids\":[...]} on ps/{tenant}/{agent}/receipt")
      ("receipt-batch", po::value(&receipt_batch)->default_value(100), "msg-ids per receipt")
      ("receipt-interval-ms", po::value(&receipt_interval_ms)->default_value(50),
       "send a partial receipt batch after this long")
      ("out", po::value(&out_path), "append one JSON line per received message to FILE")
      ("payloads", po::bool_switch(&payloads), "include payloads (base64) in --out lines")
      ("quiet", po::bool_switch(&quiet), "no running counts")
      ("exit-after", po::value(&exit_after)->default_value(0),
       "exit after N unique messages (0 = never)")
      ("idle-exit", po::value(&idle_exit)->default_value(0),
       "exit after S seconds without a message (0 = never)")
      ("ready-file", po::value(&ready_file), "create FILE once subscribed");
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
  int sub_mid = -1;
  bool ready = false;
  auto last_message = SteadyClock::now();
  auto last_print = SteadyClock::now();

  client->on_connected = [&] { sub_mid = client->subscribe(filter, 1); };
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
    if (!splitAgentTopic(in.topic, tenant, agent, rest) || rest.rfind("up/", 0) != 0) {
      ++malformed;
      return;
    }
    const std::string kind = rest.substr(3);
    const std::string msg_id = in.property("msg-id");
    const std::string sha = in.property("sha256");
    const bool sha_ok = !sha.empty() && cloudlink::sha256Hex(in.payload) == sha;
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
      line.set("size", json::Value::integer(static_cast<int64_t>(in.payload.size())));
      line.set("duplicate", json::Value::boolean(duplicate));
      line.set("arrived_at", json::Value::string(formatRfc3339(psa::Clock::system()->nowMs())));
      if (payloads) {
        line.set("payload_base64", json::Value::string(base64(in.payload)));
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
       << " sha256_mismatch=" << sha_mismatch << " malformed=" << malformed << "\n";
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
  printCounts(std::cout, "summary");
  return 0;
}

}  // namespace psa::sim
