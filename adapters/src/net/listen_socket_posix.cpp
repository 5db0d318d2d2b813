#include "psa/adapters/net/listen_socket.h"

namespace psa::adapters::net {

void setListenOptions(boost::asio::ip::tcp::acceptor& acceptor, boost::system::error_code& ec) {
  acceptor.set_option(boost::asio::ip::tcp::acceptor::reuse_address(true), ec);
}

std::string listenAccessDeniedMeaning() { return "ports below 1024 need CAP_NET_BIND_SERVICE"; }

std::string serviceStatusCommand() { return "systemctl status pms-agent"; }

}  // namespace psa::adapters::net
