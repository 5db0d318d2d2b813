// The one fatal path (psa/store/fatal.h) in death tests: exit code 70 and one log line with the
// place, a stable error id and the exception's type, never its what(); the std::terminate route;
// the test-only fault points (psa/store/test_fault.h), armed through the environment of the
// death test's child.
#include "psa/store/fatal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "psa/store/log.h"
#include "psa/store/sqlite_store.h"
#include "psa/store/test_fault.h"
#include "store_test_helpers.h"
#include "test_support.h"

namespace psa {
namespace {

constexpr const char* kSecret = "PID-5 DOE^JANE what-text-with-phi";
constexpr const char* kDirVariable = "PSA_FATAL_TEST_DIR";

// The "threadsafe" death-test child re-runs the test from the start in a fresh process: it
// finds the parent's directory in the environment instead of making its own, so the parent can
// read the log file the child wrote before it exited.
class Fatal : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    if (const char* inherited = std::getenv(kDirVariable); inherited != nullptr) {
      dir_ = inherited;
    } else {
      owned_ = std::make_unique<test::TempDir>("psa-fatal");
      dir_ = owned_->path();
      test::setEnvironment(kDirVariable, dir_.string());
    }
  }
  void TearDown() override {
    if (owned_) {
      test::setEnvironment(kDirVariable, "");
      test::setEnvironment("PSA_TEST_FAULT", "");
    }
  }

  // In the child: log to the file only (standard error still gets the fatal line).
  void logToFile() const {
    log::setStderr(false);
    ASSERT_TRUE(log::setFile(logFile(), 0, 0));
  }
  std::filesystem::path logFile() const { return dir_ / "agent.log"; }
  store::StoreOptions storeOptions() const {
    store::StoreOptions o;
    o.db_path = dir_ / "queue.db";
    o.key_file = dir_ / "queue.key";
    return o;
  }
  std::string logged() const { return test::readFile(logFile()); }

  std::filesystem::path dir_;
  std::unique_ptr<test::TempDir> owned_;
};

std::string expectedLine(std::string_view place, std::string_view type) {
  return "level=error comp=fatal event=fatal_invariant place=" + std::string(place) +
         " error_id=" + fatalErrorId(place, type) + " exception=" + std::string(type) +
         " exit_code=70 hint=";
}

