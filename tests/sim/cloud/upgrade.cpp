// pms-cloud-sim upgrade PACKAGE --version V --release-key REL.key --tenant T --agent A
//     --key CONFIG.key [--wait SECONDS] [--chunk-bytes N] [--min-agent-version V]
//     [--allow-downgrade] [--window FROM-TO[/UTC]] [--deadline-s S] [--sha256 HEX] [--size N]
//     [--release-key-id ID] [--only-chunks N] + broker options
// Rolls a package out the way the cloud does (design.md "Upgrade"): signs the package with the
// release key, publishes the signed `upgrade` command on P/cmd/upgrade, then the package in
// chunks on P/upgrade/chunk once the agent reports `downloading`, and prints every P/cmd/result
// of that command (one JSON line each) until a final stage: upgraded, rolled_back, rejected or
// failed. Chunks the agent does not report within 15 s are sent again (the agent keeps what it
// has). The overrides (--sha256, --size, --release-key-id, --only-chunks) make the bad cases the
// tests need: a wrong checksum, a config key posing as a release key, a truncated download.
// Exit codes: 0 upgraded, 1 any other final stage, 2 usage, 3 no final stage within --wait.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "commands.h"
#include "psa/agent/signed_document.h"
#include "psa/store/clock.h"
#include "psa/store/digest.h"
#include "psa/store/json.h"
#include "remote_common.h"

namespace psa::sim {
namespace po = boost::program_options;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct UpgradeArgs {
  std::string package_file;
  std::string version;
  std::string release_key_file;
  std::string release_key_id;
  std::string sha256;
  int64_t size = -1;
  std::string min_agent_version;
  bool allow_downgrade = false;
  std::string window;
  int64_t deadline_s = 0;
  size_t chunk_bytes = 256 * 1024;
  int64_t only_chunks = -1;
};

bool isFinal(const std::string& stage) {
  return stage == "upgraded" || stage == "rolled_back" || stage == "rejected" ||
         stage == "failed";
}

// "02:00-05:00" or "02:00-05:00/UTC" -> {"from","to","tz"}.
json::Value windowJson(const std::string& text) {
  json::Value w = json::Value::object();
  const size_t dash = text.find('-');
  const size_t slash = text.find('/');
  w.set("from", json::Value::string(text.substr(0, dash)));
  w.set("to", json::Value::string(text.substr(dash + 1, slash == std::string::npos
                                                           ? std::string::npos
                                                           : slash - dash - 1)));
  w.set("tz", json::Value::string(slash == std::string::npos ? "local" : text.substr(slash + 1)));
  return w;
}

}  // namespace

