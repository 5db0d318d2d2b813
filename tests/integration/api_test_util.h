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
