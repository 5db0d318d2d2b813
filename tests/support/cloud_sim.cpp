#include "cloud_sim.h"

#include <openssl/evp.h>
#include <signal.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "psa/store/json.h"

namespace psa::test {
namespace fs = std::filesystem;

namespace {

std::string decodeBase64(const std::string& in) {
  if (in.empty()) {
    return {};
  }
  std::string out(3 * in.size() / 4 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) {
    throw std::runtime_error("bad base64 in simulator output");
  }
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding bytes as zeros.
  if (in.size() >= 1 && in[in.size() - 1] == '=') {
    --len;
  }
  if (in.size() >= 2 && in[in.size() - 2] == '=') {
    --len;
  }
  out.resize(len);
  return out;
}

}  // namespace

size_t parseSimLines(std::string_view text, size_t pos, std::vector<SimMessage>& out) {
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      break;  // partial line still being written
    }
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      continue;
    }
    auto v = json::parse(line);
    if (!v || !v->isObject()) {
      throw std::runtime_error("malformed simulator line: " + std::string(line.substr(0, 200)));
    }
    SimMessage m;
    m.msg_id = v->getString("msg_id");
    m.tenant = v->getString("tenant");
    m.agent = v->getString("agent");
    m.kind = v->getString("kind");
    m.prop_kind = v->getString("prop_kind");
    m.topic = v->getString("topic");
    m.source = v->getString("source");
    m.vendor = v->getString("vendor");
    m.format = v->getString("format");
    m.received_at = v->getString("received_at");
    m.content_type = v->getString("content_type");
    m.sha256 = v->getString("sha256");
    m.sha256_ok = v->getBool("sha256_ok");
    m.size = static_cast<uint64_t>(v->getInt("size"));
    m.chunks = static_cast<uint64_t>(v->getInt("chunks"));
    m.duplicate = v->getBool("duplicate");
    if (const json::Value* p = v->find("payload_base64"); p != nullptr && p->isString()) {
      m.has_payload = true;
      m.payload = decodeBase64(p->asString());
    }
    out.push_back(std::move(m));
  }
  return pos;
}

std::vector<SimMessage> readSimOutput(const fs::path& file) {
  std::vector<SimMessage> out;
  parseSimLines(readFile(file), 0, out);
  return out;
}

CloudSim::CloudSim(CloudSimOptions options) : options_(std::move(options)) {
  fs::create_directories(options_.dir);
  out_file_ = options_.dir / "received.jsonl";
  ready_file_ = options_.dir / "ready";
  stdout_file_ = options_.dir / "sim.out";
  launch();
}

CloudSim::~CloudSim() {
  if (process_) {
    process_->kill();
  }
}

void CloudSim::launch() {
  std::error_code ec;
  fs::remove(ready_file_, ec);
  Process::Options p;
  p.argv = {binary("pms-cloud-sim").string(),
            "listen",
            "--url", options_.url,
            "--ca", options_.ca_file.string(),
            "--cert", options_.cert_file.string(),
            "--key", options_.key_file.string(),
            "--client-id", options_.client_id,
            "--out", out_file_.string(),
            "--ready-file", ready_file_.string(),
            "--quiet"};
  if (!options_.username.empty()) {
    p.argv.insert(p.argv.end(), {"--username", options_.username});
  }
  if (!options_.password_file.empty()) {
    p.argv.insert(p.argv.end(), {"--password-file", options_.password_file.string()});
  }
  if (options_.receipts) {
    p.argv.push_back("--receipts");
  }
  if (options_.payloads) {
    p.argv.push_back("--payloads");
  }
  for (const auto& a : options_.extra_args) {
    p.argv.push_back(a);
  }
  p.stdout_file = stdout_file_;
  process_ = std::make_unique<Process>(std::move(p));
  if (!waitFor([&] { return fs::exists(ready_file_) || !process_->running(); },
               std::chrono::seconds(10)) ||
      !fs::exists(ready_file_)) {
    throw std::runtime_error("pms-cloud-sim did not subscribe; output:\n" + stdoutText());
  }
}

std::vector<SimMessage> CloudSim::messages() const {
  std::ifstream in(out_file_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset_));
  std::string fresh((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  offset_ += parseSimLines(fresh, 0, cache_);
  return cache_;
}

std::map<std::string, SimMessage> CloudSim::unique() const {
  std::map<std::string, SimMessage> out;
  for (auto& m : messages()) {
    out.emplace(m.msg_id, m);
  }
  return out;
}

bool CloudSim::waitForUnique(size_t n, std::chrono::milliseconds timeout) const {
  return waitFor([&] { return unique().size() >= n; }, timeout);
}

std::string CloudSim::stdoutText() const { return readFile(stdout_file_); }

void CloudSim::stop() {
  if (!process_) {
    return;
  }
  process_->signal(SIGTERM);
  if (!process_->wait(std::chrono::seconds(10))) {
    process_->kill();
  }
}

void CloudSim::kill() {
  if (process_) {
    process_->kill();
  }
}

void CloudSim::restart() {
  stop();
  launch();
}

CloudSimOptions cloudSimOptions(const std::string& url, TlsMaterial& tls,
                                const std::filesystem::path& dir) {
  const CertFiles& cloud = tls.client("cloud");
  CloudSimOptions o;
  o.url = url;
  o.ca_file = tls.ca().cert;
  o.cert_file = cloud.cert;
  o.key_file = cloud.key;
  o.dir = dir;
  return o;
}

}  // namespace psa::test
