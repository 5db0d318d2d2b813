#include "psa/store/json.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace psa::json {
namespace {

TEST(Json, ParsesAllTypesWithPositions) {
  const std::string text = "{\n  \"a\": 1,\n  \"b\": [true, null, -2.5e1],\n  \"c\": \"x\\u00e9\\ud83d\\ude00\"\n}";
  auto r = parse(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Value& v = *r;
  ASSERT_TRUE(v.isObject());
  EXPECT_TRUE(v.find("a")->isInteger());
  EXPECT_EQ(v.find("a")->asInt(), 1);
  EXPECT_EQ(v.find("a")->pos().line, 2u);
  EXPECT_EQ(v.find("a")->pos().column, 8u);
  const Value& b = *v.find("b");
  ASSERT_EQ(b.items().size(), 3u);
  EXPECT_TRUE(b.items()[0].asBool());
  EXPECT_TRUE(b.items()[1].isNull());
  EXPECT_DOUBLE_EQ(b.items()[2].asNumber(), -25.0);
  EXPECT_FALSE(b.items()[2].isInteger());
  EXPECT_EQ(b.raw(text), "[true, null, -2.5e1]");
  EXPECT_EQ(v.find("c")->asString(), "x\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(v.find("c")->pos().line, 4u);
}

TEST(Json, RawSpanIsExactSourceBytes) {
  const std::string text = R"({"entry":[{"resource": {"id" : "1",  "x":[1, 2]}}]})";
  auto r = parse(text);
  ASSERT_TRUE(r.ok());
  const Value& res = *r->find("entry")->items()[0].find("resource");
  EXPECT_EQ(res.raw(text), R"({"id" : "1",  "x":[1, 2]})");
}

struct BadCase {
  std::string text;
  std::string error;
};

class JsonBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(JsonBad, ReportsLineColumnAndReason) {
  auto r = parse(GetParam().text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, JsonBad,
    ::testing::Values(
        BadCase{"", "line 1 column 1: unexpected end of input, expected a value"},
        BadCase{"{\"a\":1,}", "line 1 column 8: expected a quoted key in object, found '}'"},
        BadCase{"[1,\n2,\n]", "line 3 column 1: unexpected character ']', expected a value"},
        BadCase{"\"abc", "line 1 column 5: unterminated string"},
        BadCase{"{\"a\" 1}", "line 1 column 6: expected ':' after key \"a\""},
        BadCase{"01", "line 1 column 2: invalid number: leading zero"},
        BadCase{"[1, -5e312]", "line 1 column 5: number out of range (does not fit a double)"},
        BadCase{"[1] x", "line 1 column 5: unexpected data after the JSON value"},
        BadCase{"\"a\x01\"", "line 1 column 3: control character 0x01 in string (must be escaped)"},
        BadCase{"\"\xff\"", "line 1 column 2: invalid UTF-8 in string"},
        BadCase{"\"\\ud800\"", "line 1 column 8: unpaired surrogate in \\u escape"},
        BadCase{"\"\\q\"", "line 1 column 3: invalid escape \\q"},
        BadCase{"tru", "line 1 column 1: invalid literal, expected 'true'"}));

TEST(Json, DepthLimitIsEnforced) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  Limits limits;
  limits.max_depth = 64;
  auto r = parse(deep, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::limit));
  EXPECT_NE(r.error().message.find("nesting deeper than 64"), std::string::npos);
  limits.max_depth = 128;
  EXPECT_TRUE(parse(deep, limits).ok());
}

TEST(Json, SizeLimitIsEnforced) {
  Limits limits;
  limits.max_bytes = 10;
  auto r = parse("[1,2,3,4,5,6]", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().is(Errc::limit));
}

TEST(Json, DuplicateKeysRejectedWhenAsked) {
  Limits limits;
  limits.allow_duplicate_keys = false;
  auto r = parse("{\"a\":1,\n \"a\":2}", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "line 2 column 2: duplicate key \"a\"");
  EXPECT_TRUE(parse("{\"a\":1,\"a\":2}").ok());
}

TEST(Json, SerializeRoundTrips) {
  const std::string text = R"({"a":[1,2.5,"x\"y\n",true,null],"b":{"c":-7}})";
  auto r = parse(text);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(serialize(*r), text);
  auto again = parse(serialize(*r, true));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *r);
}

TEST(Json, BuildersAndLookups) {
  Value v;
  v.set("n", Value::integer(3));
  v.set("s", Value::string("t"));
  v.set("n", Value::integer(4));
  EXPECT_EQ(v.getInt("n"), 4);
  EXPECT_EQ(v.getString("s"), "t");
  EXPECT_EQ(v.getString("missing", "d"), "d");
  EXPECT_TRUE(v.erase("s"));
  EXPECT_EQ(v.find("s"), nullptr);
  EXPECT_EQ(quote("a\x01"), "\"a\\u0001\"");
}

TEST(Json, BomIsSkipped) {
  auto r = parse("\xEF\xBB\xBF{\"a\":1}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->getInt("a"), 1);
}

}  // namespace
}  // namespace psa::json

namespace psa::json {
namespace {

// The audit chain hashes entry details quoted in the audit style, and log lines are read by
// people and parsers: the one quoting loop must keep each style's bytes exactly as the three
// separate copies wrote them. Every byte value, against the forms frozen here.
std::string frozenForm(unsigned char c, QuoteStyle style) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      break;
  }
  char buf[8];
  if (style == QuoteStyle::json && c == '\b') {
    return "\\b";
  }
  if (style == QuoteStyle::json && c == '\f') {
    return "\\f";
  }
  if (style == QuoteStyle::logfmt && (c < 0x20 || c == 0x7f)) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    return buf;
  }
  if (c < 0x20) {
    std::snprintf(buf, sizeof buf, "\\u%04x", c);
    return buf;
  }
  return std::string(1, static_cast<char>(c));
}

TEST(JsonQuote, EveryStyleKeepsItsBytesForEveryByteValue) {
  for (QuoteStyle style : {QuoteStyle::json, QuoteStyle::audit, QuoteStyle::logfmt}) {
    std::string all;
    std::string expected = "\"";
    for (int c = 0; c < 256; ++c) {
      all.push_back(static_cast<char>(c));
      expected += frozenForm(static_cast<unsigned char>(c), style);
    }
    expected += "\"";
    EXPECT_EQ(quote(all, style), expected) << static_cast<int>(style);
  }
  // The audit form of the characters where the styles differ, spelled out.
  EXPECT_EQ(quote("\b\f\x7f", QuoteStyle::audit), "\"\\u0008\\u000c\x7f\"");
  EXPECT_EQ(quote("\b\f\x7f", QuoteStyle::json), "\"\\b\\f\x7f\"");
  EXPECT_EQ(quote("\b\f\x7f", QuoteStyle::logfmt), "\"\\x08\\x0c\\x7f\"");
}

}  // namespace
}  // namespace psa::json
