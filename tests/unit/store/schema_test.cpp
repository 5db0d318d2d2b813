#include "psa/store/schema.h"

#include <gtest/gtest.h>

namespace psa::schema {
namespace {

ObjectSchema sample() {
  auto inner = std::make_shared<ObjectSchema>();
  inner->fields = {Field::str("secret").hide(), Field::integer("n").range(1, 5).def(json::Value::integer(2))};
  ObjectSchema s;
  s.fields = {Field::str("name").req(), Field::str("mode").oneOf({"a", "b"}).def(json::Value::string("a")),
              Field::obj("inner", inner), Field::array("tags", Type::string).range(0, 2)};
  return s;
}

std::vector<std::string> issuesOf(std::string_view text) {
  auto doc = json::parse(text);
  EXPECT_TRUE(doc.ok());
  std::vector<Issue> issues;
  validate(*doc, sample(), "", issues);
  std::vector<std::string> out;
  for (const auto& i : issues) {
    out.push_back(i.format());
  }
  return out;
}

TEST(Schema, ValidDocumentHasNoIssues) {
  EXPECT_TRUE(issuesOf(R"({"name":"x","mode":"b","inner":{"n":5},"tags":["a"]})").empty());
}

TEST(Schema, ReportsEveryProblemWithPathAndPosition) {
  auto issues = issuesOf("{\"mode\":\"c\",\n \"inner\":{\"n\":9,\"z\":1},\n \"tags\":[1,\"a\",\"b\"]}");
  ASSERT_EQ(issues.size(), 6u) << ::testing::PrintToString(issues);
  EXPECT_EQ(issues[0], "line 1, column 9: mode: \"c\" is not one of: a, b");
  EXPECT_EQ(issues[1], "line 2, column 15: inner.n: value 9 out of range, expected 1..5");
  EXPECT_EQ(issues[2], "line 2, column 21: inner.z: unknown key (known keys: secret, n)");
  EXPECT_EQ(issues[3], "line 3, column 9: tags: number of items 3 out of range, expected 0..2");
  EXPECT_EQ(issues[4], "line 3, column 10: tags[0]: expected string, found a number");
  EXPECT_EQ(issues[5], "line 1, column 1: name: required string is missing");
}

TEST(Schema, DefaultsAndMasking) {
  auto doc = json::parse(R"({"name":"x","inner":{"secret":"hunter2"}})");
  ASSERT_TRUE(doc.ok());
  auto full = withDefaults(*doc, sample());
  EXPECT_EQ(full.getString("mode"), "a");
  EXPECT_EQ(full.find("inner")->getInt("n"), 2);
  auto masked = mask(full, sample());
  EXPECT_EQ(masked.find("inner")->getString("secret"), "********");
  EXPECT_EQ(json::serialize(masked).find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace psa::schema
