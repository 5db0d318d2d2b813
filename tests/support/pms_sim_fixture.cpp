#include "pms_sim_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>

#include "psa/store/sqlite_store.h"

namespace psa::test {
namespace fs = std::filesystem;

SimpleHttpResponse httpCall(const std::string& method, const std::string& url,
                            const std::string& body, const std::string& content_type) {
  if (url.rfind("http://", 0) != 0) {
    throw std::runtime_error("httpCall: only http:// URLs: " + url);
  }
  const size_t host_start = 7;
  const size_t path_start = url.find('/', host_start);
  const std::string hostport = url.substr(host_start, path_start - host_start);
  const std::string target = path_start == std::string::npos ? "/" : url.substr(path_start);
  const size_t colon = hostport.rfind(':');
  const std::string host = hostport.substr(0, colon);
  const int port = std::stoi(hostport.substr(colon + 1));
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    throw std::runtime_error("socket failed");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect failed: " + url);
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + hostport +
                    "\r\nConnection: close\r\nAccept: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  }
  req += "\r\n" + body;
  size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("send failed");
    }
    off += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      ::close(fd);
      throw std::runtime_error("recv failed");
    }
    if (n == 0) {
      break;
    }
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  SimpleHttpResponse out;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.size() < 12) {
    throw std::runtime_error("bad HTTP response from " + url);
  }
  out.status = std::stoi(raw.substr(9, 3));
  size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t c = line.find(':');
    if (c != std::string::npos) {
      std::string name = line.substr(0, c);
      for (auto& ch : name) {
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      std::string value = line.substr(c + 1);
      while (!value.empty() && value.front() == ' ') {
        value.erase(0, 1);
      }
      out.headers[name] = value;
    }
    pos = eol + 2;
  }
  std::string payload = raw.substr(head_end + 4);
  if (out.headers["transfer-encoding"] == "chunked") {
    std::string decoded;
    size_t p = 0;
    for (;;) {
      const size_t eol = payload.find("\r\n", p);
      if (eol == std::string::npos) {
        break;
      }
      const size_t len = std::stoul(payload.substr(p, eol - p), nullptr, 16);
      if (len == 0) {
        break;
      }
      decoded.append(payload, eol + 2, len);
      p = eol + 2 + len + 2;
    }
    payload = std::move(decoded);
  }
  out.body = std::move(payload);
  return out;
}

PmsSim::PmsSim(const fs::path& dir, const TlsMaterial& tls, std::string vendor,
               std::vector<std::string> args, std::chrono::milliseconds timeout)
    : dir_(dir), vendor_(std::move(vendor)) {
  fs::create_directories(dir_);
  const fs::path ready = dir_ / ("sim-" + vendor_ + ".ready.json");
  log_file_ = dir_ / ("sim-" + vendor_ + ".log");
  std::error_code ec;
  fs::remove(ready, ec);
  Process::Options opts;
  opts.argv = {"/usr/bin/python3",
               std::string(PSA_SOURCE_DIR) + "/tests/sim/pms_sim.py",
               "--vendor",
               vendor_,
               "--ready-file",
               ready.string(),
               "--cert",
               tls.server().cert.string(),
               "--key",
               tls.server().key.string(),
               "--plain"};
  for (auto& a : args) {
    opts.argv.push_back(std::move(a));
  }
  opts.stdout_file = log_file_;
  process_ = std::make_unique<Process>(std::move(opts));
  const bool ok = waitFor([&] { return fs::exists(ready) || !process_->running(); }, timeout);
  if (!ok || !fs::exists(ready)) {
    throw std::runtime_error("simulator " + vendor_ + " did not start: " + readFile(log_file_));
  }
  auto doc = json::parse(readFile(ready));
  if (!doc) {
    throw std::runtime_error("bad ready file");
  }
  ready_ = std::move(doc).value();
}

PmsSim::~PmsSim() { stop(); }

void PmsSim::stop() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    if (!process_->wait(std::chrono::seconds(10))) {
      process_->kill();
    }
  }
}

