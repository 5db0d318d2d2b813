// CloudLink against a TCP connect that never completes (a firewall dropping the SYNs), made
// with the Linux kernel's behaviour of a full listen backlog.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>
#include <vector>

#include "link_harness.h"
#include "memory_queue.h"
#include "test_support.h"
#include "tls_material.h"

namespace psa::cloudlink {
namespace {

/// A local "black hole": a listening socket whose accept queue is full, so the kernel drops
/// further SYNs and connect() hangs, like a firewall that drops packets.
class BlackHole {
 public:
  BlackHole() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(listen_fd_, 0);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 3; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      fcntl(fd, F_SETFL, O_NONBLOCK);
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
    // A backlog of 0 holds one completed connection: wait until the first filler's handshake
    // has completed (its socket turns writable), so the link's SYN finds the queue full.
    pollfd first{fillers_.front(), POLLOUT, 0};
    ::poll(&first, 1, 10000);
  }
  ~BlackHole() {
    for (int fd : fillers_) {
      close(fd);
    }
    close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

TEST(CloudLink, UnansweredConnectIsReportedAndDoesNotBlockStop) {
  test::TempDir dir("psa-blackhole");
  test::TlsMaterial tls(dir / "pki");
  BlackHole hole;
  LinkHarness h;
  test::MemoryQueue queue;
  auto o = goodOptions();
  o.url = "mqtts://127.0.0.1:" + std::to_string(hole.port());
  o.ca_file = tls.ca().cert;
  o.cert_file = tls.client("practice-0042").cert;
  o.key_file = tls.client("practice-0042").key;
  o.connect_timeout = 500ms;
  auto link = CloudLink::create(h.io_, queue, o);
  ASSERT_TRUE(link.ok());
  (*link)->start();
  ASSERT_TRUE(test::waitFor([&] { return !(*link)->status().last_error.empty(); }, 10s));
  const LinkStatus st = (*link)->status();
  EXPECT_EQ(st.state, LinkState::connecting);
  EXPECT_EQ(st.last_error, "no answer from 127.0.0.1:" + std::to_string(hole.port()) +
                               " for 500 ms (TCP connect pending; a firewall may be dropping the "
                               "packets)");
  // connect() cannot be interrupted; stop() leaves the thread behind instead of hanging.
  const auto t0 = std::chrono::steady_clock::now();
  std::promise<void> done;
  (*link)->stop([&] { done.set_value(); });
  ASSERT_EQ(done.get_future().wait_for(15s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ((*link)->status().state, LinkState::stopped);
}

}  // namespace
}  // namespace psa::cloudlink
