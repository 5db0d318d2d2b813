// Shared helpers of the api_*_test.cpp integration tests: agent configs for the simulators and
// the comparison of what the agent stored with what the simulator holds.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent_fixture.h"
#include "pms_sim_fixture.h"
#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test {

/// An agent config with one adapter (its own object); log level debug, no cloud section.
inline json::Value agentConfigWith(const json::Value& adapter) {
  json::Value cfg = *json::parse(
      R"({"agent":{"id":"practice-0001","tenant":"test-tenant","log_level":"debug"}})");
  json::Value list = json::Value::array();
  list.push(adapter);
  cfg.set("adapters", std::move(list));
  return cfg;
}

/// What the store holds of a FHIR sync, derived from the payloads themselves.
struct FhirHeld {
  std::map<std::string, int64_t> max_version;  ///< Type/id -> highest versionId stored
  std::set<std::string> deleted;               ///< Type/id with a deletion record
  std::map<std::string, int> identities;       ///< Type/id/vid (or Type/id/deleted) -> count
  size_t records = 0;
  std::vector<std::string> problems;
  std::map<std::string, std::string> kinds;    ///< Type -> kind seen
  size_t duplicates() const {
    size_t d = 0;
    for (const auto& [k, n] : identities) {
      d += n > 1 ? static_cast<size_t>(n - 1) : 0;
    }
    return d;
  }
};

inline std::string refFromUrl(std::string url) {
  if (auto h = url.find("/_history"); h != std::string::npos) {
    url.resize(h);
  }
  const size_t slash = url.rfind('/');
  const size_t prev = slash == std::string::npos ? std::string::npos : url.rfind('/', slash - 1);
  return prev == std::string::npos ? url : url.substr(prev + 1);
}

inline FhirHeld analyzeFhir(const std::vector<StoredRecord>& records) {
  FhirHeld h;
  for (const auto& r : records) {
    ++h.records;
    auto doc = json::parse(r.payload);
    if (!doc || !doc->isObject()) {
      h.problems.push_back("unparsable payload " + r.msg_id);
      continue;
    }
    if (r.format != "fhir+json") {
      h.problems.push_back("format " + r.format);
    }
    const std::string rt = doc->getString("resourceType");
    if (!rt.empty()) {
      const std::string key = rt + "/" + doc->getString("id");
      const json::Value* meta = doc->find("meta");
      const std::string vid = meta ? meta->getString("versionId") : "";
      ++h.identities[key + "/" + vid];
      const int64_t v = vid.empty() ? 0 : std::stoll(vid);
      auto it = h.max_version.find(key);
      if (it == h.max_version.end() || it->second < v) {
        h.max_version[key] = v;
      }
      h.kinds[rt] = r.kind;
      continue;
    }
    const json::Value* req = doc->find("request");
    if (req != nullptr && req->getString("method") == "DELETE") {
      const std::string key = refFromUrl(req->getString("url"));
      h.deleted.insert(key);
      ++h.identities[key + "/deleted" + [&] {
        const json::Value* resp = doc->find("response");
        return resp ? std::string("@") + resp->getString("etag") : std::string();
      }()];
      continue;
    }
    h.problems.push_back("neither a resource nor a DELETE entry: " + r.msg_id);
  }
  return h;
}

