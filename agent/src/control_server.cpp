#include "control_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <cstring>

#include "psa/store/log.h"

namespace psa::agent {

namespace asio = boost::asio;
using boost::asio::local::stream_protocol;

namespace {

constexpr auto kIoTimeout = std::chrono::seconds(10);

void setTimeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool writeAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
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

// Reads until '\n' or `limit` bytes; false on error/timeout/EOF before a newline.
bool readLine(int fd, size_t limit, std::string& out) {
  char buf[4096];
  while (out.size() <= limit) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
    auto nl = out.find('\n');
    if (nl != std::string::npos) {
      out.resize(nl);
      return true;
    }
  }
  return false;
}

}  // namespace

struct ControlServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, std::filesystem::path path)
      : acceptor(io), socket_path(std::move(path)) {}

  stream_protocol::acceptor acceptor;
  std::filesystem::path socket_path;
  std::map<std::string, ControlHandler> handlers;
  asio::thread_pool pool{2};
  log::Logger logger{"control"};
  bool stopped = false;

  void accept() {
    acceptor.async_accept([self = shared_from_this()](const boost::system::error_code& ec,
                                                      stream_protocol::socket socket) {
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          self->logger.warn("accept_failed", {{"error", ec.message()}});
          self->accept();
        }
        return;
      }
      int fd = socket.release();
      asio::post(self->pool, [self, fd] { self->serve(fd); });
      self->accept();
    });
  }

  void serve(int fd) {
    Peer peer;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer.uid = cred.uid;
      peer.pid = cred.pid;
    }
    setTimeouts(fd, kIoTimeout);
    std::string line;
    ControlResponse resp;
    if (!readLine(fd, kMaxControlRequest, line)) {
      resp.ok = false;
      resp.error = "no complete request received (limit " + std::to_string(kMaxControlRequest) +
                   " bytes, newline-terminated)";
      resp.exit_code = 2;
    } else if (auto req = parseControlRequest(line); !req) {
      resp.ok = false;
      resp.error = req.error().message;
      resp.exit_code = 2;
      logger.warn("bad_request", {{"uid", static_cast<int64_t>(peer.uid)}});
    } else {
      logger.debug("request", {{"cmd", req->cmd},
                               {"uid", static_cast<int64_t>(peer.uid)},
                               {"pid", static_cast<int64_t>(peer.pid)}});
      auto it = handlers.find(req->cmd);
      if (it == handlers.end()) {
        resp.ok = false;
        resp.error = "unknown control command \"" + req->cmd + "\" (agent and CLI versions differ?)";
        resp.exit_code = 2;
      } else {
        try {
          resp = it->second(*req, peer);
        } catch (const std::exception& e) {
          logger.error("handler_exception", {{"cmd", req->cmd}, {"what", e.what()}});
          resp.ok = false;
          resp.error = "internal error while running " + req->cmd;
          resp.exit_code = 1;
        }
      }
    }
    writeAll(fd, encodeControlResponse(resp));
    ::close(fd);
  }
};

ControlServer::ControlServer(asio::io_context& io, std::filesystem::path socket_path)
    : impl_(std::make_shared<Impl>(io, std::move(socket_path))) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::handle(std::string cmd, ControlHandler handler) {
  impl_->handlers[std::move(cmd)] = std::move(handler);
}

Status ControlServer::start() {
  const auto& path = impl_->socket_path;
  if (path.native().size() >= sizeof(sockaddr_un::sun_path)) {
    return Error(Errc::invalid_argument, "control socket path too long: " + path.string());
  }
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (std::filesystem::exists(path, ec)) {
    // A live socket means another agent runs with this config; a stale one is replaced.
    stream_protocol::socket probe(impl_->acceptor.get_executor());
    boost::system::error_code pec;
    probe.connect(stream_protocol::endpoint(path.string()), pec);
    if (!pec) {
      return Error(Errc::exists, "another agent is already running (control socket " +
                                     path.string() + " answers)");
    }
    std::filesystem::remove(path, ec);
  }
  boost::system::error_code bec;
  impl_->acceptor.open(stream_protocol(), bec);
  if (!bec) {
    impl_->acceptor.bind(stream_protocol::endpoint(path.string()), bec);
  }
  if (!bec) {
    impl_->acceptor.listen(64, bec);
  }
  if (bec) {
    return Error(Errc::io, "cannot bind control socket " + path.string() + ": " + bec.message());
  }
  ::chmod(path.c_str(), 0660);
  if (group* g = ::getgrnam("pms-agent"); g != nullptr) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      impl_->logger.warn("control_socket_chown_failed", {{"errno", errno}});
    }
  }
  impl_->accept();
  return {};
}

void ControlServer::stop() {
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  impl_->pool.join();
  std::error_code fec;
  std::filesystem::remove(impl_->socket_path, fec);
}

Result<ControlResponse> callAgent(const std::filesystem::path& socket_path,
                                  const ControlRequest& request, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Error(Errc::io, std::string("socket: ") + std::strerror(errno));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = socket_path.string();
  if (p.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return Error(Errc::invalid_argument, "control socket path too long: " + p);
  }
  std::memcpy(addr.sun_path, p.data(), p.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EACCES || err == EPERM) {
      return Error(Errc::unauthorized,
                   "permission denied on the control socket " + p +
                       " (run as root or as a member of the pms-agent group)");
    }
    return Error(Errc::unavailable, "the agent is not running (nothing answers on " + p + ")");
  }
  setTimeouts(fd, timeout);
  if (!writeAll(fd, encodeControlRequest(request))) {
    ::close(fd);
    return Error(Errc::io, "could not send the request to the agent");
  }
  std::string line;
  bool ok = readLine(fd, kMaxControlResponse, line);
  ::close(fd);
  if (!ok) {
    return Error(Errc::timeout, "no answer from the agent within " +
                                    std::to_string(timeout.count() / 1000) + " s");
  }
  return parseControlResponse(line);
}

}  // namespace psa::agent
