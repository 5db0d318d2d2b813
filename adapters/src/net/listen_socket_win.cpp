#include <winsock2.h>

#include "psa/adapters/net/listen_socket.h"

namespace psa::adapters::net {

void setListenOptions(boost::asio::ip::tcp::acceptor& acceptor, boost::system::error_code& ec) {
  using exclusive = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_EXCLUSIVEADDRUSE>;
  acceptor.set_option(exclusive(true), ec);
}

std::string listenAccessDeniedMeaning() {
  return "another program holds the port exclusively, or Windows reserves it: netsh interface "
         "ipv4 show excludedportrange protocol=tcp";
}

std::string serviceStatusCommand() { return "sc query pms-agent"; }

}  // namespace psa::adapters::net
