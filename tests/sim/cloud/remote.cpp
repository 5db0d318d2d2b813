// Remote management subcommands of pms-cloud-sim:
//
//   pms-cloud-sim keygen --out PREFIX
//       Ed25519 key pair: PREFIX.key (private, 0600) and PREFIX.pub.pem (for the agent's
//       cloud.config_signing_key); prints the key id (fingerprint) the agent will expect.
//   pms-cloud-sim push-config FILE --tenant T --agent A --key PREFIX.key [--version N]
//       [--expires SECONDS] [--issued-at RFC3339] [--wait SECONDS] [--print] + broker options
//       FILE holds the `config` object (what the cloud sets: {"adapters":[...], ...}). Signs it
//       (version defaults to the current Unix time in ms) and publishes it on P/config/set;
//       with --wait prints the agent's P/config/state answer for that version.
//   pms-cloud-sim command NAME [KEY=VALUE...] --tenant T --agent A --key PREFIX.key [--id ID]
//       [--args JSON] [--expires SECONDS] [--wait SECONDS] [--out FILE] [--print] + broker options
//       Signs and publishes a command on P/cmd/NAME; with --wait prints the P/cmd/result answer.
//       `bundle` results arrive in chunks: they are reassembled, checked against their sha256
//       and written to --out.
//   pms-cloud-sim write --target NAME --tenant T --agent A --key PREFIX.key [--kind K] [--op OP]
//       [--format F] [--body-file FILE] [--id ULID] [--resource R] [--resource-id X]
//       [--payload-agent A2] [--key-id ID] [--expires SECONDS] [--wait SECONDS] [--print]
//       + broker options
//       Signs a write-back request (default: an appointment booking, HL7 SIU^S12) and publishes
//       it on P/down/{kind}; with --wait prints each P/down/result for its id until a final one.
//       Exit 0 delivered, 1 any other final status, 3 no final result within --wait.
// Broker options: --url mqtts://HOST:PORT --ca CA --cert CERT --cert-key KEY [--client-id ID].
// Exit codes: 0 applied/ok, 1 rejected/failed, 2 usage, 3 no answer within --wait.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "commands.h"
#include "remote_common.h"
#include "psa/agent/signed_document.h"
#include "psa/cloudlink/envelope.h"
#include "psa/store/clock.h"
#include "psa/store/json.h"
#include "sim_client.h"

namespace psa::sim {
namespace po = boost::program_options;
using SteadyClock = std::chrono::steady_clock;

std::string readText(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + file);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeText(const std::string& file, const std::string& data, mode_t mode) {
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      throw std::runtime_error("cannot write " + file);
    }
    out << data;
  }
  ::chmod(tmp.c_str(), mode);
  if (std::rename(tmp.c_str(), file.c_str()) != 0) {
    throw std::runtime_error("cannot write " + file);
  }
}


void addCommonOptions(po::options_description& desc, BrokerArgs& a) {
  desc.add_options()
      ("help,h", "show this help")
      ("tenant", po::value(&a.tenant)->required(), "the agent's tenant")
      ("agent", po::value(&a.agent)->required(), "the agent id")
      ("key", po::value(&a.key_file)->required(), "Ed25519 private key (PEM) to sign with")
      ("expires", po::value(&a.expires_s)->default_value(300),
       "valid for SECONDS after issued_at (negative: already expired, for tests)")
      ("issued-at", po::value(&a.issued_at), "issued_at (RFC 3339; default now)")
      ("print", po::bool_switch(&a.print), "print the signed document instead of publishing it")
      ("wait", po::value(&a.wait_s)->default_value(0),
       "wait up to SECONDS for the agent's answer and print it")
      ("url", po::value(&a.client.url), "broker URL, mqtts://host:port")
      ("ca", po::value(&a.client.ca_file), "CA file that signed the broker certificate")
      ("cert", po::value(&a.client.cert_file), "client certificate (the cloud identity)")
      ("cert-key", po::value(&a.client.key_file), "private key of --cert")
      ("client-id", po::value(&a.client.client_id), "MQTT client id (default cloud-push-PID)");
  addCredentialOptions(desc, a.client);
}