int runUpgrade(const std::vector<std::string>& args) {
  BrokerArgs a;
  UpgradeArgs u;
  po::options_description desc("pms-cloud-sim upgrade PACKAGE options");
  addCommonOptions(desc, a);
  desc.add_options()("package", po::value(&u.package_file)->required(), "the package file")(
      "version", po::value(&u.version)->required(), "the version the package holds")(
      "release-key", po::value(&u.release_key_file)->required(),
      "Ed25519 release key (PEM private) that signs the package")(
      "release-key-id", po::value(&u.release_key_id), "announce this key id instead (tests)")(
      "sha256", po::value(&u.sha256), "announce this SHA-256 instead (tests)")(
      "size", po::value(&u.size), "announce this size instead (tests)")(
      "min-agent-version", po::value(&u.min_agent_version), "oldest version that may upgrade")(
      "allow-downgrade", po::bool_switch(&u.allow_downgrade), "allow an older version")(
      "window", po::value(&u.window), "FROM-TO[/UTC] install window, e.g. 02:00-05:00")(
      "deadline-s", po::value(&u.deadline_s), "deadline SECONDS after issued_at")(
      "chunk-bytes", po::value(&u.chunk_bytes)->default_value(256 * 1024), "bytes per chunk")(
      "only-chunks", po::value(&u.only_chunks), "send only the first N chunks (tests)");
  po::positional_options_description pos;
  pos.add("package", 1);
  po::variables_map vm;
  int code = 0;
  if (!parseArgs("upgrade", args, desc, pos, vm, code)) {
    return code;
  }
  auto key = agent::SigningKey::loadFile(a.key_file);
  auto release = agent::SigningKey::loadFile(u.release_key_file);
  if (!key || !release) {
    std::cerr << "pms-cloud-sim upgrade: "
              << (key ? release.error().message : key.error().message) << "\n";
    return 1;
  }
  if (u.chunk_bytes == 0 || u.chunk_bytes > 512 * 1024) {
    std::cerr << "pms-cloud-sim upgrade: --chunk-bytes must be 1..524288\n";
    return 2;
  }
  const std::string bytes = readText(u.package_file);
  json::Value cmd_args = json::Value::object();
  cmd_args.set("version", json::Value::string(u.version));
  cmd_args.set("sha256", json::Value::string(u.sha256.empty() ? sha256Hex(bytes) : u.sha256));
  cmd_args.set("size", json::Value::integer(u.size >= 0 ? u.size : int64_t(bytes.size())));
  cmd_args.set("sig", json::Value::string(agent::base64Encode(release->sign(bytes))));
  cmd_args.set("release_key_id",
               json::Value::string(u.release_key_id.empty() ? release->keyId() : u.release_key_id));
  if (!u.min_agent_version.empty()) {
    cmd_args.set("min_agent_version", json::Value::string(u.min_agent_version));
  }
  if (u.allow_downgrade) {
    cmd_args.set("allow_downgrade", json::Value::boolean(true));
  }
  if (!u.window.empty()) {
    cmd_args.set("window", windowJson(u.window));
  }
  const auto [issued, expires] = window(a);
  if (u.deadline_s > 0) {
    cmd_args.set("deadline", json::Value::string(formatRfc3339(issued + u.deadline_s * 1000)));
  }
  const std::string id =
      "sim-upgrade-" + std::to_string(Clock::system()->nowMs()) + "-" + std::to_string(::getpid());
  const std::string doc =
      key->envelope(agent::makeCommandPayload(a.agent, id, issued, expires, "upgrade", cmd_args));
  if (a.print) {
    std::cout << doc << "\n";
    return 0;
  }
  if (a.client.url.empty() || a.client.ca_file.empty() || a.client.cert_file.empty() ||
      a.client.key_file.empty()) {
    std::cerr << "pms-cloud-sim upgrade: --url, --ca, --cert and --cert-key are required\n";
    return 2;
  }
  // The chunks, each with its own checksum.
  std::vector<std::string> chunks;
  const size_t count = std::max<size_t>(1, (bytes.size() + u.chunk_bytes - 1) / u.chunk_bytes);
  for (size_t i = 0; i < count; ++i) {
    const std::string part = bytes.substr(i * u.chunk_bytes, u.chunk_bytes);
    json::Value c = json::Value::object();
    c.set("version", json::Value::string(u.version));
    c.set("chunk", json::Value::integer(int64_t(i + 1)));
    c.set("chunks", json::Value::integer(int64_t(count)));
    c.set("sha256_chunk", json::Value::string(sha256Hex(part)));
    c.set("data", json::Value::string(agent::base64Encode(part)));
    chunks.push_back(json::serialize(c));
  }
  const size_t to_send = u.only_chunks >= 0 ? std::min<size_t>(count, u.only_chunks) : count;

  if (a.client.client_id.empty()) {
    a.client.client_id = "cloud-upgrade-" + std::to_string(::getpid());
  }
  a.client.clean_start = true;
  a.client.session_expiry_s = 0;
  SimClient client(a.client);
  const std::string prefix = "ps/" + a.tenant + "/" + a.agent;
  const std::string result_topic = prefix + "/cmd/result";
  int sub_mid = -1;
  bool command_sent = false;
  bool downloading = false;
  size_t next_chunk = 0;  // chunks[0, next_chunk) were published since the last (re)send
  int64_t received = 0;
  auto last_progress = SteadyClock::now();
  std::string final_stage;
  client.on_connected = [&] { sub_mid = client.subscribe(result_topic, 1); };
  client.on_subscribed = [&](int mid, const std::vector<int>&) {
    if (mid == sub_mid && !command_sent) {
      command_sent = client.publish(prefix + "/cmd/upgrade", doc, 1, false) > 0;
      std::cout << "published upgrade " << u.version << " (" << bytes.size() << " bytes, "
                << count << " chunks) id " << id << std::endl;
    }
  };
  client.on_message = [&](const Incoming& in) {
    auto v = json::parse(in.payload);
    if (!v || !v->isObject() || v->getString("id") != id) {
      return;
    }
    std::cout << json::serialize(*v) << std::endl;
    const std::string stage = v->getString("stage");
    if (stage == "downloading") {
      downloading = true;
      if (const json::Value* data = v->find("data")) {
        received = std::max(received, data->getInt("received"));
      }
      last_progress = SteadyClock::now();
    } else if (v->getString("result") == "rejected" && stage.empty()) {
      final_stage = "rejected";  // refused before the upgrade logic (signature, replay, args)
    }
    if (isFinal(stage)) {
      final_stage = stage;
    }
  };
  if (const std::string err = client.connect(); !err.empty()) {
    std::cerr << "pms-cloud-sim upgrade: " << err << " (retrying)\n";
  }
  const double wait_s = a.wait_s > 0 ? a.wait_s : 600;
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(int64_t(wait_s * 1000));
  while (SteadyClock::now() < deadline && final_stage.empty()) {
    client.loop(std::chrono::milliseconds(20));
    if (downloading && client.connected() && next_chunk < to_send) {
      // A few at a time: the broker's and the agent's receive windows stay small.
      for (int burst = 0; burst < 8 && next_chunk < to_send; ++burst, ++next_chunk) {
        client.publish(prefix + "/upgrade/chunk", chunks[next_chunk], 1, false);
      }
    }
    if (downloading && next_chunk >= to_send && to_send == count && received < int64_t(count) &&
        SteadyClock::now() - last_progress > std::chrono::seconds(15)) {
      std::cout << "no progress for 15 s at " << received << "/" << count
                << ": sending the chunks again" << std::endl;
      next_chunk = 0;
      last_progress = SteadyClock::now();
    }
  }
  client.disconnect();
  if (final_stage.empty()) {
    std::cerr << "pms-cloud-sim upgrade: no final result within " << wait_s << " s\n";
    return 3;
  }
  return final_stage == "upgraded" ? 0 : 1;
}

}  // namespace psa::sim
