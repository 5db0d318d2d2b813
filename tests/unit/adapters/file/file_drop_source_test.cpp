// The `file-drop` adapter type through the public registry: its config schema (exact errors
// with paths), the factory, start/stop/status, and the `pms-agent check` probes; run
// in-process on a real SqliteStore in a temp dir.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <filesystem>

#include "file_drop_env.h"
#include "psa/adapters/source.h"
#include "psa/store/sqlite_store.h"
#include "test_support.h"

namespace adapters = psa::adapters;
namespace fs = std::filesystem;
namespace json = psa::json;
using namespace std::chrono_literals;
using file_drop_test::Env;
using file_drop_test::kBase;
using psa::Errc;

namespace {

const adapters::SourceFactory& fileDrop() {
  static adapters::SourceRegistry registry = [] {
    adapters::SourceRegistry r;
    adapters::registerBuiltinSources(r);
    return r;
  }();
  const auto* f = registry.find("file-drop");
  EXPECT_NE(f, nullptr);
  return *f;
}

// "path: message" of every issue for `text`.
std::vector<std::string> issues(const std::string& text) {
  auto v = json::parse(text);
  EXPECT_TRUE(v.ok()) << text;
  std::vector<psa::schema::Issue> out;
  psa::schema::validate(*v, *fileDrop().schema, "adapters[0]", out);
  std::vector<std::string> lines;
  for (const auto& i : out) {
    lines.push_back(i.path + ": " + i.message);
  }
  return lines;
}

}  // namespace

TEST(FileDropConfig, DesignExampleIsValid) {
  EXPECT_EQ(issues("{" + kBase + R"(,"path":"/srv/ecw/out","format":"csv","kind":"appointment"})"),
            std::vector<std::string>{});
  EXPECT_EQ(issues("{" + kBase + R"(,"path":"/srv/x","format":"hl7"})"),
            std::vector<std::string>{});
  EXPECT_EQ(issues("{" + kBase + R"(,"path":"/srv/x","format":"x12","patterns":[
                   {"match":"*.csv","format":"csv","kind":"billing","csv":{"delimiter":";"}}]})"),
            std::vector<std::string>{});
}

TEST(FileDropConfig, ErrorsNameThePathAndWhatWasExpected) {
  using V = std::vector<std::string>;
  EXPECT_EQ(issues("{" + kBase + R"(,"format":"csv","kind":"appointment"})"),
            V{"adapters[0].path: required string is missing (the directory to watch)"});
  EXPECT_EQ(
      issues("{" + kBase + R"(,"path":"/x","format":"csv"})"),
      V{"adapters[0].kind: required when format is csv (patient, appointment, clinical, billing, "
        "provider, inventory or other)"});
  EXPECT_EQ(issues("{" + kBase + R"(,"path":"/x","format":"xml","kind":"other"})"),
            V{"adapters[0].format: \"xml\" is not one of: csv, hl7, x12, opaque"});
  EXPECT_EQ(issues("{" + kBase + R"(,"path":"/x","format":"csv","kind":"visits"})"),
            V{"adapters[0].kind: \"visits\" is not one of: patient, appointment, clinical, "
              "billing, provider, "
              "inventory, other"});
  EXPECT_EQ(
      issues("{" + kBase + R"(,"path":"/x","format":"csv","kind":"other","include":["a[b"]})"),
      V{"adapters[0].include: item 0: unterminated '[' at column 2"});
  EXPECT_EQ(
      issues("{" + kBase + R"(,"path":"/x","format":"csv","kind":"other","csv":{"header":false}})"),
      V{"adapters[0].csv.columns: required when header is false (the column names, in order)"});
  EXPECT_EQ(issues("{" + kBase +
                   R"(,"path":"/x","format":"csv","kind":"other","csv":{"delimiter":"::"}})"),
            V{"adapters[0].csv.delimiter: \"::\" is not one of: ,, ;, \t, |, tab"});
  EXPECT_EQ(
      issues("{" + kBase +
             R"(,"path":"/x","format":"hl7","patterns":[{"match":"*.csv","format":"csv"}]})"),
      V{"adapters[0].patterns[0].kind: required when format is csv and the adapter has no kind"});
  EXPECT_EQ(issues("{" + kBase + R"(,"path":"/x","format":"hl7","archive_dir":"/x"})"),
            V{"adapters[0].archive_dir: must not be the watched directory itself"});
  EXPECT_EQ(
      issues("{" + kBase + R"(,"path":"/x","format":"hl7","marker_suffixes":["done"]})"),
      V{"adapters[0].marker_suffixes: expected suffixes like \".done\" (a dot, then at least one "
        "character, no '/')"});
  EXPECT_EQ(
      issues("{" + kBase + R"(,"path":"/x","format":"hl7","hl7":{"kind_map":{"ZPM":"people"}}})")
          .size(),
      1u);
  EXPECT_EQ(
      issues(
          "{" + kBase +
          R"(,"path":"/x","format":"opaque","kind":"other","opaque":{"max_file_bytes":134217728}})"),
      V{"adapters[0].opaque.max_file_bytes: value 134217728 out of range, expected 1..67108864"});
  EXPECT_EQ(
      issues("{" + kBase + R"(,"path":"/x","format":"hl7","poll_ms":5})"),
      V{"adapters[0].poll_ms: unknown key (known keys: name, type, vendor, enabled, path, include, "
        "exclude, "
        "recursive, ignore_case, format, kind, csv, patterns, hl7, x12, opaque, complete, "
        "stable_ms, "
        "marker_suffixes, temp_patterns, after, archive_dir, error_dir, archive_dated, duplicates, "
        "duplicate_window_days, watch, poll_interval_ms, batch_records, batch_bytes)"});
}

TEST(FileDropSource, StartFailsWhenTheDirectoryIsMissing) {
  Env env;
  adapters::SourceContext ctx{env.io, *env.store, psa::Clock::system(), env.tmp.path()};
  auto cfg = env.config();
  cfg.set("path", json::Value::string((env.tmp / "nope").string()));
  auto src = fileDrop().create(cfg, ctx);
  ASSERT_TRUE(src.ok());
  auto st = (*src)->start();
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.error().is(Errc::not_found));
  EXPECT_EQ(st.error().message,
            "path " + (env.tmp / "nope").string() + " does not exist or is not a directory");
  std::atomic<int> done{0};
  (*src)->stop([&] { ++done; });  // never started: done at once
  EXPECT_EQ(done.load(), 1);
}