bool parseArgs(const char* name, const std::vector<std::string>& args, po::options_description& desc,
               po::positional_options_description& pos, po::variables_map& vm, int& code) {
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
    if (vm.count("help") != 0) {
      std::cout << desc;
      code = 0;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pms-cloud-sim " << name << ": " << e.what() << "\n" << desc;
    code = 2;
    return false;
  }
  return true;
}

std::pair<int64_t, int64_t> window(const BrokerArgs& a) {
  int64_t issued = Clock::system()->nowMs();
  if (!a.issued_at.empty() && !parseRfc3339(a.issued_at, issued)) {
    throw std::runtime_error("--issued-at: expected RFC 3339");
  }
  return {issued, issued + a.expires_s * 1000};
}

namespace {

// Publishes `doc` on `topic` and (with --wait) returns the first message on `answer_topic`
// that `match` accepts; `done` says when the answer is complete (bundle chunks).
struct Exchange {
  std::function<bool(const json::Value&)> match;
  std::function<bool(const json::Value&)> complete;
};

int publishAndWait(BrokerArgs& a, const std::string& topic, const std::string& doc,
                   const std::string& answer_topic, Exchange ex,
                   std::vector<json::Value>& answers) {
  if (a.client.url.empty() || a.client.ca_file.empty() || a.client.cert_file.empty() ||
      a.client.key_file.empty()) {
    std::cerr << "pms-cloud-sim: --url, --ca, --cert and --cert-key are required to publish\n";
    return 2;
  }
  if (a.client.client_id.empty()) {
    a.client.client_id = "cloud-push-" + std::to_string(::getpid());
  }
  a.client.clean_start = true;
  a.client.session_expiry_s = 0;
  SimClient client(a.client);
  const bool wait = a.wait_s > 0;
  int sub_mid = -1;
  int pub_mid = -1;
  bool published = false;
  bool puback = false;
  int puback_rc = 0;
  bool done = false;
  auto doPublish = [&] {
    pub_mid = client.publish(topic, doc, 1, false);
    published = pub_mid > 0;
  };
  client.on_connected = [&] {
    if (wait) {
      sub_mid = client.subscribe(answer_topic, 1);
    } else if (!published) {
      doPublish();
    }
  };
  client.on_subscribed = [&](int mid, const std::vector<int>& granted) {
    if (mid == sub_mid && !published) {
      if (!granted.empty() && granted[0] >= 0x80) {
        std::cerr << "pms-cloud-sim: subscription to " << answer_topic << " refused\n";
      }
      doPublish();
    }
  };
  client.on_puback = [&](int mid, int rc) {
    if (mid == pub_mid) {
      puback = true;
      puback_rc = rc;
    }
  };
  client.on_message = [&](const Incoming& in) {
    if (in.topic != answer_topic) {
      return;
    }
    auto v = json::parse(in.payload);
    if (!v || !v->isObject() || !ex.match(*v)) {
      return;
    }
    answers.push_back(*v);
    if (!ex.complete || ex.complete(*v)) {
      done = true;
    }
  };
  const std::string err = client.connect();
  if (!err.empty()) {
    std::cerr << "pms-cloud-sim: " << err << " (retrying)\n";
  }
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(static_cast<int64_t>(
                                                 (wait ? a.wait_s : 20.0) * 1000));
  while (SteadyClock::now() < deadline) {
    client.loop(std::chrono::milliseconds(50));
    if (puback && (!wait || done)) {
      break;
    }
  }
  client.disconnect();
  if (!puback) {
    std::cerr << "pms-cloud-sim: the broker did not acknowledge the publish\n";
    return 3;
  }
  if (puback_rc >= 0x80) {
    std::cerr << "pms-cloud-sim: the broker refused the publish (reason " << puback_rc << ")\n";
    return 1;
  }
  if (wait && !done) {
    std::cerr << "pms-cloud-sim: no answer on " << answer_topic << " within " << a.wait_s << " s\n";
    return 3;
  }
  return 0;
}

}  // namespace

