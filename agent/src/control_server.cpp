#include "control_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "psa/store/fatal.h"
#include "psa/store/log.h"

namespace psa::agent {

namespace asio = boost::asio;

namespace {

constexpr auto kIoTimeout = std::chrono::seconds(10);

}  // namespace

struct ControlServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, std::filesystem::path path)
      : io(context), address(std::move(path)) {}

  asio::io_context& io;
  std::filesystem::path address;
  ControlEndpointPtr endpoint;
  std::map<std::string, ControlHandler> handlers;
  asio::thread_pool pool{2};
  log::Logger logger{"control"};
  bool stopped = false;

  void serve(ControlConnection& conn) {
    std::string line;
    ControlResponse resp;
    const bool complete = conn.readLine(kMaxControlRequest, line);
    const Peer peer = conn.peer();
    if (!complete) {
      resp.ok = false;
      resp.error = "no complete request received (limit " + std::to_string(kMaxControlRequest) +
                   " bytes, newline-terminated)";
      resp.exit_code = 2;
    } else if (auto req = parseControlRequest(line); !req) {
      resp.ok = false;
      resp.error = req.error().message;
      resp.exit_code = 2;
      logger.warn("bad_request", {{"peer", peer.actor()}});
    } else {
      logger.debug("request", {{"cmd", req->cmd}, {"peer", peer.actor()}, {"pid", peer.pid}});
      auto it = handlers.find(req->cmd);
      if (it == handlers.end()) {
        resp.ok = false;
        resp.error = "unknown control command \"" + req->cmd + "\" (agent and CLI versions differ?)";
        resp.exit_code = 2;
      } else {
        // Handlers return errors as responses; one that throws broke an invariant (fatal.h).
        resp = guardInvariant("control.handler", [&] { return it->second(*req, peer); });
      }
    }
    conn.writeAll(encodeControlResponse(resp));
  }
};

ControlServer::ControlServer(asio::io_context& io, std::filesystem::path address)
    : impl_(std::make_shared<Impl>(io, std::move(address))) {}

ControlServer::~ControlServer() { stop(); }

void ControlServer::handle(std::string cmd, ControlHandler handler) {
  impl_->handlers[std::move(cmd)] = std::move(handler);
}

Status ControlServer::start() {
  auto endpoint = bindControlEndpoint(impl_->io, impl_->address);
  if (!endpoint) {
    return std::move(endpoint).error();
  }
  impl_->endpoint = std::move(*endpoint);
  std::weak_ptr<Impl> weak = impl_;
  impl_->endpoint->startAccepting(
      [weak](ControlConnectionPtr conn) {
        auto self = weak.lock();
        if (!self) {
          return;
        }
        // shared_ptr: asio's handlers must be copyable.
        std::shared_ptr<ControlConnection> shared(std::move(conn));
        asio::post(self->pool, [self, shared] { self->serve(*shared); });
      },
      kIoTimeout);
  return {};
}

void ControlServer::stop() {
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  if (impl_->endpoint) {
    impl_->endpoint->close();
  }
  impl_->pool.join();
}

Result<ControlResponse> callAgent(const std::filesystem::path& address,
                                  const ControlRequest& request,
                                  std::chrono::milliseconds timeout) {
  auto conn = connectControlEndpoint(address, timeout);
  if (!conn) {
    return std::move(conn).error();
  }
  if (!(*conn)->writeAll(encodeControlRequest(request))) {
    return Error(Errc::io, "could not send the request to the agent");
  }
  std::string line;
  if (!(*conn)->readLine(kMaxControlResponse, line)) {
    return Error(Errc::timeout, "no answer from the agent within " +
                                    std::to_string(timeout.count() / 1000) + " s");
  }
  return parseControlResponse(line);
}

}  // namespace psa::agent