/// Compares with /_sim/expected (FHIR view): every live resource at its version, every
/// deletion the agent had seen the resource for carried as a deletion, nothing else.
inline std::vector<std::string> compareWithExpected(const FhirHeld& h, const json::Value& exp) {
  std::vector<std::string> diffs = h.problems;
  const json::Value* res = exp.find("resources");
  const json::Value* del = exp.find("deleted");
  std::set<std::string> known;
  if (res != nullptr) {
    for (const auto& [key, v] : res->members()) {
      known.insert(key);
      const int64_t want = std::stoll(v.getString("versionId", "0"));
      auto it = h.max_version.find(key);
      if (it == h.max_version.end()) {
        diffs.push_back("missing " + key + " v" + std::to_string(want));
      } else if (it->second != want) {
        diffs.push_back("stale " + key + " v" + std::to_string(it->second) + " want v" +
                        std::to_string(want));
      }
      if (h.deleted.count(key) != 0) {
        diffs.push_back("live " + key + " carried as deleted");
      }
    }
  }
  if (del != nullptr) {
    for (const auto& [key, v] : del->members()) {
      known.insert(key);
      if (h.max_version.count(key) != 0 && h.deleted.count(key) == 0) {
        diffs.push_back("deleted " + key + " still held live");
      }
    }
  }
  for (const auto& [key, v] : h.max_version) {
    if (known.count(key) == 0) {
      diffs.push_back("unknown " + key);
    }
  }
  if (h.duplicates() > 0) {
    diffs.push_back(std::to_string(h.duplicates()) + " duplicate versions stored");
  }
  if (diffs.size() > 30) {
    diffs.resize(30);
    diffs.push_back("...");
  }
  return diffs;
}

/// Waits until the agent log has at least `n` lines with `event`.
inline bool waitForEvents(AgentProcess& agent, const std::string& event, size_t n,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
  return waitFor(
      [&] { return countOccurrences(agent.log(), "event=" + event) >= n || !agent.running(); },
      timeout) &&
         agent.running();
}

}  // namespace psa::test

#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "psa/adapters/api/xml.h"

namespace psa::test {

/// Python's json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False) of a
/// parsed value (numbers keep their source text, which the simulator wrote with Python).
inline void canonicalJson(const json::Value& v, std::string_view src, std::string& out) {
  switch (v.type()) {
    case json::Value::Type::null: out += "null"; return;
    case json::Value::Type::boolean: out += v.asBool() ? "true" : "false"; return;
    case json::Value::Type::number: out += std::string(v.raw(src)); return;
    case json::Value::Type::string: {
      out += '"';
      for (unsigned char c : v.asString()) {
        switch (c) {
          case '"': out += "\\\""; break;
          case '\\': out += "\\\\"; break;
          case '\n': out += "\\n"; break;
          case '\r': out += "\\r"; break;
          case '\t': out += "\\t"; break;
          case '\b': out += "\\b"; break;
          case '\f': out += "\\f"; break;
          default:
            if (c < 0x20) {
              char buf[8];
              std::snprintf(buf, sizeof buf, "\\u%04x", c);
              out += buf;
            } else {
              out += static_cast<char>(c);
            }
        }
      }
      out += '"';
      return;
    }
    case json::Value::Type::array: {
      out += '[';
      bool first = true;
      for (const auto& i : v.items()) {
        out += first ? "" : ",";
        first = false;
        canonicalJson(i, src, out);
      }
      out += ']';
      return;
    }
    case json::Value::Type::object: {
      std::vector<const json::Member*> members;
      for (const auto& m : v.members()) {
        members.push_back(&m);
      }
      std::sort(members.begin(), members.end(),
                [](const json::Member* a, const json::Member* b) { return a->first < b->first; });
      out += '{';
      bool first = true;
      for (const auto* m : members) {
        out += first ? "" : ",";
        first = false;
        canonicalJson(json::Value::string(m->first), src, out);
        out += ':';
        canonicalJson(m->second, src, out);
      }
      out += '}';
      return;
    }
  }
}

inline std::string sha1Hex16(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 8; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

/// The running agent's status document over its control socket (`{"cmd":"status"}`); the
/// adapter object named `adapter`, or null when absent or the agent does not answer.
inline json::Value adapterStatus(const std::filesystem::path& socket_path, const std::string& adapter) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    return json::Value::null();
  }
  const std::string req = "{\"cmd\":\"status\",\"args\":{}}\n";
  (void)!::write(fd, req.data(), req.size());
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
    resp.append(buf, static_cast<size_t>(n));
    if (resp.find('\n') != std::string::npos) {
      break;
    }
  }
  ::close(fd);
  auto doc = json::parse(resp.substr(0, resp.find('\n')));
  if (!doc || !doc->getBool("ok")) {
    return json::Value::null();
  }
  const json::Value* result = doc->find("result");
  const json::Value* list = result ? result->find("adapters") : nullptr;
  if (list != nullptr && list->isArray()) {
    for (const auto& a : list->items()) {
      if (a.getString("name") == adapter) {
        return a;
      }
    }
  }
  return json::Value::null();
}

