// SourceRegistry: each config `type` maps to exactly one factory; registering one twice ends
// the process on the fatal path instead of letting the second silently shadow the first.
#include <gtest/gtest.h>

#include <algorithm>

#include "psa/adapters/source.h"
#include "psa/store/fatal.h"

namespace psa::adapters {
namespace {

SourceFactory factoryOf(const std::string& type) {
  SourceFactory f;
  f.type = type;
  f.description = "test";
  return f;
}

TEST(SourceRegistry, BuiltinTypesAreRegisteredOnceEach) {
  SourceRegistry registry;
  registerBuiltinSources(registry);
  const auto types = registry.types();
  for (const char* t : {"hl7-mllp", "file-drop", "fhir-poll", "rest-poll", "hl7-mllp-out"}) {
    EXPECT_NE(registry.find(t), nullptr) << t;
  }
  std::vector<std::string> sorted = types;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

TEST(SourceRegistry, FindsByTypeAndNothingElse) {
  SourceRegistry registry;
  registry.add(factoryOf("a"));
  registry.add(factoryOf("b"));
  ASSERT_NE(registry.find("b"), nullptr);
  EXPECT_EQ(registry.find("b")->type, "b");
  EXPECT_EQ(registry.find("c"), nullptr);
  EXPECT_EQ(registry.types(), (std::vector<std::string>{"a", "b"}));
}

TEST(SourceRegistryDeathTest, ATypeRegisteredTwiceEndsTheProcess) {
  EXPECT_EXIT(
      {
        SourceRegistry registry;
        registry.add(factoryOf("hl7-mllp"));
        registry.add(factoryOf("hl7-mllp"));
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "place=adapters.registry.duplicate_type");
}

TEST(SourceRegistryDeathTest, BuiltinsRegisteredTwiceEndTheProcess) {
  EXPECT_EXIT(
      {
        SourceRegistry registry;
        registerBuiltinSources(registry);
        registerBuiltinSources(registry);
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "duplicate_type");
}

TEST(SourceRegistryDeathTest, AnEmptyTypeEndsTheProcess) {
  EXPECT_EXIT(
      {
        SourceRegistry registry;
        registry.add(factoryOf(""));
      },
      ::testing::ExitedWithCode(kExitFatalInvariant), "duplicate_type");
}

}  // namespace
}  // namespace psa::adapters
