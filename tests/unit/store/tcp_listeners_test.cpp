// os::tcpListenersOnPort on real sockets: a port this process listens on names this process;
// a closed port lists nothing.
#include "psa/store/os/tcp_listeners.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "psa/store/os/process_info.h"
#include "test_support.h"

namespace psa::os {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TEST(TcpListeners, NamesThisProcessForItsOwnListener) {
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = acc.local_endpoint().port();
  auto found = tcpListenersOnPort(port);
  ASSERT_TRUE(found) << found.error().describe();
  ASSERT_EQ(found->size(), 1u);
  const TcpListener& l = found->front();
  EXPECT_EQ(l.address, "127.0.0.1");
  EXPECT_FALSE(l.v6);
  if (l.pid < 0 && test::runningUnderWine()) {
    GTEST_SKIP() << "Wine 8 reports no owning process (tests/windows/README.md)";
  }
  EXPECT_EQ(l.pid, currentProcessId());
  EXPECT_FALSE(l.process.empty());
  EXPECT_EQ(l.process, currentProcessName());
}

TEST(TcpListeners, ClosedPortListsNothing) {
  asio::io_context io;
  uint16_t port = 0;
  {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acc.local_endpoint().port();
  }
  auto found = tcpListenersOnPort(port);
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_TRUE(found->empty());
}

TEST(TcpListeners, ConnectedSocketsAreNotListeners) {
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = acc.local_endpoint().port();
  tcp::socket client(io);
  client.connect(acc.local_endpoint());
  tcp::socket server(io);
  acc.accept(server);
  auto found = tcpListenersOnPort(port);
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_EQ(found->size(), 1u);  // the accepted connection shares the port but does not listen
}

TEST(TcpListeners, Ipv6ListenerIsReported) {
  asio::io_context io;
  boost::system::error_code ec;
  tcp::acceptor acc(io);
  acc.open(tcp::v6(), ec);
  if (!ec) {
    acc.bind(tcp::endpoint(asio::ip::make_address("::1"), 0), ec);
  }
  if (!ec) {
    acc.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    GTEST_SKIP() << "no IPv6 loopback here: " << ec.message();
  }
  auto found = tcpListenersOnPort(acc.local_endpoint().port());
  ASSERT_TRUE(found) << found.error().describe();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().address, "::1");
  EXPECT_TRUE(found->front().v6);
  if (found->front().pid < 0 && test::runningUnderWine()) {
    GTEST_SKIP() << "Wine 8 reports no owning process (tests/windows/README.md)";
  }
  EXPECT_EQ(found->front().pid, currentProcessId());
}

}  // namespace
}  // namespace psa::os
