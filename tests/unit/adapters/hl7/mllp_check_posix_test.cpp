// `pms-agent check` for an hl7-mllp adapter whose port another program holds (Linux): the line
// is a FAIL that names the program and its pid, not "OK listening".
#include <gtest/gtest.h>

#include "mllp_harness.h"

namespace psa::test {
namespace {

using namespace std::chrono_literals;

TEST(MllpCheck, NamesAnotherProgramHoldingThePort) {
  const int port = freePort();
  Process holder = holdTcpPort(port);
  ASSERT_TRUE(waitFor([&] { return canConnect("127.0.0.1", port); }, 20s));

  MllpHarness h;
  for (const std::string listen : {"127.0.0.1:", "0.0.0.0:"}) {
    auto cfg = MllpHarness::config(R"({"listen":")" + listen + std::to_string(port) + "\"}");
    auto lines = h.factory().check(cfg, h.tmp().path());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].level, adapters::CheckResult::Level::fail) << lines[0].text;
    EXPECT_EQ(lines[0].text.rfind(listen + std::to_string(port) + " is held by python3", 0), 0u)
        << lines[0].text;
    EXPECT_NE(lines[0].text.find("(pid " + std::to_string(holder.pid()) + "), not the agent ▸ "),
              std::string::npos)
        << lines[0].text;
  }
}

}  // namespace
}  // namespace psa::test
