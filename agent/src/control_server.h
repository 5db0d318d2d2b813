// ControlServer: the agent side of the local control channel (a Unix socket or a named pipe,
// control_transport.h). Accepts, then serves each connection on a small worker pool (handlers
// may block on the store; the I/O threads never do). Records each peer (uid or Windows account)
// for the audit trail.
#pragma once

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "control_protocol.h"
#include "control_transport.h"
#include "psa/store/result.h"

namespace psa::agent {

using ControlHandler = std::function<ControlResponse(const ControlRequest&, const Peer&)>;

class ControlServer {
 public:
  ControlServer(boost::asio::io_context& io, std::filesystem::path address);
  ~ControlServer();

  /// Registers a handler for `cmd` (before start()).
  void handle(std::string cmd, ControlHandler handler);

  /// Binds the socket or pipe (see bindControlEndpoint: a live one is Errc::exists) and starts
  /// accepting.
  Status start();
  /// Stops accepting and waits for running handlers.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Client side: sends one request and returns the response. Errors say plainly when the agent
/// is not running or the user may not use the channel (and what to do about it).
Result<ControlResponse> callAgent(const std::filesystem::path& address,
                                  const ControlRequest& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace psa::agent
