// os::tcpListenersOnPort on Linux: another process's listener is named by its pid and
// executable, and the socket's owner is named.
#include <gtest/gtest.h>

#include "psa/store/os/process_info.h"
#include "psa/store/os/tcp_listeners.h"
#include "test_support.h"

namespace psa::os {
namespace {

using namespace std::chrono_literals;

TEST(TcpListeners, NamesAnotherProcessHoldingThePort) {
  const int port = test::freePort();
  test::Process holder = test::holdTcpPort(port);
  std::vector<TcpListener> found;
  ASSERT_TRUE(test::waitFor(
      [&] {
        auto r = tcpListenersOnPort(static_cast<uint16_t>(port));
        found = r ? *r : std::vector<TcpListener>();
        return !found.empty();
      },
      20s));
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].pid, holder.pid());
  EXPECT_EQ(found[0].process.rfind("python3", 0), 0u) << found[0].process;
  EXPECT_EQ(found[0].user, currentUserName());
  EXPECT_NE(found[0].process, currentProcessName());
}

}  // namespace
}  // namespace psa::os
