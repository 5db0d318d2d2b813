// What a listening TCP socket needs from the OS, and what a failed bind means there. One
// implementation per OS: listen_socket_posix.cpp (SO_REUSEADDR, so a restarted agent binds at
// once while old connections sit in TIME_WAIT; EACCES = a privileged port) and
// listen_socket_win.cpp (SO_EXCLUSIVEADDRUSE: Windows' SO_REUSEADDR would let another program
// bind the same port and take connections away; WSAEACCES = the port is held exclusively or
// reserved).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string>

namespace psa::adapters::net {

/// Sets the options on an opened, not yet bound acceptor.
void setListenOptions(boost::asio::ip::tcp::acceptor& acceptor, boost::system::error_code& ec);

/// What "access denied" from bind() means here, in words, for a hint in parentheses.
std::string listenAccessDeniedMeaning();

/// The command that shows whether the agent's service runs.
std::string serviceStatusCommand();

}  // namespace psa::adapters::net