TEST_F(Fatal, LogsPlaceIdAndTypeNeverTheTextThenExits70) {
  EXPECT_EXIT(
      {
        logToFile();
        try {
          throw std::runtime_error(kSecret);
        } catch (...) {
          fatalInvariant("unit.place");
        }
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "event=fatal_invariant place=unit.place");
  const std::string text = logged();
  EXPECT_NE(text.find(expectedLine("unit.place", "std::runtime_error")), std::string::npos) << text;
  EXPECT_EQ(text.find(kSecret), std::string::npos) << text;
}

TEST_F(Fatal, OutsideACatchBlockTheTypeIsNone) {
  EXPECT_EXIT(
      {
        logToFile();
        fatalInvariant("unit.no_exception");
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "fatal_invariant");
  EXPECT_NE(logged().find(expectedLine("unit.no_exception", "none")), std::string::npos)
      << logged();
}

TEST_F(Fatal, GuardInvariantTakesTheFatalPath) {
  EXPECT_EXIT(
      {
        logToFile();
        guardInvariant("unit.guard", [] { throw std::out_of_range(kSecret); });
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "fatal_invariant");
  EXPECT_NE(logged().find(expectedLine("unit.guard", "std::out_of_range")), std::string::npos)
      << logged();
  EXPECT_EQ(logged().find(kSecret), std::string::npos);
}

TEST_F(Fatal, AnExceptionEscapingAThreadGoesThroughTerminate) {
  EXPECT_EXIT(
      {
        logToFile();
        installFatalTerminateHandler();
        std::thread([] { throw std::logic_error(kSecret); }).join();
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "fatal_invariant");
  EXPECT_NE(logged().find(expectedLine("terminate", "std::logic_error")), std::string::npos)
      << logged();
  EXPECT_EQ(logged().find(kSecret), std::string::npos);
}

TEST_F(Fatal, GuardInvariantPassesResultsThrough) {
  EXPECT_EQ(guardInvariant("unit.value", [] { return 7; }), 7);
  std::string s = guardInvariant("unit.string", [] { return std::string("ok"); });
  EXPECT_EQ(s, "ok");
}

TEST(FatalErrorId, StableAndSeparatesPlacesAndTypes) {
  // FNV-1a of "store.writer\0psa::TestFault": the same on every build and OS.
  EXPECT_EQ(fatalErrorId("store.writer", "psa::TestFault"), "7915d26d");
  EXPECT_EQ(fatalErrorId("a", "b"), fatalErrorId("a", "b"));
  EXPECT_NE(fatalErrorId("a", "b"), fatalErrorId("a", "c"));
  EXPECT_NE(fatalErrorId("ab", ""), fatalErrorId("a", "b"));
  EXPECT_EQ(fatalErrorId("x", "y").size(), 8u);
}

TEST_F(Fatal, ArmedTestFaultFiresOnItsNthPassOnly) {
  // The death-test child re-runs this test body from the start with the variable set.
  test::setEnvironment("PSA_TEST_FAULT", "other.point,unit.point@3");
  EXPECT_EXIT(
      {
        logToFile();
        testFaultPoint("unit.point");
        testFaultPoint("unit.point");
        log::Logger("unit").error("two_passes_done");
        guardInvariant("unit.fault", [] { testFaultPoint("unit.point"); });
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "fatal_invariant");
  const std::string text = logged();
  const size_t passes = text.find("event=two_passes_done");
  const size_t fatal = text.find(expectedLine("unit.fault", "psa::TestFault"));
  ASSERT_NE(passes, std::string::npos) << text;
  ASSERT_NE(fatal, std::string::npos) << text;
  EXPECT_LT(passes, fatal);
  EXPECT_EQ(text.find(kTestFaultWhat), std::string::npos) << text;
  // This process read its environment before main(), without the variable: nothing is armed.
  for (int i = 0; i < 5; ++i) {
    EXPECT_NO_THROW(testFaultPoint("unit.point"));
  }
}

// A completion that throws left its caller in an unknown state: the store no longer swallows
// it and carries on, the process ends.
TEST_F(Fatal, ThrowingStoreCompletionIsFatal) {
  EXPECT_EXIT(
      {
        logToFile();
        auto st = store::testing::openOk(storeOptions());
        std::vector<store::Record> rs;
        rs.push_back(store::testing::makeRecord("r"));
        st->append(store::testing::batchOf(std::move(rs)),
                   [](Result<store::AppendResult>) { throw std::runtime_error(kSecret); });
        std::this_thread::sleep_for(std::chrono::seconds(30));  // the writer thread exits first
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "fatal_invariant");
  EXPECT_NE(logged().find(expectedLine("store.completion", "std::runtime_error")),
            std::string::npos)
      << logged();
  EXPECT_EQ(logged().find(kSecret), std::string::npos);
  // The record was committed before its completion ran.
  auto reopened = store::testing::openOk(storeOptions());
  EXPECT_EQ(reopened->stats()->pending, 1u);
}

// A broken invariant in the writer, inside a transaction: the process ends (no store that
// fails every later call with `internal`), and what was acknowledged before is all there is.
TEST_F(Fatal, StoreWriterFaultKeepsExactlyWhatWasAcknowledged) {
  test::setEnvironment("PSA_TEST_FAULT", "store.writer@4");
  EXPECT_EXIT(
      {
        logToFile();
        auto st = store::testing::openOk(storeOptions());
        const log::Logger logger("unit");
        for (int i = 0; i < 10; ++i) {
          std::vector<store::Record> rs;
          rs.push_back(store::testing::makeRecord("r" + std::to_string(i)));
          if (st->appendSync(store::testing::batchOf(std::move(rs)))) {
            logger.error("acknowledged", {{"n", i}});
          }
        }
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "fatal_invariant");
  const std::string text = logged();
  ASSERT_NE(text.find(expectedLine("store.writer", "psa::TestFault")), std::string::npos) << text;
  size_t acknowledged = 0;
  for (size_t at = text.find("event=acknowledged"); at != std::string::npos;
       at = text.find("event=acknowledged", at + 1)) {
    ++acknowledged;
  }
  EXPECT_GE(acknowledged, 1u);
  EXPECT_LT(acknowledged, 10u);
  auto reopened = store::testing::openOk(storeOptions());
  EXPECT_EQ(reopened->stats()->pending, acknowledged);
}

}  // namespace
}  // namespace psa