/// The simulator's content digest of one stored vendor record (JSON, or Kareo XML as the
/// {element: text} map).
inline std::string vendorDigest(const StoredRecord& r) {
  if (r.format == "vendor+xml") {
    auto el = adapters::xml::parse(r.payload);
    if (!el) {
      return "unparsable:" + el.error().message;
    }
    json::Value map = json::Value::object();
    for (const auto& c : el->children) {
      map.set(c.local, c.isNil() ? json::Value::null() : json::Value::string(c.text));
    }
    std::string out;
    canonicalJson(map, "", out);
    return sha1Hex16(out);
  }
  auto doc = json::parse(r.payload);
  if (!doc) {
    return "unparsable";
  }
  std::string out;
  canonicalJson(*doc, r.payload, out);
  return sha1Hex16(out);
}

/// Every live record of /_sim/expected?digest=1 is held at its current content, and no record
/// was stored twice (identical bytes).
/// The agent-made deletion records ({"psa_deleted": {"collection", "id", ...}}) as
/// "collection/id"; a second record for one key is reported in `twice`.
inline std::set<std::string> deletionKeys(const std::vector<StoredRecord>& records,
                                          std::vector<std::string>* twice = nullptr) {
  std::set<std::string> out;
  for (const auto& r : records) {
    if (r.payload.rfind("{\"psa_deleted\"", 0) != 0) {
      continue;
    }
    auto doc = json::parse(r.payload);
    const json::Value* d = doc && doc->isObject() ? doc->find("psa_deleted") : nullptr;
    if (d == nullptr) {
      continue;
    }
    const std::string key = d->getString("collection") + "/" + d->getString("id");
    if (!out.insert(key).second && twice != nullptr) {
      twice->push_back(key);
    }
  }
  return out;
}

/// The keys of /_sim/expected's "vanished" (deletions the vendor does not signal).
inline std::set<std::string> vanishedKeys(const json::Value& expected) {
  std::set<std::string> out;
  if (const json::Value* v = expected.find("vanished"); v != nullptr) {
    for (const auto& [key, val] : v->members()) {
      out.insert(key);
    }
  }
  return out;
}

inline std::vector<std::string> compareNative(const std::vector<StoredRecord>& records,
                                              const json::Value& expected,
                                              const std::string& want_format) {
  std::vector<std::string> diffs;
  std::map<std::string, int> digests;
  std::map<std::string, int> payloads;
  for (const auto& r : records) {
    if (r.payload.rfind("{\"psa_deleted\"", 0) == 0) {
      if (r.format != "vendor+json") {
        diffs.push_back("deletion record format " + r.format);
      }
      continue;  // agent-made deletion records: see deletionKeys()
    }
    if (r.format != want_format) {
      diffs.push_back("format " + r.format);
    }
    ++digests[vendorDigest(r)];
    if (++payloads[r.payload] == 2) {
      diffs.push_back("record stored twice: " + r.msg_id);
    }
  }
  size_t missing = 0;
  for (const auto& [key, v] : expected.find("resources")->members()) {
    if (digests.count(v.getString("digest")) == 0) {
      if (++missing <= 10) {
        diffs.push_back("missing or stale " + key);
      }
    }
  }
  if (missing > 10) {
    diffs.push_back(std::to_string(missing) + " missing or stale in all");
  }
  return diffs;
}

}  // namespace psa::test
