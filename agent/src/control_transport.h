// The OS side of the local control channel: a Unix domain socket (control_transport_posix.cpp:
// mode 0660, group pms-agent, peer credentials from SO_PEERCRED) or a named pipe
// (control_transport_win.cpp: \\.\pipe\pms-agent with a DACL of SYSTEM, Administrators and the
// service account; the peer's account from impersonating it). Both carry the same
// newline-delimited JSON protocol (psa/agent/control_protocol.h); ControlServer and callAgent
// (control_server.h) sit on top and know nothing of either.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "psa/store/result.h"

namespace psa::agent {

/// Who is on the other end of a control connection (for the audit trail and logs).
struct Peer {
  int64_t uid = -1;     ///< POSIX uid; -1 on Windows
  int64_t pid = 0;      ///< the client's process id, 0 if unknown
  std::string account;  ///< Windows: "DOMAIN\user" (or its SID); POSIX: empty

  /// The audit actor: "uid:1000" (POSIX) or "user:HOST\admin" (Windows).
  std::string actor() const;
};

/// Reads up to and excluding '\n' into `out` through `read_some(buffer, size)` (bytes read;
/// 0 at the end of the stream, negative on an error or timeout): the line framing both
/// transports share. False on error, end of stream before a newline, or more than `limit` bytes.
bool readLineWith(const std::function<long(char*, size_t)>& read_some, size_t limit,
                  std::string& out);

/// This process as a Peer, for acts the CLI records itself (with the agent stopped).
Peer localPeer();

/// One accepted or connected control connection. Blocking; used by one thread at a time.
class ControlConnection {
 public:
  virtual ~ControlConnection() = default;
  /// Reads up to and excluding '\n' into `out`. False on error, timeout, end of stream before a
  /// newline, or more than `limit` bytes.
  virtual bool readLine(size_t limit, std::string& out) = 0;
  /// Writes all of `data`. False on error or timeout.
  virtual bool writeAll(std::string_view data) = 0;
  /// The peer. On Windows it is known only after the first readLine().
  virtual Peer peer() = 0;
};

using ControlConnectionPtr = std::unique_ptr<ControlConnection>;

/// The listening side, bound at an address (socket path or pipe name).
class ControlEndpoint {
 public:
  virtual ~ControlEndpoint() = default;
  /// Starts accepting. Each connection is handed to `on_connection` on the accepting thread
  /// (an io_context thread on POSIX, the pipe's accept thread on Windows), which must hand it
  /// on rather than serve it there. `io_timeout` bounds each read and write.
  virtual void startAccepting(std::function<void(ControlConnectionPtr)> on_connection,
                              std::chrono::milliseconds io_timeout) = 0;
  /// Stops accepting and removes the address (the socket file). Idempotent.
  virtual void close() = 0;
};

using ControlEndpointPtr = std::shared_ptr<ControlEndpoint>;

/// Binds the endpoint. Errors: Errc::exists when another agent answers there (a stale socket
/// file is replaced), Errc::invalid_argument (path too long), Errc::io.
Result<ControlEndpointPtr> bindControlEndpoint(boost::asio::io_context& io,
                                               const std::filesystem::path& address);

/// Connects as a client with `timeout` on each read and write. Errors: Errc::unauthorized
/// ("permission denied ... (run as root or ...)" / "... run from an elevated prompt"),
/// Errc::unavailable ("the agent is not running ..."), Errc::io.
Result<ControlConnectionPtr> connectControlEndpoint(const std::filesystem::path& address,
                                                    std::chrono::milliseconds timeout);

}  // namespace psa::agent
