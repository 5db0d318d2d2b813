#include <gtest/gtest.h>

#include "psa/store/clock.h"
#include "psa/store/log.h"
#include "psa/store/result.h"

namespace psa {
namespace {

TEST(Clock, Rfc3339RoundTrip) {
  EXPECT_EQ(formatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(formatRfc3339(1764103460123), "2025-11-25T20:44:20.123Z");
  int64_t ms = 0;
  ASSERT_TRUE(parseRfc3339("2025-11-25T20:44:20.123Z", ms));
  EXPECT_EQ(ms, 1764103460123);
  ASSERT_TRUE(parseRfc3339("2025-11-25T21:44:20+01:00", ms));
  EXPECT_EQ(ms, 1764103460000);
  EXPECT_FALSE(parseRfc3339("2025-11-25 nope", ms));
  EXPECT_FALSE(parseRfc3339("2025-13-25T20:44:20Z", ms));
  EXPECT_FALSE(parseRfc3339("2025-11-25T20:44:20", ms));
}

TEST(Log, LinesAreKeyValueAndQuoted) {
  log::setStderr(false);
  log::Logger logger("test", "inst-1");
  logger.info("opened", {{"count", 3}, {"path", "/a b"}, {"ok", true}});
  auto lines = log::recentLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" level=info comp=test inst=inst-1 event=opened count=3 path=\"/a b\" ok=true"),
            std::string::npos)
      << lines[0];
  log::setStderr(true);
}

TEST(Log, LevelFiltering) {
  log::setStderr(false);
  log::setLevel(log::Level::warn);
  log::Logger logger("test");
  logger.info("hidden-event");
  logger.warn("shown-event");
  auto lines = log::recentLines(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("shown-event"), std::string::npos);
  log::setLevel(log::Level::info);
  log::setStderr(true);
  log::Level lvl;
  EXPECT_TRUE(log::parseLevel("warning", lvl));
  EXPECT_EQ(lvl, log::Level::warn);
  EXPECT_FALSE(log::parseLevel("loud", lvl));
}

TEST(Log, SensitiveCannotBeLogged) {
  // Compile-time property: a Sensitive<T> cannot become a log field.
  static_assert(!std::is_constructible_v<log::Field, std::string_view, Sensitive<std::string>>);
  static_assert(std::is_constructible_v<log::Field, std::string_view, int>);
}

TEST(Result, CarriesValueOrError) {
  Result<int> good = 4;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 4);
  Result<int> bad = Error(Errc::full, "queue at budget");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.error().is(Errc::full));
  EXPECT_EQ(bad.error().describe(), "queue at budget (store full)");
  Status s;
  EXPECT_TRUE(s.ok());
}

}  // namespace
}  // namespace psa