bool PmsSim::running() { return process_ && process_->running(); }

std::string PmsSim::log() const { return readFile(log_file_); }

std::string PmsSim::fhirBase() const { return ready_.getString("fhir_base"); }
std::string PmsSim::tokenUrl() const { return ready_.getString("token_url"); }
std::string PmsSim::apiBase() const {
  if (const json::Value* e = ready_.find("endpoints"); e != nullptr) {
    if (const json::Value* h = e->find("https"); h != nullptr) {
      return h->getString("base");
    }
  }
  return ready_.getString("api_base");
}
std::string PmsSim::httpsOrigin() const {
  const json::Value* u = ready_.find("urls");
  return u != nullptr ? u->getString("https") : std::string();
}
std::string PmsSim::adminUrl() const {
  const json::Value* a = ready_.find("admin");
  return a != nullptr ? a->getString("http") : std::string();
}

json::Value PmsSim::adminGet(const std::string& path_and_query) {
  auto r = httpCall("GET", adminUrl() + path_and_query);
  auto doc = json::parse(r.body);
  if (r.status != 200 || !doc) {
    throw std::runtime_error("admin GET " + path_and_query + " -> " + std::to_string(r.status) +
                             " " + r.body.substr(0, 300));
  }
  return std::move(doc).value();
}

json::Value PmsSim::adminPost(const std::string& path, const json::Value& body) {
  auto r = httpCall("POST", adminUrl() + path, json::serialize(body));
  auto doc = json::parse(r.body);
  if (r.status != 200 || !doc) {
    throw std::runtime_error("admin POST " + path + " -> " + std::to_string(r.status) + " " +
                             r.body.substr(0, 300));
  }
  return std::move(doc).value();
}

json::Value PmsSim::expected(const std::string& query) {
  return adminGet("/expected" + (query.empty() ? std::string() : "?" + query));
}
json::Value PmsSim::stats() { return adminGet("/stats"); }
void PmsSim::setFaults(const std::string& rules_json) {
  adminPost("/faults", *json::parse(rules_json));
}
void PmsSim::clearFaults() { httpCall("DELETE", adminUrl() + "/faults"); }
json::Value PmsSim::mutate(const std::string& body_json) {
  return adminPost("/mutate", *json::parse(body_json));
}

std::vector<StoredRecord> readStoredRecords(const fs::path& db, const fs::path& key) {
  store::StoreOptions opts;
  opts.db_path = db;
  opts.key_file = key;
  auto opened = store::SqliteStore::open(opts);
  if (!opened) {
    throw std::runtime_error("cannot open store: " + opened.error().describe());
  }
  auto& s = **opened;
  std::vector<StoredRecord> out;
  int64_t after = 0;
  for (;;) {
    auto page = s.list(store::ListFilter::queued, after, 1000);
    if (!page) {
      throw std::runtime_error("list failed: " + page.error().describe());
    }
    if (page->empty()) {
      break;
    }
    for (const auto& info : *page) {
      auto payload = s.reveal(info.msg_id);
      if (!payload) {
        throw std::runtime_error("reveal failed: " + payload.error().describe());
      }
      StoredRecord r;
      r.msg_id = info.msg_id;
      r.source = info.source;
      r.vendor = info.vendor;
      r.kind = std::string(store::kindName(info.kind));
      r.format = info.format;
      r.payload = payload->reveal();
      out.push_back(std::move(r));
      after = info.seq;
    }
  }
  s.close();
  return out;
}

std::map<std::string, std::string> readWatermarks(const fs::path& db, const fs::path& key,
                                                  const std::string& scope) {
  store::StoreOptions opts;
  opts.db_path = db;
  opts.key_file = key;
  auto opened = store::SqliteStore::open(opts);
  if (!opened) {
    throw std::runtime_error("cannot open store: " + opened.error().describe());
  }
  auto wm = (*opened)->watermarks(scope);
  if (!wm) {
    throw std::runtime_error("watermarks failed: " + wm.error().describe());
  }
  (*opened)->close();
  return *wm;
}

size_t countOccurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

}  // namespace psa::test
