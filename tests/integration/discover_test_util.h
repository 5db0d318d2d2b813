// Shared by the discover_*_test.cpp integration tests: running the real pms-agent with stdout
// and stderr apart, checking that a suggestion validates, and that a PHI marker is absent.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "psa/store/json.h"
#include "test_support.h"

namespace psa::test::discover_util {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct CliRun {
  int rc = -1;
  std::string out;
  std::string err;
};

// Runs pms-agent with stdout and stderr kept apart (the JSON report is stdout alone).
inline CliRun agentCli(const TempDir& tmp, const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout = 60s) {
  static int n = 0;
  const fs::path out = tmp / ("out" + std::to_string(++n));
  const fs::path err = tmp / ("err" + std::to_string(n));
  Process::Options o;
  o.argv = {binary("pms-agent").string()};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.stdout_file = out;
  o.stderr_file = err;
  Process p(o);
  CliRun r;
  r.rc = p.wait(timeout).value_or(-1);
  r.out = readFile(out);
  r.err = readFile(err);
  return r;
}

inline json::Value parsed(const std::string& text) {
  auto v = json::parse(text);
  EXPECT_TRUE(v.ok()) << text;
  return v ? *v : json::Value();
}

// A minimal agent config holding `adapter` (what a technician pastes in).
inline fs::path configWith(const TempDir& tmp, const json::Value& adapter) {
  json::Value c = *json::parse(R"({"agent":{"id":"practice-0042","tenant":"acme-health"}})");
  c.find("agent")->set("state_dir", json::Value::string((tmp / "state").string()));
  json::Value adapters = json::Value::array();
  adapters.push(adapter);
  c.set("adapters", std::move(adapters));
  const fs::path file = tmp / "agent.json";
  writeFile(file, json::serialize(c, true));
  return file;
}

inline void expectValidates(const TempDir& tmp, const fs::path& suggestion) {
  const json::Value adapter = parsed(readFile(suggestion));
  const CliRun v = agentCli(tmp, {"config", "validate", configWith(tmp, adapter).string()});
  EXPECT_EQ(v.rc, 0) << v.out << v.err << readFile(suggestion);
}

inline void expectNoMarker(const std::string& marker, const CliRun& r, const fs::path& suggestion) {
  EXPECT_EQ(r.out.find(marker), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find(marker), std::string::npos) << r.err;
  if (fs::exists(suggestion)) {
    EXPECT_EQ(readFile(suggestion).find(marker), std::string::npos);
  }
}

inline const json::Value* entry(const json::Value& report, const char* list, const char* key,
                                const std::string& value) {
  for (const auto& e : report.find(list)->items()) {
    if (e.getString(key) == value) {
      return &e;
    }
  }
  return nullptr;
}

}  // namespace psa::test::discover_util
