// The MLLP listener against a raw POSIX socket: a peer that never reads its ACKs is cut off
// after write_timeout_s while others are served (Windows: the same code path; the raw socket
// options used to provoke it are POSIX).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mllp_harness.h"
#include "psa/adapters/hl7/mllp.h"

namespace psa::test {
namespace {

namespace hl7 = psa::adapters::hl7;
using namespace std::chrono_literals;

TEST(MllpCommitOrder, PeerThatDoesNotReadItsAcksIsDisconnected) {
  InstantSink sink;
  MllpHarness h(sink);
  h.startOrDie(MllpHarness::config(R"({"write_timeout_s":1,"max_pipeline":64})"));
  // A raw client with a tiny receive buffer that sends and never reads.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(h.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string frame = hl7::mllpFrame(adtMessage("NOREAD", "DOE", 700));
  std::string burst;
  for (int i = 0; i < 64; ++i) {
    burst += frame;
  }
  bool cut = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!cut && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::send(fd, burst.data(), burst.size(), MSG_NOSIGNAL);
    cut = n < 0 && (errno == EPIPE || errno == ECONNRESET);
  }
  ::close(fd);
  EXPECT_TRUE(cut);
  EXPECT_EQ(h.counter("write_timeouts"), 1u);
  // Others are served.
  auto c = h.connect();
  EXPECT_EQ(ackOf(c->exchange(adtMessage("READER1"))).code, "AA");
}

}  // namespace
}  // namespace psa::test