namespace {

// A ULID for `ms`: 48-bit time and 80 random bits in Crockford base32.
std::string makeUlid(int64_t ms) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string out(26, '0');
  auto t = static_cast<uint64_t>(ms);
  for (int i = 9; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kAlphabet[t & 31];
    t >>= 5;
  }
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  for (size_t i = 10; i < 26; ++i) {
    unsigned char c = 0;
    urandom.read(reinterpret_cast<char*>(&c), 1);
    out[i] = kAlphabet[c & 31];
  }
  return out;
}

// The default body: a booking as a PMS's scheduling interface takes it. MSH-7 and MSH-10 are
// left empty: the agent sets the time and derives a stable control id from the request id.
std::string bookingSiuS12(const std::string& id) {
  return "MSH|^~\\&|PRACTICESTUDIO|PS|PMS|CLINIC|||SIU^S12||P|2.5.1\r"
         "SCH|" +
         id.substr(14) +
         "^PS||||||ROUTINE^Routine visit|||30|m|^^30^20270105090000\r"
         "PID|1||MRN10042^^^CLINIC^MR||SAMPLE^PATIENT||19800101|F\r"
         "AIP|1||DRWHO^WHO^JOHN|||20270105090000|||30|m\r";
}

}  // namespace

int runWrite(const std::vector<std::string>& args) {
  BrokerArgs a;
  std::string target;
  std::string kind;
  std::string op;
  std::string format;
  std::string body_file;
  std::string id;
  std::string resource;
  std::string resource_id;
  std::string payload_agent;
  std::string key_id;
  po::options_description desc("pms-cloud-sim write options");
  addCommonOptions(desc, a);
  desc.add_options()("target", po::value(&target)->required(), "the agent's adapter name")(
      "kind", po::value(&kind)->default_value("appointment"), "record kind (topic P/down/KIND)")(
      "op", po::value(&op)->default_value("create"), "create, update, cancel, delete, send")(
      "format", po::value(&format)->default_value("hl7v2"), "hl7v2, fhir+json, vendor+json, csv")(
      "body-file", po::value(&body_file), "the body (default: an SIU^S12 booking)")(
      "id", po::value(&id), "request id, a ULID (default: a new one)")(
      "resource", po::value(&resource), "resource type or vendor collection")(
      "resource-id", po::value(&resource_id), "the PMS's id of the resource")(
      "payload-agent", po::value(&payload_agent), "agent_id inside the payload (default --agent)")(
      "key-id", po::value(&key_id), "key_id to claim in the envelope (default: the key's own)");
  po::positional_options_description pos;
  po::variables_map vm;
  int code = 0;
  if (!parseArgs("write", args, desc, pos, vm, code)) {
    return code;
  }
  auto key = agent::SigningKey::loadFile(a.key_file);
  if (!key) {
    std::cerr << "pms-cloud-sim write: " << key.error().message << "\n";
    return 1;
  }
  const auto [issued, expires] = window(a);
  if (id.empty()) {
    id = makeUlid(Clock::system()->nowMs());
  }
  const std::string body = body_file.empty() ? bookingSiuS12(id) : readText(body_file);
  json::Value p = json::Value::object();
  p.set("id", json::Value::string(id));
  p.set("agent_id", json::Value::string(payload_agent.empty() ? a.agent : payload_agent));
  p.set("issued_at", json::Value::string(formatRfc3339(issued)));
  p.set("expires_at", json::Value::string(formatRfc3339(expires)));
  p.set("target", json::Value::string(target));
  p.set("op", json::Value::string(op));
  p.set("kind", json::Value::string(kind));
  p.set("format", json::Value::string(format));
  p.set("resource", resource.empty() ? json::Value() : json::Value::string(resource));
  p.set("resource_id", resource_id.empty() ? json::Value() : json::Value::string(resource_id));
  p.set("if_match", json::Value());
  p.set("body", json::Value::string(body));
  const std::string doc = key->envelope(json::serialize(p), key_id);
  if (a.print) {
    std::cout << doc << "\n";
    return 0;
  }
  const std::string prefix = "ps/" + a.tenant + "/" + a.agent;
  Exchange ex;
  ex.match = [id](const json::Value& v) { return v.getString("id") == id; };
  ex.complete = [](const json::Value& v) { return v.getString("status") != "accepted"; };
  std::vector<json::Value> answers;
  code = publishAndWait(a, prefix + "/down/" + kind, doc, prefix + "/down/result", ex, answers);
  std::cout << "published write " << id << " to " << prefix << "/down/" << kind << "\n";
  for (const json::Value& v : answers) {
    std::cout << json::serialize(v) << "\n";
  }
  if (code != 0 || a.wait_s <= 0) {
    return code;
  }
  return answers.back().getString("status") == "delivered" ? 0 : 1;
}

