// The file-drop adapter's building blocks: glob patterns and the directory watchers
// (the native one: inotify or ReadDirectoryChangesW, and polling) on real directories.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "psa/adapters/file/dir_watcher.h"
#include "psa/adapters/file/glob.h"
#include "test_support.h"

namespace file = psa::adapters::file;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using psa::Errc;

TEST(Glob, Matches) {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  };
  for (const Case& c : {
           Case{"*", "visits.csv", true},
           Case{"*.csv", "visits.csv", true},
           Case{"*.csv", "visits.csv.tmp", false},
           Case{"*.csv", "sub/visits.csv", false},  // '*' stays within a name
           Case{"visits_????.csv", "visits_0101.csv", true},
           Case{"visits_????.csv", "visits_01.csv", false},
           Case{"[ap]*.csv", "appointments.csv", true},
           Case{"[ap]*.csv", "patients.csv", true},
           Case{"[!ap]*.csv", "charges.csv", true},
           Case{"[^ap]*.csv", "patients.csv", false},
           Case{"ADT_[0-9][0-9]*.hl7", "ADT_20240101_0001.hl7", true},
           Case{"ADT_[0-9][0-9]*.hl7", "ADT_X0240101.hl7", false},
           Case{"**/*.csv", "a/b/c.csv", true},
           Case{"**/*.csv", "c.csv", true},  // "**/" also matches no directory
           Case{"a/**/c.csv", "a/c.csv", true},
           Case{"a/**/c.csv", "a/x/y/c.csv", true},
           Case{"a/*/c.csv", "a/x/y/c.csv", false},
           Case{"a**", "a/b", true},
           Case{"*[", "x[", true},  // an unterminated class is literal
           Case{"", "", true},
           Case{"x", "", false},
       }) {
    EXPECT_EQ(file::globMatch(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
  }
  EXPECT_FALSE(file::globMatch("*.CSV", "a.csv"));
  EXPECT_TRUE(file::globMatch("*.CSV", "a.csv", true));
  EXPECT_TRUE(file::globMatch("[A-C]*", "b.txt", true));
  // Patterns without '/' look at the file name only.
  EXPECT_TRUE(file::globMatchPath("*.csv", "site2/today/p.csv"));
  EXPECT_TRUE(file::globMatchPath("site2/*/p.csv", "site2/today/p.csv"));
  EXPECT_FALSE(file::globMatchPath("site1/**", "site2/today/p.csv"));
}

TEST(Glob, Problems) {
  EXPECT_EQ(file::globProblem("*.csv"), std::nullopt);
  EXPECT_EQ(file::globProblem(""), "empty pattern");
  EXPECT_EQ(file::globProblem("ab[cd"), "unterminated '[' at column 3");
  EXPECT_EQ(file::globProblem("/srv/*.csv"),
            "patterns are relative to the watched directory (no leading '/')");
  EXPECT_EQ(file::globProblem(std::string(300, 'a')), "pattern longer than 256 bytes");
}

namespace {

// Runs `body` for both watcher kinds.
std::vector<file::DirWatcherPtr> watchers() {
  std::vector<file::DirWatcherPtr> out;
  auto native = file::makeNativeWatcher();
  EXPECT_TRUE(native.ok()) << (native ? "" : native.error().message);
  if (native) {
    out.push_back(std::move(native).value());
  }
  out.push_back(file::makePollingWatcher());
  return out;
}

}  // namespace

TEST(DirWatcher, AddMissingDirectoryIsNotFound) {
  psa::test::TempDir tmp("psa-watch");
  for (auto& w : watchers()) {
    auto st = w->add(tmp / "missing");
    ASSERT_FALSE(st.ok()) << w->mechanism();
    EXPECT_TRUE(st.error().is(Errc::not_found));
    EXPECT_EQ(st.error().message, "directory " + (tmp / "missing").string() + " does not exist");
  }
}

TEST(DirWatcher, InterruptEndsAWaitAndIsRememberedForTheNextOne) {
  psa::test::TempDir tmp("psa-watch");
  for (auto& w : watchers()) {
    ASSERT_TRUE(w->add(tmp.path()).ok());
    const auto t0 = std::chrono::steady_clock::now();
    std::thread t([&] {
      std::this_thread::sleep_for(50ms);
      w->interrupt();
    });
    EXPECT_FALSE(w->wait(60s)) << w->mechanism();
    t.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << w->mechanism();
    w->interrupt();  // nobody waits: the next wait returns at once
    const auto t1 = std::chrono::steady_clock::now();
    EXPECT_FALSE(w->wait(60s));
    EXPECT_LT(std::chrono::steady_clock::now() - t1, 30s);
    EXPECT_FALSE(w->wait(20ms));  // plain timeout
  }
}

TEST(DirWatcher, NativeWatcherSeesCreateRenameAndCloseWrite) {
  psa::test::TempDir tmp("psa-watch");
  auto w = file::makeNativeWatcher();
  ASSERT_TRUE(w.ok());
  auto& watcher = **w;
  EXPECT_NE(watcher.mechanism(), "polling");  // inotify or ReadDirectoryChangesW
  ASSERT_TRUE(watcher.add(tmp.path()).ok());
  ASSERT_TRUE(watcher.add(tmp.path()).ok());  // again: no-op
  EXPECT_FALSE(watcher.wait(20ms));
  psa::test::writeFile(tmp / "a.csv.tmp", "x");
  EXPECT_TRUE(watcher.wait(10s));
  fs::rename(tmp / "a.csv.tmp", tmp / "a.csv");
  EXPECT_TRUE(watcher.wait(10s));
  EXPECT_FALSE(watcher.wait(20ms));  // everything was drained
}

TEST(DirWatcher, NativeWatcherWatchesARecreatedDirectoryAfresh) {
  psa::test::TempDir tmp("psa-watch");
  auto w = file::makeNativeWatcher();
  ASSERT_TRUE(w.ok());
  auto& watcher = **w;
  const fs::path dir = tmp / "share";
  fs::create_directories(dir);
  ASSERT_TRUE(watcher.add(dir).ok());
  fs::remove_all(dir);
  // inotify reports the deletion (delete_self); ReadDirectoryChangesW may not, and the reader's
  // periodic rescan notices it then. Either way: no stale watch survives.
  while (watcher.wait(200ms)) {
  }
  fs::create_directories(dir);  // remounted share, recreated folder
  ASSERT_TRUE(watcher.add(dir).ok());
  psa::test::writeFile(dir / "b.csv", "x");
  EXPECT_TRUE(watcher.wait(10s));
}

TEST(DirWatcher, PollingOnlyTimesOut) {
  psa::test::TempDir tmp("psa-watch");
  auto w = file::makePollingWatcher();
  EXPECT_EQ(w->mechanism(), "polling");
  ASSERT_TRUE(w->add(tmp.path()).ok());
  psa::test::writeFile(tmp / "a.csv", "x");
  EXPECT_FALSE(w->wait(20ms));  // the reader rescans on its poll interval
}
