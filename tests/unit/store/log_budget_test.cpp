// LogBudget (psa/store/log_budget.h): at most N lines a window, the lines refused counted and
// handed to the next line allowed.
#include "psa/store/log_budget.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace psa {
namespace {

using namespace std::chrono_literals;

TEST(LogBudget, AllowsItsBudgetThenCountsWhatItRefuses) {
  LogBudget budget(3, 1h);
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(budget.take(suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  suppressed = 99;
  EXPECT_FALSE(budget.take(suppressed));
  EXPECT_FALSE(budget.take(suppressed));
  EXPECT_EQ(suppressed, 99u);  // left alone when refused
}

TEST(LogBudget, ANewWindowAllowsAgainAndReportsTheRefusedLines) {
  LogBudget budget(1, 200ms);
  uint64_t suppressed = 0;
  ASSERT_TRUE(budget.take(suppressed));
  // Refused until the next window; the line it then allows reports every refusal.
  uint64_t refused = 0;
  ASSERT_TRUE(test::waitFor(
      [&] {
        if (budget.take(suppressed)) {
          return true;
        }
        ++refused;
        return false;
      },
      10s));
  EXPECT_EQ(suppressed, refused);
}

}  // namespace
}  // namespace psa