int runKeygen(const std::vector<std::string>& args) {
  std::string prefix;
  po::options_description desc("pms-cloud-sim keygen options");
  desc.add_options()("help,h", "show this help")(
      "out", po::value(&prefix)->required(), "writes PREFIX.key (private) and PREFIX.pub.pem");
  po::positional_options_description pos;
  po::variables_map vm;
  int code = 0;
  if (!parseArgs("keygen", args, desc, pos, vm, code)) {
    return code;
  }
  auto key = agent::SigningKey::generate();
  if (!key) {
    std::cerr << "pms-cloud-sim keygen: " << key.error().message << "\n";
    return 1;
  }
  writeText(prefix + ".key", key->privatePem(), 0600);
  writeText(prefix + ".pub.pem", key->publicPem(), 0644);
  std::cout << "key_id: " << key->keyId() << "\n"
            << "private key: " << prefix << ".key (keep it secret; signs configs and commands)\n"
            << "public key:  " << prefix << ".pub.pem (the agent's cloud.config_signing_key)\n";
  return 0;
}

int runPushConfig(const std::vector<std::string>& args) {
  BrokerArgs a;
  std::string file;
  int64_t version = 0;
  po::options_description desc("pms-cloud-sim push-config FILE options");
  addCommonOptions(desc, a);
  desc.add_options()("file", po::value(&file)->required(), "JSON file with the config object")(
      "version", po::value(&version)->default_value(0), "config version (default: now in Unix ms)");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  int code = 0;
  if (!parseArgs("push-config", args, desc, pos, vm, code)) {
    return code;
  }
  auto key = agent::SigningKey::loadFile(a.key_file);
  if (!key) {
    std::cerr << "pms-cloud-sim push-config: " << key.error().message << "\n";
    return 1;
  }
  auto config = json::parse(readText(file));
  if (!config) {
    std::cerr << "pms-cloud-sim push-config: " << file << ": " << config.error().message << "\n";
    return 1;
  }
  if (version <= 0) {
    version = Clock::system()->nowMs();
  }
  const auto [issued, expires] = window(a);
  const std::string doc =
      key->envelope(agent::makeConfigPayload(a.agent, version, issued, expires, *config));
  if (a.print) {
    std::cout << doc << "\n";
    return 0;
  }
  const std::string prefix = "ps/" + a.tenant + "/" + a.agent;
  std::vector<json::Value> answers;
  Exchange ex;
  ex.match = [version](const json::Value& v) {
    const json::Value* ver = v.find("version");
    return ver != nullptr && ver->isInteger() && ver->asInt() == version;
  };
  code = publishAndWait(a, prefix + "/config/set", doc, prefix + "/config/state", ex, answers);
  std::cout << "published config version " << version << " to " << prefix << "/config/set\n";
  if (code != 0 || a.wait_s <= 0) {
    return code;
  }
  const json::Value& answer = answers.back();
  std::cout << json::serialize(answer) << "\n";
  return answer.getString("result") == "applied" ? 0 : 1;
}

