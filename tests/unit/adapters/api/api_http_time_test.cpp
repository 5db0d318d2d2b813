// HTTP dates and Retry-After parsing (RFC 9110): all three date forms, seconds, clamping,
// server-clock reference, and rejection of anything else.
#include <gtest/gtest.h>

#include "psa/adapters/api/http_time.h"

namespace api = psa::adapters::api;
using std::chrono::milliseconds;

namespace {

constexpr int64_t kSunNov6 = 784111777000;  // 1994-11-06T08:49:37Z

TEST(HttpDate, ParsesTheThreeRfc9110Forms) {
  EXPECT_EQ(api::parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), kSunNov6);
  EXPECT_EQ(api::parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), kSunNov6);
  EXPECT_EQ(api::parseHttpDate("Sun Nov  6 08:49:37 1994"), kSunNov6);
  EXPECT_EQ(api::parseHttpDate("  Sun, 06 Nov 1994 08:49:37 GMT "), kSunNov6);
}

TEST(HttpDate, RejectsEverythingElse) {
  EXPECT_EQ(api::parseHttpDate(""), std::nullopt);
  EXPECT_EQ(api::parseHttpDate("Sun, 06 Nov 1994 08:49:37"), std::nullopt);      // no GMT
  EXPECT_EQ(api::parseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"), std::nullopt);  // not GMT
  EXPECT_EQ(api::parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(api::parseHttpDate("Sun, 32 Nov 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(api::parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT"), std::nullopt);
  EXPECT_EQ(api::parseHttpDate("2024-01-01T00:00:00Z"), std::nullopt);
  EXPECT_EQ(api::parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT trailing"), std::nullopt);
}

TEST(HttpDate, FormatRoundTrips) {
  EXPECT_EQ(api::formatHttpDate(kSunNov6), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(api::formatHttpDate(kSunNov6 + 999), "Sun, 06 Nov 1994 08:49:37 GMT");
  const int64_t t = 1795000000000;  // 2026-11-18
  EXPECT_EQ(api::parseHttpDate(api::formatHttpDate(t)), t);
}

TEST(RetryAfter, Seconds) {
  EXPECT_EQ(api::parseRetryAfter("120", 0), milliseconds(120000));
  EXPECT_EQ(api::parseRetryAfter(" 0 ", 0), milliseconds(0));
  EXPECT_EQ(api::parseRetryAfter("7200", 0), milliseconds(3600000));  // clamped to 1 h
  EXPECT_EQ(api::parseRetryAfter("99999999999999999999", 0), milliseconds(3600000));
  EXPECT_EQ(api::parseRetryAfter("30", 0, milliseconds(5000)), milliseconds(5000));
}

TEST(RetryAfter, HttpDateIsMeasuredAgainstTheReference) {
  // The reference is the server's Date header: a skewed server clock doesn't matter.
  EXPECT_EQ(api::parseRetryAfter("Sun, 06 Nov 1994 08:49:40 GMT", kSunNov6), milliseconds(3000));
  EXPECT_EQ(api::parseRetryAfter("Sun, 06 Nov 1994 08:49:30 GMT", kSunNov6), milliseconds(0));
}

TEST(RetryAfter, RejectsGarbage) {
  EXPECT_EQ(api::parseRetryAfter("", 0), std::nullopt);
  EXPECT_EQ(api::parseRetryAfter("-5", 0), std::nullopt);
  EXPECT_EQ(api::parseRetryAfter("1.5", 0), std::nullopt);
  EXPECT_EQ(api::parseRetryAfter("soon", 0), std::nullopt);
}

}  // namespace