TEST(FileDropSource, IngestsCountsAndStopsOnce) {
  Env env;
  adapters::SourceContext ctx{env.io, *env.store, psa::Clock::system(), env.tmp.path()};
  auto src = fileDrop().create(env.config(), ctx);
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto& s = **src;
  EXPECT_EQ(s.type(), "file-drop");
  EXPECT_EQ(s.name(), "ecw-export");
  ASSERT_TRUE(s.start().ok());
  EXPECT_TRUE(fs::is_directory(env.inbox / "archive"));
  EXPECT_TRUE(fs::is_directory(env.inbox / "error"));
  psa::test::writeFile(env.inbox / "p.csv", "Id,Name\n1,A\n2,B,EXTRA\n3,C\n");
  ASSERT_TRUE(psa::test::waitFor([&] { return s.status().counters["files_ingested"] == 1; }, 20s));
  psa::test::writeFile(env.inbox / "bad.csv", "");
  ASSERT_TRUE(psa::test::waitFor(
      [&] {
        auto st = s.status();
        return st.counters["files_ingested"] == 1 && st.counters["files_failed"] == 1;
      },
      20s));
  auto st = s.status();
  EXPECT_EQ(st.state, "watching");
  EXPECT_EQ(st.counters["records"], 2u);
  EXPECT_EQ(st.counters["dead_letters"], 1u);
  EXPECT_GT(st.last_message_ms, 0);
  EXPECT_EQ(st.last_error, "bad.csv: missing_header at line 1");
  EXPECT_EQ(st.detail.getString("path"), env.inbox.string());
  EXPECT_NE(st.detail.getString("watch"), "polling");  // the OS's notifications
  EXPECT_EQ(st.detail.getString("last_error_file"),
            (env.inbox / "error" / "bad.csv.error.txt").string());
  std::atomic<int> a{0}, b{0};
  s.stop([&] { ++a; });
  s.stop([&] { ++b; });
  ASSERT_TRUE(psa::test::waitFor([&] { return a == 1 && b == 1; }, 10s));
  EXPECT_EQ(s.status().state, "stopped");
  std::atomic<int> c{0};
  s.stop([&] { ++c; });  // after it stopped: at once
  EXPECT_EQ(c.load(), 1);
  auto stats = env.store->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending, 2u);
  EXPECT_EQ(stats->dead, 1u);
}

TEST(FileDropSource, CheckReportsDirectoryProblemsWithAHint) {
  Env env;
  auto cfg = env.config();
  auto lines = fileDrop().check(cfg, env.tmp.path());
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::ok);
  EXPECT_EQ(lines[0].name, "adapter ecw-export");
  EXPECT_EQ(lines[0].text, "watching " + env.inbox.string() + " (0 files waiting)");

  cfg.set("path", json::Value::string("relative/inbox"));  // resolves against the state dir
  lines = fileDrop().check(cfg, env.tmp.path());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::fail);
  EXPECT_EQ(lines[0].text,
            (env.tmp / "relative" / "inbox").string() +
                " does not exist or is not a directory ▸ create it, or mount the share, and "
                "check adapters[].path");

  fs::create_directories(env.inbox / "error");
  psa::test::writeFile(env.inbox / "error" / "x.csv.error.txt", "r");
  lines = fileDrop().check(env.config(), env.tmp.path());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].level, adapters::CheckResult::Level::warn);
  EXPECT_EQ(lines[1].text, "1 error report(s) in " + (env.inbox / "error").string() +
                               " ▸ read the *.error.txt files");
}