int runCommand(const std::vector<std::string>& args) {
  BrokerArgs a;
  std::string name;
  std::vector<std::string> kv;
  std::string id;
  std::string args_json;
  std::string out_file;
  po::options_description desc("pms-cloud-sim command NAME [KEY=VALUE...] options");
  addCommonOptions(desc, a);
  desc.add_options()("name", po::value(&name)->required(), "command name")(
      "kv", po::value(&kv), "KEY=VALUE arguments (VALUE parsed as JSON when it is JSON)")(
      "id", po::value(&id), "command id (default: generated)")(
      "args", po::value(&args_json), "the args object as JSON")(
      "out", po::value(&out_file), "bundle: write the reassembled file here");
  po::positional_options_description pos;
  pos.add("name", 1).add("kv", -1);
  po::variables_map vm;
  int code = 0;
  if (!parseArgs("command", args, desc, pos, vm, code)) {
    return code;
  }
  auto key = agent::SigningKey::loadFile(a.key_file);
  if (!key) {
    std::cerr << "pms-cloud-sim command: " << key.error().message << "\n";
    return 1;
  }
  json::Value cmd_args = json::Value::object();
  if (!args_json.empty()) {
    auto parsed = json::parse(args_json);
    if (!parsed || !parsed->isObject()) {
      std::cerr << "pms-cloud-sim command: --args must be a JSON object\n";
      return 2;
    }
    cmd_args = *parsed;
  }
  for (const auto& item : kv) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "pms-cloud-sim command: expected KEY=VALUE, got '" << item << "'\n";
      return 2;
    }
    const std::string value = item.substr(eq + 1);
    auto parsed = json::parse(value);
    cmd_args.set(item.substr(0, eq), parsed ? *parsed : json::Value::string(value));
  }
  if (id.empty()) {
    id = "sim-" + std::to_string(Clock::system()->nowMs()) + "-" + std::to_string(::getpid());
  }
  const auto [issued, expires] = window(a);
  const std::string doc =
      key->envelope(agent::makeCommandPayload(a.agent, id, issued, expires, name, cmd_args));
  if (a.print) {
    std::cout << doc << "\n";
    return 0;
  }
  const std::string prefix = "ps/" + a.tenant + "/" + a.agent;
  std::map<int64_t, std::string> chunks;
  Exchange ex;
  ex.match = [id](const json::Value& v) { return v.getString("id") == id; };
  ex.complete = [&chunks](const json::Value& v) {
    const json::Value* data = v.find("data");
    if (v.getString("command") != "bundle" || v.getString("result") != "ok" || data == nullptr) {
      return true;
    }
    chunks[data->getInt("chunk")] = data->getString("data");
    return static_cast<int64_t>(chunks.size()) >= data->getInt("chunks");
  };
  std::vector<json::Value> answers;
  code = publishAndWait(a, prefix + "/cmd/" + name, doc, prefix + "/cmd/result", ex, answers);
  std::cout << "published command " << name << " id " << id << " to " << prefix << "/cmd/" << name << "\n";
  if (code != 0 || a.wait_s <= 0) {
    return code;
  }
  const json::Value& last = answers.back();
  if (name == "bundle" && last.getString("result") == "ok") {
    std::string bytes;
    for (const auto& [k, b64] : chunks) {
      auto part = agent::base64Decode(b64);
      if (!part) {
        std::cerr << "pms-cloud-sim command: chunk " << k << " is not valid base64\n";
        return 1;
      }
      bytes += *part;
    }
    const json::Value& data = *last.find("data");
    const bool sha_ok = psa::sha256Hex(bytes) == data.getString("sha256");
    std::cout << "bundle: " << data.getString("file") << " " << bytes.size() << " bytes in "
              << chunks.size() << " chunks, sha256 " << (sha_ok ? "OK" : "MISMATCH") << "\n";
    if (!out_file.empty()) {
      writeText(out_file, bytes, 0600);
      std::cout << "written to " << out_file << "\n";
    }
    return sha_ok ? 0 : 1;
  }
  std::cout << json::serialize(last) << "\n";
  return last.getString("result") == "ok" ? 0 : 1;
}

}  // namespace psa::sim
