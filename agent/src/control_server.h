// ControlServer: the agent side of the local control socket. Accepts on the event loop, then
// serves each connection on a small worker pool (handlers may block on the store; the I/O
// threads never do). Records each peer's uid (SO_PEERCRED) for the audit trail.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "control_protocol.h"
#include "psa/store/result.h"

namespace psa::agent {

struct Peer {
  uid_t uid = static_cast<uid_t>(-1);
  pid_t pid = 0;
};

using ControlHandler = std::function<ControlResponse(const ControlRequest&, const Peer&)>;

class ControlServer {
 public:
  ControlServer(boost::asio::io_context& io, std::filesystem::path socket_path);
  ~ControlServer();

  /// Registers a handler for `cmd` (before start()).
  void handle(std::string cmd, ControlHandler handler);

  /// Binds the socket (mode 0660, group pms-agent when that group exists). A stale socket
  /// file is replaced; a live one (another agent) is an error.
  Status start();
  /// Stops accepting and waits for running handlers.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Client side: sends one request to the socket and returns the response. Errors say plainly
/// when the agent is not running or the user may not use the socket.
Result<ControlResponse> callAgent(const std::filesystem::path& socket_path,
                                  const ControlRequest& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(120));

}  // namespace psa::agent
