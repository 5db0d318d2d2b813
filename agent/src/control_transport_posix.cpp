#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <cstring>

#include "control_transport.h"
#include "psa/store/log.h"
#include "psa/store/os/system_error.h"

namespace psa::agent {

namespace asio = boost::asio;
using boost::asio::local::stream_protocol;

namespace {

void setTimeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

class SocketConnection final : public ControlConnection {
 public:
  SocketConnection(int fd, std::chrono::milliseconds timeout) : fd_(fd) {
    setTimeouts(fd_, timeout);
  }
  ~SocketConnection() override { ::close(fd_); }
  SocketConnection(const SocketConnection&) = delete;
  SocketConnection& operator=(const SocketConnection&) = delete;

  bool readLine(size_t limit, std::string& out) override {
    return readLineWith(
        [this](char* buf, size_t size) -> long {
          for (;;) {
            const ssize_t n = ::recv(fd_, buf, size, 0);
            if (n >= 0 || errno != EINTR) {
              return static_cast<long>(n);
            }
          }
        },
        limit, out);
  }

  bool writeAll(std::string_view data) override {
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return false;
      }
      off += static_cast<size_t>(n);
    }
    return true;
  }

  Peer peer() override {
    Peer p;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      p.uid = cred.uid;
      p.pid = cred.pid;
    }
    return p;
  }

 private:
  int fd_;
};

class SocketEndpoint final : public ControlEndpoint,
                             public std::enable_shared_from_this<SocketEndpoint> {
 public:
  SocketEndpoint(asio::io_context& io, std::filesystem::path path)
      : acceptor_(asio::make_strand(io)), path_(std::move(path)) {}

  Status bind() {
    if (path_.native().size() >= sizeof(sockaddr_un::sun_path)) {
      return Error(Errc::invalid_argument, "control socket path too long: " + path_.string());
    }
    std::error_code ec;
    std::filesystem::create_directories(path_.parent_path(), ec);
    if (std::filesystem::exists(path_, ec)) {
      // A live socket means another agent runs with this config; a stale one is replaced.
      stream_protocol::socket probe(acceptor_.get_executor());
      boost::system::error_code pec;
      probe.connect(stream_protocol::endpoint(path_.string()), pec);
      if (!pec) {
        return Error(Errc::exists, "another agent is already running (control socket " +
                                       path_.string() + " answers)");
      }
      std::filesystem::remove(path_, ec);
    }
    boost::system::error_code bec;
    acceptor_.open(stream_protocol(), bec);
    if (!bec) {
      acceptor_.bind(stream_protocol::endpoint(path_.string()), bec);
    }
    if (!bec) {
      acceptor_.listen(64, bec);
    }
    if (bec) {
      return Error(Errc::io, "cannot bind control socket " + path_.string() + ": " + bec.message());
    }
    bound_ = true;
    ::chmod(path_.c_str(), 0660);
    if (group* g = ::getgrnam("pms-agent"); g != nullptr) {
      if (::chown(path_.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
        log::Logger("control").warn("control_socket_chown_failed", {{"errno", errno}});
      }
    }
    return {};
  }

  void startAccepting(std::function<void(ControlConnectionPtr)> on_connection,
                      std::chrono::milliseconds io_timeout) override {
    on_connection_ = std::move(on_connection);
    io_timeout_ = io_timeout;
    accept();
  }

  // The accept handler runs on the acceptor's strand and re-arms there; close() comes from
  // another thread, so it closes the acceptor on that strand too (never concurrently with a
  // re-arm) and sets `closed_` so a handler already queued hands nothing on.
  void close() override {
    if (closed_.exchange(true)) {
      return;
    }
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
    if (bound_) {
      std::error_code fec;
      std::filesystem::remove(path_, fec);
      bound_ = false;
    }
  }

 private:
  void accept() {
    // The handler keeps the endpoint alive: after close() it still runs once (aborted).
    acceptor_.async_accept([self = shared_from_this()](const boost::system::error_code& ec,
                                                       stream_protocol::socket socket) {
      if (self->closed_) {
        return;
      }
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          log::Logger("control").warn("accept_failed", {{"error", ec.message()}});
          self->accept();
        }
        return;
      }
      self->on_connection_(std::make_unique<SocketConnection>(socket.release(), self->io_timeout_));
      self->accept();
    });
  }

  stream_protocol::acceptor acceptor_;
  std::filesystem::path path_;
  std::function<void(ControlConnectionPtr)> on_connection_;
  std::chrono::milliseconds io_timeout_{10000};
  bool bound_ = false;
  std::atomic<bool> closed_{false};
};

}  // namespace

std::string Peer::actor() const { return "uid:" + std::to_string(uid); }

Peer localPeer() {
  Peer p;
  p.uid = static_cast<int64_t>(::geteuid());
  p.pid = static_cast<int64_t>(::getpid());
  return p;
}

Result<ControlEndpointPtr> bindControlEndpoint(asio::io_context& io,
                                               const std::filesystem::path& address) {
  auto endpoint = std::make_shared<SocketEndpoint>(io, address);
  PSA_TRY(endpoint->bind());
  return ControlEndpointPtr(std::move(endpoint));
}

Result<ControlConnectionPtr> connectControlEndpoint(const std::filesystem::path& address,
                                                    std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Error(Errc::io, "socket: " + os::errnoText(errno));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = address.string();
  if (p.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return Error(Errc::invalid_argument, "control socket path too long: " + p);
  }
  std::memcpy(addr.sun_path, p.data(), p.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EACCES || err == EPERM) {
      return Error(Errc::unauthorized, "permission denied on the control socket " + p +
                                           " (run as root or as a member of the pms-agent group)");
    }
    return Error(Errc::unavailable, "the agent is not running (nothing answers on " + p + ")");
  }
  return ControlConnectionPtr(std::make_unique<SocketConnection>(fd, timeout));
}

}  // namespace psa::agent
