// Shared pieces of the operations tests (technician CLI, audit trail, logs, bundle): a store
// prefilled before the agent starts (queued records and dead letters whose payloads carry a
// PHI marker), config builders, and small output helpers.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "agent_fixture.h"
#include "cloudlink_harness.h"
#include "psa/store/json.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace psa::test {

struct Prefilled {
  std::vector<std::string> queued;
  std::vector<std::string> dead;
};

/// Appends `queued` records and `dead` dead letters into the agent's store (agent stopped), as
/// adapters would. Every payload carries `marker` (a stand-in for patient data).
inline Prefilled prefillStore(const std::filesystem::path& state_dir, size_t queued, size_t dead,
                              const std::string& marker) {
  std::filesystem::create_directories(state_dir);
  store::StoreOptions o;
  o.db_path = state_dir / "queue.db";
  o.key_file = state_dir / "queue.key";
  auto opened = store::SqliteStore::open(o);
  if (!opened) {
    throw std::runtime_error(opened.error().describe());
  }
  auto& st = **opened;
  store::AppendBatch batch;
  auto record = [&](size_t i) {
    store::Record r;
    r.source = "cerner-adt";
    r.vendor = "cerner";
    r.kind = i % 2 ? store::Kind::appointment : store::Kind::patient;
    r.format = "hl7v2";
    r.payload = Sensitive<std::string>("MSH|^~\\&|CERNER|HOSP|PS|EDGE|20261125||ADT^A01|CTRL" +
                                       std::to_string(i) + "|P|2.5\rPID|1||" + marker +
                                       "^^^MRN||DOE^" + marker + "\r");
    return r;
  };
  for (size_t i = 0; i < queued; ++i) {
    batch.records.push_back(record(i));
  }
  for (size_t i = 0; i < dead; ++i) {
    store::DeadLetterInput d;
    d.record = record(1000 + i);
    d.reason = "HL7 validation: PID-3 missing (segment 2, byte 64)";
    batch.dead.push_back(std::move(d));
  }
  auto res = st.appendSync(std::move(batch));
  if (!res) {
    throw std::runtime_error(res.error().describe());
  }
  Prefilled out;
  for (const auto& a : res->records) {
    out.queued.push_back(a.msg_id);
  }
  out.dead = res->dead_ids;
  st.close();
  return out;
}

inline json::Value baseConfig(const std::string& log_level = "info") {
  return *json::parse(R"({"agent":{"id":"practice-0042","tenant":"acme-health","log_level":")" +
                      log_level + R"("}})");
}

/// The agent's cloud section for `env` (mutual TLS with a client certificate for practice-0042).
inline json::Value cloudSection(CloudEnv& env, const std::string& agent_id = "practice-0042") {
  const CertFiles& cert = env.tls.client(agent_id);
  json::Value cloud = json::Value::object();
  cloud.set("url", json::Value::string(env.broker->url()));
  cloud.set("ca_file", json::Value::string(env.tls.ca().cert.string()));
  cloud.set("cert_file", json::Value::string(cert.cert.string()));
  cloud.set("key_file", json::Value::string(cert.key.string()));
  return cloud;
}

/// The lines of `text` that contain `needle`.
inline std::vector<std::string> linesWith(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::string line = text.substr(start, end - start);
    if (line.find(needle) != std::string::npos) {
      out.push_back(line);
    }
    start = end + 1;
  }
  return out;
}

/// The single line of `text` that starts with `prefix` (empty if none).
inline std::string lineStarting(const std::string& text, const std::string& prefix) {
  for (const auto& l : linesWith(text, prefix)) {
    if (l.rfind(prefix, 0) == 0) {
      return l;
    }
  }
  return {};
}

/// Audit entries read straight from the store files (read-only).
inline std::vector<store::AuditEntry> auditEntriesOf(const std::filesystem::path& state_dir) {
  store::StoreOptions o;
  o.db_path = state_dir / "queue.db";
  o.key_file = state_dir / "queue.key";
  o.read_only = true;
  auto ro = store::SqliteStore::open(o);
  if (!ro) {
    throw std::runtime_error(ro.error().describe());
  }
  auto entries = (*ro)->auditEntries(0, 100000);
  if (!entries) {
    throw std::runtime_error(entries.error().describe());
  }
  return *entries;
}

/// Sum of the "count" of every entry with `action`.
inline int64_t auditCount(const std::vector<store::AuditEntry>& entries, const std::string& action) {
  int64_t n = 0;
  for (const auto& e : entries) {
    if (e.action == action) {
      n += json::parse(e.detail)->getInt("count");
    }
  }
  return n;
}

}  // namespace psa::test
